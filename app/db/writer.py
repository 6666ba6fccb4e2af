"""One writer at a time per process, and writers that take SQLite's write lock up front (issue 10).

SQLite has one write lock per database file. When 20 calls start at once, each with a few small write
transactions, letting them all race for it costs far more than the writes: a connection that finds the lock
taken sleeps in SQLite's busy handler (5, 10, 25, 50, 100 ms... steps, with no queue, so an unlucky writer
waits out several steps after the lock came free), and a deferred transaction that read before it wrote can be
refused outright when another connection committed in between. Measured here: 20 concurrent session inserts
took 72-92 ms in all, 22-25 ms when serialised in-process.

So the hot write paths (session and call transitions, job claims, rate-limit counters) go through
`Database.write()`:

- a lock per process puts them in a queue (first come, first served, the writes on the way to a greeting
  first: `WriterQueue`) instead of the busy handler;
- on the embedded SQLite file the transaction opens with `BEGIN IMMEDIATE`, so it holds the write lock from
  its first statement: its reads and its writes see one snapshot, and a second process waits in
  `busy_timeout` for the lock (10 s) rather than failing with "database is locked";
- on libSQL / Turso the server orders writers; the in-process queue still keeps one worker's writers from
  piling onto it at once. The `libsql` driver opens its own transaction before the first change.

A writer must not open another `write()` inside its own (the lock is not re-entrant): everything it does goes
through the session it was given.

The writes on the way to a greeting (the stream's claim, the call's start) go through `transact(work)`: `work`
is a plain function of a sync ORM session, run as one unit. On the SQLite file it runs in the writer's own
thread on its own connection: the whole transaction is one hand-off from the event loop, where through
aiosqlite each statement, fetch, commit and reset is a round trip that waits for the loop, and with 20 calls
starting that loop is busy (measured: ~10 ms a transaction held the queue, bench_greeting.py). Elsewhere
(libSQL) `work` runs through `AsyncSession.run_sync`, statement by statement as before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.orm import sessionmaker

T = TypeVar("T")


class WriterQueue:
    """A first-come, first-served lock with a fast lane: a writer on the way to a greeting (`urgent`) goes
    before every writer that is not, so a burst of call starts isn't queued behind finished calls' records."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held:
            self._held = True
            return
        waiter = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._others).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the lock just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        for waiters in (self._urgent, self._others):
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():  # a cancelled waiter is skipped
                    waiter.set_result(None)  # handed over: the queue stays held
                    return
        self._held = False


class SerialWriter:
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], *, immediate: bool,
                 thread_sessions: sessionmaker[SyncSession] | None = None) -> None:
        self._sessions = session_maker
        self._immediate = immediate
        self._queue = WriterQueue()
        self._thread_sessions = thread_sessions
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="db-writer") if thread_sessions else None

    async def transact(self, work: Callable[[SyncSession], T], *, urgent: bool = False) -> T:
        async with self._queue.hold(urgent=urgent):
            if self._thread is None:
                async with self.transaction_unlocked() as s:
                    return await s.run_sync(work)
            done = asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, work)
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread finishes its transaction whatever happens here; the queue waits for it, so the
                # next writer doesn't meet SQLite's lock still held.
                await asyncio.wait([done])
                raise

    def _in_thread(self, work: Callable[[SyncSession], T]) -> T:
        assert self._thread_sessions is not None
        with self._thread_sessions() as s:
            s.execute(text("BEGIN IMMEDIATE"))
            try:
                result = work(s)
            except BaseException:
                s.rollback()
                raise
            s.commit()
            return result

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._queue.hold(), self.transaction_unlocked() as s:
            yield s

    @asynccontextmanager
    async def transaction_unlocked(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as s:
            if self._immediate:
                # pysqlite (legacy transaction control) leaves an explicit BEGIN alone and sees the
                # transaction open, so it adds none of its own; SQLAlchemy's commit/rollback end it.
                await s.execute(text("BEGIN IMMEDIATE"))
            try:
                yield s
            except BaseException:
                await asyncio.shield(s.rollback())
                raise
            await s.commit()
