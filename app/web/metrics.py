"""`GET /metrics` for Prometheus, with `Authorization: Bearer METRICS_TOKEN`.

Served only when METRICS_TOKEN is set, and only to a request that presents it: loopback is no proof of
being the operator (a tunnel such as `ssh -R` makes every visitor look local).

With several granian workers, set PROMETHEUS_MULTIPROC_DIR to an empty directory before start: each worker
then writes its samples there and whichever worker answers the scrape sums them (prometheus_client's
multiprocess mode; the live-call gauge sums the live workers).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

from app.settings import Settings


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], settings: Settings) -> Response[bytes]:
    if not settings.metrics_token:
        raise NotFoundException()
    presented = request.headers.get("authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {settings.metrics_token}".encode()):
        # A plain 401 for a scraper, not the owner pages' redirect to sign-in.
        return Response(content=b"metrics need the operator's token\n", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = await asyncio.to_thread(_exposition)  # multiprocess mode reads files: keep it off the loop
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
