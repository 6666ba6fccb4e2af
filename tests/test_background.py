"""Background loops (housekeeping, summaries) stop between passes: a pass under way finishes, unless it
outlasts the grace period; a failing pass is logged and the loop goes on."""

from __future__ import annotations

import asyncio

from app.background import BackgroundLoop


async def test_stop_lets_the_pass_under_way_finish() -> None:
    started, finished = asyncio.Event(), []

    async def slow_pass() -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.append(True)

    loop = BackgroundLoop("test", slow_pass, interval=60)
    loop.start()
    await started.wait()
    await loop.stop(grace=5)
    assert finished == [True]


async def test_a_pass_that_outlasts_the_grace_is_cancelled() -> None:
    started, cancelled = asyncio.Event(), []

    async def stuck_pass() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    loop = BackgroundLoop("test", stuck_pass, interval=60)
    loop.start()
    await started.wait()
    await asyncio.wait_for(loop.stop(grace=0.1), 2)
    assert cancelled == [True]


async def test_wake_runs_a_pass_early_and_failures_do_not_end_the_loop() -> None:
    passes: list[int] = []
    ran = asyncio.Event()

    async def flaky_pass() -> None:
        passes.append(len(passes))
        ran.set()
        if len(passes) == 1:
            raise RuntimeError("boom")

    loop = BackgroundLoop("test", flaky_pass, interval=60)
    loop.start()
    await asyncio.wait_for(ran.wait(), 2)
    ran.clear()
    loop.wake()
    await asyncio.wait_for(ran.wait(), 2)  # long before the 60 s interval, and after a failed pass
    await loop.stop()
    assert passes == [0, 1]
