"""A rate limit per client address counted on the database, shared by every worker and instance (issue 10).

Litestar's `RateLimitConfig` keeps its counts in the process's memory store: with `WEB_CONCURRENCY=2` or two
instances a client got the limit once per process, and a restart forgot it. This middleware asks
`app.db.rate_limits.RateLimits` (one atomic upsert per request) instead, and answers as Litestar's does: 429
through the app's error pages, with the IETF draft `RateLimit-*` headers on every response it counts.

The client is `scope["client"]` as `ProxyHeadersMiddleware` (outermost) left it: the forwarded client behind
a trusted proxy, else the peer. HTTP only; WebSocket scopes pass straight through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.db.rate_limits import Count, RateLimits


def _headers(count: Count, window: timedelta) -> dict[str, str]:
    seconds = int(window.total_seconds())
    reset = max(0, int((count.reset_at - datetime.now(UTC)).total_seconds()))
    return {"RateLimit-Policy": f"{count.limit}; w={seconds}", "RateLimit-Limit": str(count.limit),
            "RateLimit-Remaining": str(count.remaining), "RateLimit-Reset": str(reset)}


class SharedRateLimit:
    def __init__(self, app: ASGIApp, *, name: str, limit: int, window_seconds: int) -> None:
        self.app = app
        self.name = name
        self.limit = limit
        self.window = timedelta(seconds=window_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = _limits_of(scope)
        client = scope.get("client")
        count = await limits.hit(self.name, client[0] if client else "anonymous", limit=self.limit,
                                 window=self.window)
        headers = _headers(count, self.window)
        if not count.allowed:
            raise TooManyRequestsException(headers=headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableScopeHeaders(message)
                for key, value in headers.items():
                    mutable[key] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _limits_of(scope: Scope) -> RateLimits:
    state: Any = scope["litestar_app"].state
    limits = state.get("rate_limits")
    if limits is None:
        limits = state.rate_limits = RateLimits(state.db)
    return limits  # type: ignore[no-any-return]


def shared_rate_limit(name: str, *, per_minute: int) -> DefineMiddleware:
    """Route or router middleware: at most `per_minute` requests a minute per client, across processes."""
    return DefineMiddleware(SharedRateLimit, name=name, limit=per_minute, window_seconds=60)
