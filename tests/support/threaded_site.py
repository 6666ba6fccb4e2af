"""An aiohttp application served on loopback from its own thread with its own event loop.

The doubles (Twilio, Polar, Google Calendar, OpenAI) and the test load balancer each run on one, so a sync
test and an async test can both use them: neither the test's loop (nor its absence) drives the server.
Stopping one is aiohttp's graceful shutdown run on the site's loop: the listening socket closes, the app's
`on_shutdown` handlers run (close long-lived WebSockets there), open requests finish, then `on_cleanup`
(close clients, cancel leftover tasks there).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Self

from aiohttp import web

_START_SECONDS = 10.0
_STOP_SECONDS = 10.0


class ThreadedSite:
    """`make_app` builds the application; it is called on the site's own loop, once per start."""

    def __init__(self, name: str, make_app: Callable[[], web.Application], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.name = name
        self.host = host
        #: the port bound; 0 until the first start (with `port=0` a free one is picked at each start)
        self.port = port
        #: the site's loop while it runs (None before start and after stop): schedule work on it with
        #: `asyncio.run_coroutine_threadsafe(coro, site.loop)`
        self.loop: asyncio.AbstractEventLoop | None = None
        self._make_app = make_app
        self._wanted_port = port
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadedSite:
        if self.loop is not None:
            return self
        # Bound here, not by aiohttp, so the port is known without reaching into the site's server.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._wanted_port))
        self.port = int(sock.getsockname()[1])
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            runner = web.AppRunner(self._make_app(), access_log=None)
            await runner.setup()
            self._runner = runner
            await web.SockSite(runner, sock).start()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException as exc:  # surfaced to start()'s caller below
                failure.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        self.loop, self._thread = loop, thread
        thread.start()
        if not ready.wait(_START_SECONDS) or failure:
            self.loop = self._thread = self._runner = None
            sock.close()
            raise RuntimeError(f"{self.name} did not start") from (failure[0] if failure else None)
        return self

    def stop(self) -> None:
        loop, thread, runner = self.loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        try:
            if runner is not None:
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(_STOP_SECONDS)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_SECONDS)
            self.loop = self._thread = self._runner = None

    def __enter__(self) -> ThreadedSite:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class OnThreadedSite:
    """What a double (or the load balancer) served by a `ThreadedSite` in `self._site` gets for free: start and
    stop (also as a with-block), its port, and its loop for scheduling (None when stopped)."""

    _site: ThreadedSite

    def start(self) -> Self:
        self._site.start()
        return self

    def stop(self) -> None:
        self._site.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._site.port

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return self._site.loop
