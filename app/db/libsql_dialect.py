"""Async SQLAlchemy dialect for libSQL / Turso through the ``libsql`` driver.

No published async dialect for Turso works, so this one reuses SQLAlchemy's aiosqlite adapter:
aiosqlite runs a DBAPI connection in a worker thread, and here that connection is a ``libsql``
connection (wrapped so it behaves like ``sqlite3``, app.db.libsql_driver) living in a child process
(app.db.libsql_process), because the driver keeps the GIL while it waits on the network.

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

import sqlite3
from collections.abc import Callable
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

from app.db.libsql_process import ProcessConnection

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import ConnectArgsType, DBAPIConnection
    from sqlalchemy.engine.url import URL

__all__ = ["SQLiteDialect_libsql", "normalize_database_url"]

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
        # The driver keeps the GIL while it waits, so it runs in a child process (see libsql_process).
        connector: Callable[[], Any] = lambda: ProcessConnection(database, remote=remote, **kw)  # noqa: E731
        connection = aiosqlite.Connection(connector, iter_chunk_size=64)
        # A non-daemon worker thread keeps the interpreter alive at exit (the alembic CLI hangs).
        connection._thread.daemon = True
        return AsyncAdapt_aiosqlite_connection(self, await_(connection))


class LibsqlConnectionPool(pool.AsyncAdaptedQueuePool):
    """A small queue pool: each connection is a child process (see libsql_process), so keep few.

    ``pool_size``/``max_overflow`` still override this.
    """

    def __init__(self, creator: Any, pool_size: int = 4, max_overflow: int = 0, **kw: Any) -> None:
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
        driver_conn = cast(ProcessConnection, dbapi_connection.driver_connection._conn)  # type: ignore[attr-defined]
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
