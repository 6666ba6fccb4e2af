"""Polling until a condition holds, for tests that watch a running service, a double or a database.

The timeout only bounds a hang (the suite runs on a loaded 2-core box): it is generous, and no test asserts
how fast the condition came true.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

TIMEOUT = 30.0


async def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.05) -> Any:
    """Poll `predicate` (plain or async) until it gives something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


def wait_until_sync(predicate: Callable[[], T], timeout: float = TIMEOUT, interval: float = 0.1,
                    what: str = "condition") -> T:
    """The same from a sync test (a browser test, a double's own thread-safe look), sleeping between looks."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)

