"""Engine set-up for the embedded SQLite file (default) or Turso/libSQL, shared by web handlers and calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import Engine, create_engine, event, pool, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.orm import sessionmaker

from app.db.writer import SerialWriter
from app.settings import ROOT, Settings

BUSY_TIMEOUT_MS = 10_000
SQLITE_POOL_SIZE = 20
SQLITE_POOL_OVERFLOW = 20

T = TypeVar("T")


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        return Path(url.removeprefix(prefix).split("?", 1)[0])
    return None


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while a call writes; foreign keys are off by default in SQLite;
    # the busy timeout makes concurrent writers wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def build_sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    url, connect_args = settings.database_url, {}
    if settings.uses_libsql:
        from app.db import libsql_dialect  # registers the sqlite+libsql dialect

        url, connect_args = libsql_dialect.normalize_database_url(url, settings.turso_auth_token)
    pool: dict[str, Any] = {}
    if (path := _sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pool = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_OVERFLOW}
    return SQLAlchemyAsyncConfig(
        connection_string=url,
        # Statement errors would otherwise quote their parameters: transcripts, callers' numbers, tokens.
        engine_config=EngineConfig(connect_args=connect_args, hide_parameters=True, **pool),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(
            script_location=str(ROOT / "migrations"),
            version_table_name="alembic_version",
        ),
        before_send_handler="autocommit",
        create_all=False,
    )


class Database:
    """One engine and session factory per process, for request handlers and background call tasks alike."""

    def __init__(self, settings: Settings) -> None:
        self.config = build_sqlalchemy_config(settings)
        self.engine: AsyncEngine = self.config.get_engine()
        if self.engine.dialect.name == "sqlite" and self.engine.dialect.driver == "aiosqlite":
            event.listen(self.engine.sync_engine, "connect", _on_sqlite_connect)
        self.session_maker: async_sessionmaker[AsyncSession] = self.config.create_session_maker()
        # Issue 10: the hot write paths queue per process (app/db/writer.py); on the SQLite file the writer has
        # a thread and a connection of its own for the writes on the way to a greeting.
        self._thread_engine: Engine | None = None
        thread_sessions: sessionmaker[SyncSession] | None = None
        if self.engine.dialect.driver == "aiosqlite" and _sqlite_file(settings.database_url) is not None:
            # One connection, used by the writer's thread only (closed from another at dispose).
            self._thread_engine = create_engine(self.engine.url.set(drivername="sqlite"), hide_parameters=True,
                                                poolclass=pool.QueuePool, pool_size=1, max_overflow=0,
                                                connect_args={"check_same_thread": False})
            event.listen(self._thread_engine, "connect", _on_sqlite_connect)
            thread_sessions = sessionmaker(self._thread_engine, expire_on_commit=False)
        self._writer = SerialWriter(self.session_maker, immediate=self.engine.dialect.driver == "aiosqlite",
                                    thread_sessions=thread_sessions)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.session_maker() as session:
            yield session

    def write(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A write transaction in this process's writer queue (`BEGIN IMMEDIATE` on SQLite); commits on exit."""
        return self._writer.transaction()

    async def transact(self, work: Callable[[SyncSession], T], *, urgent: bool = False) -> T:
        """`work(session)` as one write transaction in the writer queue, run as a unit (app/db/writer.py): for
        short, hot writes. `work` must not block on anything but the database. `urgent`: on the way to a
        greeting, ahead of every other writer waiting."""
        return await self._writer.transact(work, urgent=urgent)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        self._writer.close()
        if self._thread_engine is not None:
            self._thread_engine.dispose()


async def find_or_create(
    session_maker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run a find-or-create `work` in its own transaction. When two writers insert the same unique row at
    once, the loser's commit fails; it runs `work` once more and finds the winner's row. A second
    IntegrityError is a real conflict and propagates."""
    try:
        async with session_maker() as s, s.begin():
            return await work(s)
    except IntegrityError:
        pass
    async with session_maker() as s, s.begin():
        return await work(s)
