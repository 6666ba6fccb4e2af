"""Liveness plus a real database round trip; 503 when the database can't be reached or the instance is
draining before a restart."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import MediaType, Request, Response, get

from app import __version__
from app.db.engine import Database

log = logging.getLogger(__name__)


@get("/health", media_type=MediaType.JSON)
async def health(request: Request[Any, Any, Any], db: Database) -> Response[dict[str, object]]:
    try:
        await asyncio.wait_for(db.ping(), timeout=5)
        database = "ok"
    except Exception as exc:  # any failure means "not ok"; the reason goes to the log, not the client
        log.warning("health: database check failed: %s", exc)
        database = "unreachable"
    status = 200 if database == "ok" else 503
    body = {"status": "ok" if status == 200 else "degraded", "database": database, "version": __version__}
    runtime = request.app.state.get("runtime")
    if runtime is not None and runtime.draining:
        # Issue 11: a draining instance takes no new calls; a load balancer moves on at the 503.
        status, body["status"], body["live_calls"] = 503, "draining", len(runtime.bridges)
    return Response(content=body, status_code=status)
