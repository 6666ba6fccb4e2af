"""Background loops that stop between passes.

Cancelling a pass halfway leaves aiosqlite's worker thread to deliver the statement's result to an event
loop that may be closed by then (an "Exception in thread" traceback at every shutdown). So `stop()` asks
the loop to end, lets the pass under way finish (bounded by a grace period), and only then cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class BackgroundLoop:
    def __init__(self, name: str, run_pass: Callable[[], Awaitable[None]], interval: float) -> None:
        self.name = name
        self._run_pass = run_pass
        self._interval = interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run the next pass now rather than at the end of the interval."""
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._run_pass()
            except Exception:
                log.exception("%s: pass failed", self.name)
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
