"""Async SQLAlchemy dialect for libSQL / Turso through the ``libsql`` driver.

No published async dialect for Turso works, so this one reuses SQLAlchemy's aiosqlite adapter:
aiosqlite runs a DBAPI connection in a worker thread, and here that connection is a ``libsql``
connection (wrapped so it behaves like ``sqlite3``) instead of a ``sqlite3`` one.

URL convention (see :func:`normalize_database_url`, which turns configured URLs into these):

* ``sqlite+libsql://HOST[:PORT]`` - a remote libSQL server over HTTPS (Turso).
* ``sqlite+libsql://HOST[:PORT]?secure=false`` - the same over plain HTTP, e.g. a local test
  server: ``sqlite+libsql://127.0.0.1:8080?secure=false``.
* ``sqlite+libsql:///relative/file.db`` or ``sqlite+libsql:////abs/file.db`` - a local libSQL file.

Accepted as configuration input and normalized: ``libsql://HOST[:PORT]`` (as Turso prints it,
HTTPS), ``https://HOST`` and ``http://HOST``; an ``authToken`` query parameter moves into
``connect_args``. The auth token for remote URLs is passed as ``connect_args={"auth_token": ...}``.

Remote mode speaks Hrana 3 over HTTP (``POST /v3/pipeline`` and ``POST /v3/cursor``).

Importing this module registers the dialect, so ``create_async_engine("sqlite+libsql://...")``
works afterwards.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosqlite
from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import await_

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import ConnectArgsType, DBAPIConnection
    from sqlalchemy.engine.url import URL

__all__ = ["SQLiteDialect_libsql", "normalize_database_url"]

BUSY_TIMEOUT_SECONDS = 5.0

_TRUE = {"1", "true", "yes", "on"}


# --- URL handling ---------------------------------------------------------------------------------


def normalize_database_url(url: str, auth_token: str | None) -> tuple[str, dict[str, Any]]:
    """Turn a configured database URL into ``(sqlalchemy_url, connect_args)``.

    libSQL URLs (``libsql://``, ``http(s)://``, ``sqlite+libsql://``) become the conventions in
    the module docstring; the auth token (argument, else an ``authToken`` query parameter) goes
    into ``connect_args`` for remote URLs. Any other URL passes through with no connect args.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("libsql", "http", "https", "sqlite+libsql"):
        return url, {}

    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    url_token = query.pop("authToken", None) or query.pop("auth_token", None)
    token = auth_token or url_token

    if scheme == "sqlite+libsql" and not parts.netloc:
        # Local file: there is nobody to authenticate against.
        # Built by hand: urlunsplit collapses the "///" that marks an (empty) host.
        suffix = f"?{urlencode(query)}" if query else ""
        return f"sqlite+libsql://{parts.path}{suffix}", {}

    if not parts.hostname:
        raise ValueError(f"libSQL URL has no host: {url!r}")
    if scheme == "http":
        query["secure"] = "false"
    elif scheme == "https":
        query["secure"] = "true"
    else:
        query.setdefault("secure", "true")
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    sa_url = urlunsplit(("sqlite+libsql", netloc, "", urlencode(query), ""))
    return sa_url, ({"auth_token": token} if token else {})


# --- sqlite3-compatible wrappers around the libsql driver -------------------------------------------

# libsql reports every failure as a bare ValueError carrying SQLite's message (locally) or a
# Hrana error with the SQLite code (remotely). SQLAlchemy only recognises DBAPI exceptions, so
# they are re-raised as the sqlite3 classes that the pysqlite dialect expects.
_INTEGRITY = re.compile(r"constraint failed|SQLITE_CONSTRAINT", re.IGNORECASE)
_PROGRAMMING = re.compile(r"Unsupported parameter type|Expected a list or tuple", re.IGNORECASE)


def translate_error(error: Exception) -> sqlite3.Error:
    message = str(error)
    if _INTEGRITY.search(message):
        return sqlite3.IntegrityError(message)
    if _PROGRAMMING.search(message):
        return sqlite3.ProgrammingError(message)
    # Locking ("database is locked", SQLITE_BUSY), missing tables, syntax and transport errors:
    # pysqlite reports these as OperationalError too.
    return sqlite3.OperationalError(message)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error:
        raise
    except Exception as error:  # libsql raises ValueError, and libsql.Error is not a sqlite3.Error
        if isinstance(error, TypeError | AttributeError):
            raise
        raise translate_error(error) from error


class LibsqlCursor:
    """A ``libsql`` cursor with sqlite3 exception types."""

    def __init__(self, connection: LibsqlConnection, cursor: Any) -> None:
        self._connection = connection
        self._cursor = cursor

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> LibsqlCursor:
        with _translated():
            self._cursor.execute(sql, tuple(parameters))
        self._connection._after_statement()
        return self

    def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any]]) -> LibsqlCursor:
        with _translated():
            self._cursor.executemany(sql, [tuple(p) for p in seq_of_parameters])
        self._connection._after_statement()
        return self

    def executescript(self, script: str) -> LibsqlCursor:
        with _translated():
            self._cursor.executescript(script)
        return self

    def fetchone(self) -> Any:
        with _translated():
            return self._cursor.fetchone()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        with _translated():
            return list(self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany())

    def fetchall(self) -> list[Any]:
        with _translated():
            return list(self._cursor.fetchall())

    def close(self) -> None:
        with _translated():
            self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def lastrowid(self) -> int | None:
        return cast("int | None", self._cursor.lastrowid)

    @property
    def arraysize(self) -> int:
        return int(self._cursor.arraysize)

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class LibsqlConnection:
    """A ``libsql`` connection shaped like ``sqlite3.Connection`` for aiosqlite and SQLAlchemy.

    libsql's ``isolation_level`` is fixed at connect time (the attribute is read-only), so
    SQLAlchemy's AUTOCOMMIT level (``isolation_level = None``) is emulated by committing after
    every statement; any other level keeps libsql's sqlite3-style implicit ``BEGIN``.
    """

    def __init__(self, connection: Any, *, remote: bool) -> None:
        self._conn = connection
        self._autocommit = False
        self.remote = remote

    def cursor(self) -> LibsqlCursor:
        with _translated():
            return LibsqlCursor(self, self._conn.cursor())

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> LibsqlCursor:
        return self.cursor().execute(sql, parameters)

    def commit(self) -> None:
        with _translated():
            self._conn.commit()

    def rollback(self) -> None:
        with _translated():
            self._conn.rollback()

    def close(self) -> None:
        with _translated():
            self._conn.close()

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)

    @property
    def isolation_level(self) -> str | None:
        return None if self._autocommit else cast("str | None", self._conn.isolation_level)

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        # sqlite3 commits a pending transaction when the level changes; do the same so switching
        # to AUTOCOMMIT does not strand an implicit transaction.
        if self.in_transaction:
            self.commit()
        self._autocommit = value is None

    def _after_statement(self) -> None:
        if self._autocommit and self.in_transaction:
            self.commit()

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.NotSupportedError("libsql does not support user-defined functions")


