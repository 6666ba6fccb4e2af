"""The operator's drain, run by a deploy before it stops an instance (Procfile / README "Deploying").

granian closes every WebSocket as soon as it gets SIGTERM, before the app's shutdown hook runs, so a call
can't be finished once the signal has arrived: the drain must come first. `POST /ops/drain` (bearer
OPERATOR_TOKEN) makes /health answer 503 "draining", so the load balancer sends new calls to other
instances, and lets live calls finish for up to DRAIN_TIMEOUT_SECONDS; `GET /ops/drain` reports the live
calls left, so the deploy sends SIGTERM when it reaches 0 (or at the timeout; calls cut then are recorded as
`service_restart`). Without OPERATOR_TOKEN the routes answer 404.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.types import ControllerRouterHandler

from app.settings import Settings
from app.voice.runtime import get_runtime


def _refusal(request: Request[Any, Any, Any], settings: Settings) -> Response[dict[str, object]] | None:
    """A plain 401 for a missing or wrong token (not the owner pages' redirect to sign-in)."""
    if not settings.operator_token:
        raise NotFoundException()
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), settings.operator_token.encode()):
        return Response({"error": "operator token required"}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})
    return None


@post("/ops/drain", name="ops:drain", status_code=202)
async def start_drain(request: Request[Any, Any, Any], settings: Settings) -> Response[dict[str, object]]:
    if (refused := _refusal(request, settings)) is not None:
        return refused
    live = get_runtime(request.app).drain()
    return Response({"status": "draining", "live_calls": live,
                     "timeout_seconds": settings.drain_timeout_seconds}, status_code=202)


@get("/ops/drain", name="ops:drain-status")
async def drain_status(request: Request[Any, Any, Any], settings: Settings) -> Response[dict[str, object]]:
    if (refused := _refusal(request, settings)) is not None:
        return refused
    runtime = get_runtime(request.app)
    # "moving" until the hand-over of phone calls has finished (its report written): a deploy that stops the
    # instance on live_calls == 0 alone could cut that last step.
    return Response({"draining": runtime.draining, "live_calls": len(runtime.bridges), "moving": runtime.moving})


ROUTES: list[ControllerRouterHandler] = [start_drain, drain_status]
