"""One writer at a time per process, and writers that take SQLite's write lock up front (issue 10).

SQLite has one write lock per database file. When 20 calls start at once, each with a few small write
transactions, letting them all race for it costs far more than the writes: a connection that finds the lock
taken sleeps in SQLite's busy handler (5, 10, 25, 50, 100 ms... steps, with no queue, so an unlucky writer
waits out several steps after the lock came free), and a deferred transaction that read before it wrote can be
refused outright when another connection committed in between. Measured here: 20 concurrent session inserts
took 72-92 ms in all, 22-25 ms when serialised in-process.

So the hot write paths (session and call transitions, job claims, rate-limit counters) go through
`Database.write()`:

- an `asyncio.Lock` per process puts them in a queue (first come, first served) instead of the busy handler;
- on the embedded SQLite file the transaction opens with `BEGIN IMMEDIATE`, so it holds the write lock from
  its first statement: its reads and its writes see one snapshot, and a second process waits in
  `busy_timeout` for the lock (10 s) rather than failing with "database is locked";
- on libSQL / Turso the server orders writers; the in-process queue still keeps one worker's writers from
  piling onto it at once. The `libsql` driver opens its own transaction before the first change.

A writer must not open another `write()` inside its own (the lock is not re-entrant): everything it does goes
through the session it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class SerialWriter:
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], *, immediate: bool) -> None:
        self._sessions = session_maker
        self._immediate = immediate
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._lock, self._sessions() as s:
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