def _connect_libsql(database: str, *, remote: bool, **kwargs: Any) -> LibsqlConnection:
    import libsql  # deferred: a compiled extension, only needed when the dialect is used

    kwargs.setdefault("timeout", BUSY_TIMEOUT_SECONDS)
    with _translated():
        conn = libsql.connect(database, **kwargs)
    wrapped = LibsqlConnection(conn, remote=remote)
    if not remote:
        # Hrana servers own these settings for remote streams (and each remote statement may run
        # on a fresh stream), so they are only set on local files.
        cursor = wrapped.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(float(kwargs['timeout']) * 1000)}")
        cursor.close()
    return wrapped


# --- DBAPI module and dialect ---------------------------------------------------------------------


class AsyncAdapt_libsql_dbapi(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self) -> None:
        import libsql

        super().__init__(aiosqlite, sqlite3)
        # libsql rejects memoryview parameters, which is what sqlite3.Binary produces.
        self.Binary = bytes
        self.sqlite_version_info = tuple(libsql.sqlite_version_info)
        self.sqlite_version = ".".join(str(v) for v in self.sqlite_version_info)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        database: str = arg[0] if arg else kw.pop("database")
        remote = bool(kw.pop("remote", False))
        kw.pop("async_creator_fn", None)
        connector: Callable[[], Any] = lambda: _connect_libsql(database, remote=remote, **kw)  # noqa: E731
        connection = aiosqlite.Connection(connector, iter_chunk_size=64)
        # A non-daemon worker thread keeps the interpreter alive at exit (the alembic CLI hangs).
        connection._thread.daemon = True
        return AsyncAdapt_aiosqlite_connection(self, await_(connection))


class LibsqlConnectionPool(pool.AsyncAdaptedQueuePool):
    """A queue pool that defaults to ONE connection.

    The ``libsql`` driver keeps the GIL while it blocks (on SQLite's busy handler locally, on
    HTTP remotely). With two pooled connections, a writer waiting for the lock holds the GIL, so
    the lock holder's thread cannot run its COMMIT: both stall until the busy timeout and fail
    with "database is locked". One connection makes callers queue in asyncio instead, which is
    also how SQLite orders writers anyway. ``pool_size``/``max_overflow`` still override this.
    """

    def __init__(self, creator: Any, pool_size: int = 1, max_overflow: int = 0, **kw: Any) -> None:
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, **kw)


class SQLiteDialect_libsql(SQLiteDialect_aiosqlite):
    driver = "libsql"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> AsyncAdapt_libsql_dbapi:  # type: ignore[override]
        return AsyncAdapt_libsql_dbapi()

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        from sqlalchemy import util

        return util.parse_version_string(getattr(aiosqlite, "__version__", None))

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if url.host or cls._is_url_file_db(url):
            return LibsqlConnectionPool
        return super().get_pool_class(url)

    def set_isolation_level(self, dbapi_connection: DBAPIConnection, level: Any) -> None:
        driver_conn = cast(LibsqlConnection, dbapi_connection.driver_connection._conn)  # type: ignore[attr-defined]
        if level != "AUTOCOMMIT" and driver_conn.remote:
            # PRAGMA read_uncommitted only matters with a shared cache, which Hrana streams never
            # use, and libsql's remote statement parser rejects it ("unsupported statement").
            dbapi_connection.isolation_level = ""
            return
        super().set_isolation_level(dbapi_connection, level)

    def on_connect(self) -> Callable[[DBAPIConnection], None] | None:
        # pysqlite registers regexp()/floor() with create_function, which libsql lacks.
        return None

    def create_connect_args(self, url: URL) -> ConnectArgsType:
        query = dict(url.query)
        opts: dict[str, Any] = {}
        if "timeout" in query:
            opts["timeout"] = float(cast(str, query.pop("timeout")))
        token = query.pop("authToken", None) or query.pop("auth_token", None)
        if url.host:
            secure = str(query.pop("secure", "true")).lower() in _TRUE
            netloc = url.host if url.port is None else f"{url.host}:{url.port}"
            database = f"{'https' if secure else 'http'}://{netloc}"
            opts["remote"] = True
            if token:
                opts["auth_token"] = str(token)
        else:
            database = url.database or ":memory:"
        return [database], opts


dialect = SQLiteDialect_libsql

registry.register("sqlite.libsql", __name__, "SQLiteDialect_libsql")
