"""Owner pages take turns on the event loop that carries live calls' audio.

A page's work is many short steps between awaits (a query's rows, a slice of its template: app/web/rendering.py).
One page at a time costs a frame at most one such step. But asyncio runs ready steps first come, first served,
so six tabs' pages in flight put up to six steps in front of every frame that arrives: at 100,000 calls with 20
calls streaming, that queue is what kept the frames' p99 at ~30 ms against ~7 ms without the pages
(bench/bench_pages_under_load.py). Here at most `TURNS` page requests run their handler at once; the rest wait
for a turn, which frees when the response starts (so a stream, a recording or server-sent events never holds
one). A page never waits more than `WAIT_AT_MOST_SECONDS` for its turn (one that awaits a slow outside service,
say): past that it goes ahead beside the others.

The paths that callers and services reach (Twilio's webhooks, the call sockets, Polar's and Google's
notifications, health and metrics, static files) never wait for a turn.
"""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

TURNS = 1
WAIT_AT_MOST_SECONDS = 1.0
NEVER_WAIT = ("/twilio/", "/ws/", "/ops/", "/health", "/metrics", "/static/", "/billing/polar/webhook",
              "/google/calendar/notify")


class PageTurns(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, turns: int = TURNS, wait_at_most: float = WAIT_AT_MOST_SECONDS) -> None:
        self._count = turns
        self._wait_at_most = wait_at_most
        # One per event loop: an app served by one loop after another (tests do) must not share a semaphore
        # bound to a loop that is gone.
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Semaphore(self._count))
        return self._turns[1]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["path"].startswith(NEVER_WAIT):
            await next_app(scope, receive, send)
            return
        turns = self._semaphore()
        try:
            async with asyncio.timeout(self._wait_at_most):
                await turns.acquire()
            holding = True
        except TimeoutError:
            holding = False

        async def release_when_started(message: Message) -> None:
            nonlocal holding
            if holding and message["type"] == "http.response.start":
                holding = False
                turns.release()
            await send(message)

        try:
            await next_app(scope, receive, release_when_started)
        finally:
            if holding:
                turns.release()
