"""Run each libSQL connection in its own child process, so its network waits never stall the event loop.

The `libsql` driver (0.1.11) keeps the GIL while it blocks: on HTTP round trips to Turso, and on SQLite's
busy handler for a local file. Run in aiosqlite's worker thread, as the dialect would otherwise do, every
statement froze the whole process for its round trips (measured: a 100 ms link stalled the event loop for
over 200 ms per statement), and with it the audio of every call. Here the driver runs in a child process;
the worker thread waits on a pipe, which releases the GIL, so the event loop keeps running.

Rows are fetched eagerly in the child and shipped with the statement's result: the app's queries are
paged, so a result is small, and it saves a round trip per fetch.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

_CONTEXT = multiprocessing.get_context("spawn")  # no fork: the parent runs threads and an event loop


def _serve(pipe: Connection, database: str, remote: bool, kwargs: dict[str, Any]) -> None:
    """The child: one libsql connection, answering requests from the parent until `close` or EOF."""
    from app.db.libsql_driver import connect_libsql

    try:
        conn = connect_libsql(database, remote=remote, **kwargs)
    except BaseException as exc:  # reported to the parent, which raises it from connect()
        pipe.send(("err", exc))
        return
    pipe.send(("ok", conn.isolation_level))
    while True:
        try:
            request = pipe.recv()
        except (EOFError, OSError):
            break  # the parent went away
        op, args = request[0], request[1:]
        try:
            if op == "execute" or op == "executemany" or op == "executescript":
                cursor = conn.cursor()
                getattr(cursor, op)(*args)
                rows = cursor.fetchall() if cursor.description else []
                result: Any = (cursor.description, cursor.rowcount, cursor.lastrowid, rows, conn.in_transaction)
                cursor.close()
            elif op == "commit":
                conn.commit()
                result = conn.in_transaction
            elif op == "rollback":
                conn.rollback()
                result = conn.in_transaction
            elif op == "set_isolation_level":
                conn.isolation_level = args[0]
                result = conn.in_transaction
            elif op == "close":
                conn.close()
                pipe.send(("ok", None))
                break
            else:
                raise sqlite3.ProgrammingError(f"unknown request {op!r}")
        except BaseException as exc:
            try:
                pipe.send(("err", exc))
            except Exception:  # an exception that does not pickle
                pipe.send(("err", sqlite3.OperationalError(str(exc))))
            continue
        pipe.send(("ok", result))
    pipe.close()


class ProcessCursor:
    """A sqlite3-shaped cursor whose rows arrived with the statement's result."""

    arraysize = 1

    def __init__(self, connection: ProcessConnection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self._position = 0
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def _run(self, op: str, *args: Any) -> ProcessCursor:
        description, rowcount, lastrowid, rows, in_transaction = self._connection._call(op, *args)
        self.description, self.rowcount, self.lastrowid = description, rowcount, lastrowid
        self._rows, self._position = list(rows), 0
        self._connection.in_transaction = in_transaction
        return self

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> ProcessCursor:
        return self._run("execute", sql, tuple(parameters))

    def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any]]) -> ProcessCursor:
        return self._run("executemany", sql, [tuple(p) for p in seq_of_parameters])

    def executescript(self, script: str) -> ProcessCursor:
        return self._run("executescript", script)

    def fetchone(self) -> Any:
        if self._position >= len(self._rows):
            return None
        self._position += 1
        return self._rows[self._position - 1]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        chunk = self._rows[self._position : self._position + count]
        self._position += len(chunk)
        return chunk

    def fetchall(self) -> list[Any]:
        rest = self._rows[self._position :]
        self._position = len(self._rows)
        return rest

    def close(self) -> None:
        self._rows = []


class ProcessConnection:
    """A sqlite3-shaped connection whose libsql connection lives in a child process."""

    def __init__(self, database: str, *, remote: bool, **kwargs: Any) -> None:
        self.remote = remote
        self.in_transaction = False
        self._isolation_level: str | None = ""
        self._pipe, child_end = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=_serve, args=(child_end, database, remote, kwargs), name="libsql-connection", daemon=True
        )
        self._process.start()
        child_end.close()
        self._isolation_level = self._receive()  # raises what the child's connect raised

    def _receive(self) -> Any:
        try:
            status, value = self._pipe.recv()
        except (EOFError, OSError):
            raise sqlite3.OperationalError("the libSQL connection process exited") from None
        if status == "err":
            raise value
        return value

    def _call(self, op: str, *args: Any) -> Any:
        try:
            self._pipe.send((op, *args))
        except (BrokenPipeError, OSError):
            raise sqlite3.OperationalError("the libSQL connection process exited") from None
        return self._receive()

    def cursor(self) -> ProcessCursor:
        return ProcessCursor(self)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> ProcessCursor:
        return self.cursor().execute(sql, parameters)

    def commit(self) -> None:
        self.in_transaction = self._call("commit")

    def rollback(self) -> None:
        self.in_transaction = self._call("rollback")

    @property
    def isolation_level(self) -> str | None:
        return self._isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.in_transaction = self._call("set_isolation_level", value)
        self._isolation_level = value

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.NotSupportedError("libsql does not support user-defined functions")

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._call("close")
            except sqlite3.Error:
                pass
        self._pipe.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
