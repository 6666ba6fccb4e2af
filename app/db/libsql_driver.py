"""sqlite3-shaped wrappers around the `libsql` driver, with sqlite3's exception types.

Kept free of SQLAlchemy so the per-connection child process (app.db.libsql_process) starts quickly.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

BUSY_TIMEOUT_SECONDS = 5.0

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


def connect_libsql(database: str, *, remote: bool, **kwargs: Any) -> LibsqlConnection:
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
