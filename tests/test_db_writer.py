"""The per-process writer queue (app/db/writer.py): its fast lane for the writes on the way to a greeting, and
`transact`, the writes run as one unit in the writer's own thread on the SQLite file."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as SyncSession

from app.db.engine import Database
from app.db.models import Session
from app.db.writer import WriterQueue
from tests.support.data import create_owner


async def test_urgent_writers_go_first_and_each_lane_keeps_its_order() -> None:
    queue = WriterQueue()
    order: list[str] = []
    release = asyncio.Event()

    async def writer(name: str, *, urgent: bool = False) -> None:
        async with queue.hold(urgent=urgent):
            order.append(name)
            if name == "first":
                await release.wait()

    tasks = [asyncio.create_task(writer("first"))]
    await asyncio.sleep(0)
    for name, urgent in [("other-1", False), ("claim-1", True), ("other-2", False), ("claim-2", True)]:
        tasks.append(asyncio.create_task(writer(name, urgent=urgent)))
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first", "claim-1", "claim-2", "other-1", "other-2"]


async def test_a_cancelled_waiter_never_holds_the_queue() -> None:
    queue = WriterQueue()
    order: list[str] = []
    release = asyncio.Event()

    async def writer(name: str) -> None:
        async with queue.hold():
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(writer("first"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(writer("gone"))
    last = asyncio.create_task(writer("last"))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(first, last)
    assert gone.cancelled() and order == ["first", "last"]

    # Cancelled just as the queue was handed to it: it passes the queue on rather than keep it.
    async with queue.hold():
        handed = asyncio.create_task(writer("handed"))
        after = asyncio.create_task(writer("after"))
        await asyncio.sleep(0)
    handed.cancel()  # its turn has come (its waiter is done) but it has not run yet
    await asyncio.wait_for(after, 5)
    assert "handed" not in order and order[-1] == "after"


async def count_sessions(db: Database) -> int:
    async with db.session() as s:
        return await s.scalar(select(func.count()).select_from(Session)) or 0


async def test_transact_runs_in_the_writers_thread_as_one_unit(db: Database) -> None:
    _user, business = await create_owner(db)
    threads: list[str] = []

    def add(s: SyncSession) -> str:
        threads.append(threading.current_thread().name)
        s.add(Session(business_id=business.id, channel="browser", token_nonce="n1"))
        return "added"

    assert await db.transact(add) == "added"
    assert threads[0].startswith("db-writer") and await count_sessions(db) == 1

    def add_then_fail(s: SyncSession) -> None:
        s.add(Session(business_id=business.id, channel="browser", token_nonce="n2"))
        s.flush()
        raise RuntimeError("the rest of the transaction failed")

    with pytest.raises(RuntimeError):
        await db.transact(add_then_fail)
    assert await count_sessions(db) == 1  # nothing of it was kept

    # Writers through `write()` and `transact()` share one queue: 30 interleaved increments lose none.
    async def bump_async() -> None:
        async with db.write() as s:
            row = await s.scalar(select(Session).where(Session.token_nonce == "n1"))
            assert row is not None
            await s.execute(update(Session).where(Session.id == row.id).values(
                failure_reason=str(int(row.failure_reason or "0") + 1)))

    def bump(s: SyncSession) -> None:
        row = s.scalar(select(Session).where(Session.token_nonce == "n1"))
        assert row is not None
        s.execute(update(Session).where(Session.id == row.id).values(
            failure_reason=str(int(row.failure_reason or "0") + 1)))

    await asyncio.gather(*(bump_async() if k % 2 else db.transact(bump, urgent=k % 3 == 0) for k in range(30)))
    async with db.session() as s:
        assert await s.scalar(select(Session.failure_reason).where(Session.token_nonce == "n1")) == "30"
