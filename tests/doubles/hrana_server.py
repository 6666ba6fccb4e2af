"""A local Hrana 3 over HTTP server backed by a real SQLite file, for tests.

It implements the JSON variant of "Hrana over HTTP" from the public libSQL spec
(tursodatabase/libsql ``docs/HRANA_3_SPEC.md``):

* ``GET /v3`` - version check (200).
* ``POST /v3/pipeline`` - a pipeline of stream requests (``execute``, ``batch``, ``sequence``,
  ``describe``, ``store_sql``, ``close_sql``, ``close``, ``get_autocommit``), chained by a baton.
* ``POST /v3/cursor`` - a batch whose results come back as newline-delimited JSON entries.

Captured from the ``libsql`` Python driver (0.1.11): every statement is first sent as
``describe`` on ``/v3/pipeline`` (the driver takes ``cursor.description`` from it, so it must be
exact); statements that return rows then run as a one-step batch on ``/v3/cursor``, others as a
``batch`` + ``get_autocommit`` (+ ``close`` in autocommit) pipeline; it sends ``BEGIN;`` itself
before DML, and blobs as unpadded base64. The Protobuf variant (``/v3-protobuf``) is not
implemented: ``GET /v3-protobuf`` answers 404, and JSON clients do not need it.

Every stream owns one ``sqlite3`` connection (WAL, ``foreign_keys=ON``, 5 s busy timeout), kept
while its baton is valid and closed on ``close`` or after ``stream_timeout`` seconds idle, the
way a real server reclaims streams of clients that went away.

Run by hand: ``python -m tests.doubles.hrana_server --db FILE --port N [--token T]``.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import ctypes.util
import hmac
import json
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

JSON = dict[str, Any]

BUSY_TIMEOUT_SECONDS = 5.0


class HranaError(Exception):
    """An error reported to the client as a Hrana ``Error`` structure."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def to_json(self) -> JSON:
        return {"message": self.message, "code": self.code}


def _sqlite_error(exc: sqlite3.Error) -> HranaError:
    # sqlite_errorname carries the extended code (e.g. SQLITE_CONSTRAINT_UNIQUE), which is what
    # clients match on; errors raised by the Python layer itself have no code.
    code = getattr(exc, "sqlite_errorname", None) or "SQLITE_ERROR"
    return HranaError(str(exc), code)


# --- values -------------------------------------------------------------------------------------


def decode_value(value: JSON) -> Any:
    kind = value.get("type")
    if kind == "null":
        return None
    if kind == "integer":
        return int(value["value"])
    if kind == "float":
        return float(value["value"])
    if kind == "text":
        return str(value["value"])
    if kind == "blob":
        # libSQL clients send unpadded base64 (the spec does not say which); accept both.
        data = str(value.get("base64", ""))
        return base64.b64decode(data + "=" * (-len(data) % 4))
    raise HranaError(f"unknown value type {kind!r}", "HRANA_PROTO_ERROR")


def encode_value(value: Any) -> JSON:
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        # Integers travel as strings so 64-bit values survive JSON parsers that use doubles.
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "text", "value": value}
    if isinstance(value, bytes | bytearray | memoryview):
        # Unpadded, as libSQL servers send it: the Rust client decodes with a no-padding engine.
        return {"type": "blob", "base64": base64.b64encode(bytes(value)).decode("ascii").rstrip("=")}
    raise HranaError(f"cannot encode value of type {type(value).__name__}")


# --- statement description through the SQLite C API -----------------------------------------------


class _Describer:
    """Prepares (never runs) a statement to answer ``describe``.

    The stdlib ``sqlite3`` module cannot prepare without stepping, and clients such as the
    ``libsql`` driver take ``cursor.description`` from ``describe``, so it must be exact. The
    statement is prepared on the stream's own connection handle so it sees schema changes that
    are still uncommitted in that stream; that is only done when the process's ``_sqlite3``
    module is dynamically linked against the same libsqlite3 (checked via the file name the
    handle reports). Otherwise a private connection to the same file is used.
    """

    def __init__(self) -> None:
        self.lib: ctypes.CDLL | None = None
        path = self._loaded_libsqlite() or ctypes.util.find_library("sqlite3")
        if path is None:
            return
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            return
        lib.sqlite3_open_v2.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                        ctypes.c_char_p]
        lib.sqlite3_close_v2.argtypes = [ctypes.c_void_p]
        lib.sqlite3_prepare_v2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                           ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_char_p)]
        lib.sqlite3_finalize.argtypes = [ctypes.c_void_p]
        lib.sqlite3_errmsg.argtypes = [ctypes.c_void_p]
        lib.sqlite3_errmsg.restype = ctypes.c_char_p
        lib.sqlite3_extended_errcode.argtypes = [ctypes.c_void_p]
        lib.sqlite3_errstr.argtypes = [ctypes.c_int]
        lib.sqlite3_errstr.restype = ctypes.c_char_p
        lib.sqlite3_bind_parameter_count.argtypes = [ctypes.c_void_p]
        lib.sqlite3_bind_parameter_name.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.sqlite3_bind_parameter_name.restype = ctypes.c_char_p
        lib.sqlite3_column_count.argtypes = [ctypes.c_void_p]
        lib.sqlite3_column_name.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.sqlite3_column_name.restype = ctypes.c_char_p
        lib.sqlite3_column_decltype.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.sqlite3_column_decltype.restype = ctypes.c_char_p
        lib.sqlite3_stmt_readonly.argtypes = [ctypes.c_void_p]
        lib.sqlite3_stmt_isexplain.argtypes = [ctypes.c_void_p]
        lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.sqlite3_db_filename.restype = ctypes.c_char_p
        lib.sqlite3_libversion_number.restype = ctypes.c_int
        self.lib = lib

    @staticmethod
    def _loaded_libsqlite() -> str | None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return None
        for line in maps.splitlines():
            parts = line.split()
            if len(parts) >= 6 and "/libsqlite3" in parts[5] and ".so" in parts[5]:
                return parts[5]
        return None

    def handle_of(self, conn: sqlite3.Connection, db_path: str) -> int | None:
        if self.lib is None:
            return None
        major, minor, patch = sqlite3.sqlite_version_info
        if self.lib.sqlite3_libversion_number() != major * 1_000_000 + minor * 1000 + patch:
            return None
        # CPython's pysqlite_Connection starts with PyObject_HEAD followed by the sqlite3* handle.
        handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
        if not handle:
            return None
        name = self.lib.sqlite3_db_filename(handle, b"main")
        if name is None or Path(name.decode()).resolve() != Path(db_path).resolve():
            return None
        return handle

    def describe(self, handle: int | None, db_path: str, sql: str) -> JSON:
        lib = self.lib
        if lib is None:
            raise HranaError("describe is not available: libsqlite3 not found", "SQLITE_ERROR")
        own = handle is None
        if own:
            db = ctypes.c_void_p()
            rc = lib.sqlite3_open_v2(db_path.encode(), ctypes.byref(db), 0x00000001, None)  # READONLY
            if rc != 0:
                lib.sqlite3_close_v2(db)
                raise HranaError(f"cannot open {db_path}", "SQLITE_CANTOPEN")
            handle = db.value
        try:
            stmt = ctypes.c_void_p()
            tail = ctypes.c_char_p()
            encoded = sql.encode()
            rc = lib.sqlite3_prepare_v2(handle, encoded, len(encoded), ctypes.byref(stmt), ctypes.byref(tail))
            if rc != 0:
                code = lib.sqlite3_extended_errcode(handle)
                raise HranaError(lib.sqlite3_errmsg(handle).decode(), _errcode_name(code))
            if not stmt.value:
                raise HranaError("SQL text contains no statement", "SQLITE_MISUSE")
            try:
                params = []
                for i in range(1, lib.sqlite3_bind_parameter_count(stmt) + 1):
                    raw = lib.sqlite3_bind_parameter_name(stmt, i)
                    params.append({"name": raw.decode() if raw is not None else None})
                cols = []
                for i in range(lib.sqlite3_column_count(stmt)):
                    name = lib.sqlite3_column_name(stmt, i)
                    decl = lib.sqlite3_column_decltype(stmt, i)
                    cols.append({
                        "name": name.decode() if name is not None else "",
                        "decltype": decl.decode() if decl is not None else None,
                    })
                return {
                    "params": params,
                    "cols": cols,
                    "is_explain": bool(lib.sqlite3_stmt_isexplain(stmt)),
                    "is_readonly": bool(lib.sqlite3_stmt_readonly(stmt)),
                }
            finally:
                lib.sqlite3_finalize(stmt)
        finally:
            if own:
                lib.sqlite3_close_v2(handle)


_PRIMARY_CODES = {
    1: "SQLITE_ERROR", 5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 11: "SQLITE_CORRUPT", 14: "SQLITE_CANTOPEN",
    19: "SQLITE_CONSTRAINT", 21: "SQLITE_MISUSE", 23: "SQLITE_AUTH", 25: "SQLITE_RANGE", 26: "SQLITE_NOTADB",
}


def _errcode_name(code: int) -> str:
    return _PRIMARY_CODES.get(code & 0xFF, "SQLITE_ERROR")


_DESCRIBER = _Describer()


# --- streams ------------------------------------------------------------------------------------


@dataclass
class Stream:
    conn: sqlite3.Connection
    db_path: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    sqls: dict[int, str] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)
    closed: bool = False

    @property
    def is_autocommit(self) -> bool:
        return not self.conn.in_transaction

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # Closing rolls back whatever transaction the client left open.
            self.conn.close()

    def sql_text(self, body: JSON) -> str:
        sql, sql_id = body.get("sql"), body.get("sql_id")
        if (sql is None) == (sql_id is None):
            raise HranaError("exactly one of 'sql' and 'sql_id' must be given", "HRANA_PROTO_ERROR")
        if sql is not None:
            return str(sql)
        try:
            return self.sqls[int(sql_id)]
        except KeyError:
            raise HranaError(f"SQL text {sql_id} is not stored", "SQL_NOT_FOUND") from None

    # requests

    def execute(self, stmt: JSON) -> JSON:
        sql = self.sql_text(stmt)
        args = [decode_value(v) for v in stmt.get("args") or []]
        named = {_strip_prefix(a["name"]): decode_value(a["value"]) for a in stmt.get("named_args") or []}
        if args and named:
            raise HranaError("mixing positional and named arguments is not supported", "ARGS_INVALID")
        params: Any = named if named else args
        want_rows = stmt.get("want_rows", True) is not False
        before = self.conn.total_changes
        try:
            cursor = self.conn.execute(sql, params)
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from exc
        cols = [{"name": d[0], "decltype": None} for d in cursor.description or ()]
        affected = cursor.rowcount if cursor.rowcount >= 0 else self.conn.total_changes - before
        last_rowid = cursor.lastrowid
        cursor.close()
        return {
            "cols": cols,
            "rows": [[encode_value(v) for v in row] for row in rows] if want_rows else [],
            "affected_row_count": max(affected, 0),
            "last_insert_rowid": str(last_rowid) if last_rowid is not None else None,
        }

    def batch(self, batch: JSON) -> JSON:
        results: list[JSON | None] = []
        errors: list[JSON | None] = []
        for step in batch.get("steps") or []:
            cond = step.get("condition")
            if cond is not None and not self._eval_cond(cond, results, errors):
                results.append(None)
                errors.append(None)
                continue
            try:
                results.append(self.execute(step["stmt"]))
                errors.append(None)
            except HranaError as exc:
                results.append(None)
                errors.append(exc.to_json())
        return {"step_results": results, "step_errors": errors}

    def _eval_cond(self, cond: JSON, results: list[JSON | None], errors: list[JSON | None]) -> bool:
        kind = cond.get("type")
        if kind == "ok":
            step = int(cond["step"])
            return step < len(results) and results[step] is not None
        if kind == "error":
            step = int(cond["step"])
            return step < len(errors) and errors[step] is not None
        if kind == "not":
            return not self._eval_cond(cond["cond"], results, errors)
        if kind == "and":
            return all(self._eval_cond(c, results, errors) for c in cond.get("conds") or [])
        if kind == "or":
            return any(self._eval_cond(c, results, errors) for c in cond.get("conds") or [])
        if kind == "is_autocommit":
            return self.is_autocommit
        raise HranaError(f"unknown batch condition {kind!r}", "HRANA_PROTO_ERROR")

    def sequence(self, body: JSON) -> None:
        try:
            # executescript would COMMIT an open transaction first; running statement by statement
            # keeps the stream's transaction state as the client left it.
            for sql in _split_statements(self.sql_text(body)):
                self.conn.execute(sql).close()
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from exc

    def describe(self, body: JSON) -> JSON:
        sql = self.sql_text(body)
        return _DESCRIBER.describe(_DESCRIBER.handle_of(self.conn, self.db_path), self.db_path, sql)

    def handle(self, request: JSON) -> JSON:
        kind = request.get("type")
        if kind == "execute":
            return {"type": "execute", "result": self.execute(request["stmt"])}
        if kind == "batch":
            return {"type": "batch", "result": self.batch(request["batch"])}
        if kind == "sequence":
            self.sequence(request)
            return {"type": "sequence"}
        if kind == "describe":
            return {"type": "describe", "result": self.describe(request)}
        if kind == "store_sql":
            sql_id = int(request["sql_id"])
            if sql_id in self.sqls:
                raise HranaError(f"SQL text {sql_id} is already stored", "SQL_ID_IN_USE")
            self.sqls[sql_id] = str(request["sql"])
            return {"type": "store_sql"}
        if kind == "close_sql":
            self.sqls.pop(int(request["sql_id"]), None)
            return {"type": "close_sql"}
        if kind == "get_autocommit":
            return {"type": "get_autocommit", "is_autocommit": self.is_autocommit}
        if kind == "close":
            self.close()
            return {"type": "close"}
        raise HranaError(f"unknown request type {kind!r}", "HRANA_PROTO_ERROR")


def _strip_prefix(name: str) -> str:
    # sqlite3 binds dict keys without the ':', '@' or '$' sign that Hrana names carry.
    return name[1:] if name[:1] in (":", "@", "$") else name


def _split_statements(script: str) -> list[str]:
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    if current.strip():
        statements.append(current)
    return [s for s in statements if s.strip().strip(";").strip()]


# --- server -------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    # Idle keep-alive connections must not pin handler threads forever.
    timeout = 60
    # Headers and body go out in separate writes; with Nagle on, the delayed ACK adds ~40 ms to
    # every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def _authorized(self) -> bool:
        token = self.server.owner.auth_token
        if not token:
            return True
        header = self.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())

    def do_GET(self) -> None:
        if self.path in ("/v3", "/v3/", "/health"):
            self._send(200, b"", "text/plain")
        else:
            self._send_json(404, {"message": f"{self.path} not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorized():
            self._send_json(401, {"message": "Unauthorized: invalid or missing auth token", "code": "AUTH"})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"message": "request body is not valid JSON", "code": "HRANA_PROTO_ERROR"})
            return
        owner = self.server.owner
        try:
            if self.path == "/v3/pipeline":
                response = owner.pipeline(body)
                if owner.verbose:
                    self.log_message(">> %s\n<< %s", json.dumps(body)[:600], json.dumps(response)[:600])
                self._send_json(200, response)
            elif self.path == "/v3/cursor":
                payload = owner.cursor(body)
                if owner.verbose:
                    self.log_message(">> %s\n<< %s", json.dumps(body)[:600], payload[:600].decode())
                self._send(200, payload, "application/x-ndjson")
            else:
                self._send_json(404, {"message": f"{self.path} not found"})
        except HranaError as exc:
            self._send_json(400, exc.to_json())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: InProcessHranaServer


class InProcessHranaServer:
    """Hrana 3 over HTTP (JSON) on 127.0.0.1, serving one SQLite file from background threads.

    Only for clients that release the GIL while waiting on the network (plain HTTP clients).
    The ``libsql`` driver holds the GIL during its blocking calls, so with it in the same
    process the server threads never run and every query deadlocks: use :class:`HranaServer`.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        port: int = 0,
        auth_token: str | None = None,
        stream_timeout: float = 10.0,
        verbose: bool = False,
    ) -> None:
        self.db_path = str(db_path)
        self.auth_token = auth_token
        self.stream_timeout = stream_timeout
        self.verbose = verbose
        self._port = port
        self._streams: dict[str, Stream] = {}
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # lifecycle

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of this server for ``app.db.libsql_dialect``."""
        return f"sqlite+libsql://127.0.0.1:{self.port}?secure=false"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InProcessHranaServer:
        conn = self._open_connection()
        # WAL is a property of the file; set it once so concurrent streams read while one writes.
        conn.execute("PRAGMA journal_mode=WAL").close()
        conn.close()
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
        self._httpd.owner = self
        serve = threading.Thread(target=self._httpd.serve_forever, name="hrana-http", daemon=True)
        reaper = threading.Thread(target=self._reap_loop, name="hrana-reaper", daemon=True)
        self._threads = [serve, reaper]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            with stream.lock:
                stream.close()
        self._httpd = None

    def __enter__(self) -> InProcessHranaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    # streams

    def _open_connection(self) -> sqlite3.Connection:
        # isolation_level=None: the client drives transactions with BEGIN/COMMIT, as on sqld.
        conn = sqlite3.connect(
            self.db_path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys=ON").close()
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}").close()
        return conn

    def _take_stream(self, baton: str | None) -> Stream:
        if baton is None:
            return Stream(self._open_connection(), self.db_path)
        with self._lock:
            # A baton is single-use: popping it forces the client to chain requests serially.
            stream = self._streams.pop(baton, None)
        if stream is None:
            raise HranaError("the baton is invalid or the stream has expired", "STREAM_EXPIRED")
        return stream

    def _release_stream(self, stream: Stream) -> str | None:
        if stream.closed:
            return None
        baton = secrets.token_urlsafe(24)
        stream.last_used = time.monotonic()
        with self._lock:
            self._streams[baton] = stream
        return baton

    def _reap_loop(self) -> None:
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            with self._lock:
                expired = [b for b, s in self._streams.items() if now - s.last_used > self.stream_timeout]
                victims = [self._streams.pop(b) for b in expired]
            for stream in victims:
                with stream.lock:
                    stream.close()

    # endpoints

    def pipeline(self, body: JSON) -> JSON:
        stream = self._take_stream(body.get("baton"))
        results: list[JSON] = []
        with stream.lock:
            for request in body.get("requests") or []:
                if stream.closed:
                    results.append({"type": "error", "error": {"message": "stream is closed",
                                                               "code": "STREAM_CLOSED"}})
                    continue
                try:
                    results.append({"type": "ok", "response": stream.handle(request)})
                except HranaError as exc:
                    results.append({"type": "error", "error": exc.to_json()})
                except (KeyError, TypeError, ValueError) as exc:
                    results.append({"type": "error", "error": {"message": f"malformed request: {exc}",
                                                               "code": "HRANA_PROTO_ERROR"}})
            baton = self._release_stream(stream)
        return {"baton": baton, "base_url": None, "results": results}

    def cursor(self, body: JSON) -> bytes:
        stream = self._take_stream(body.get("baton"))
        entries: list[JSON] = []
        with stream.lock:
            try:
                result = stream.batch(body.get("batch") or {})
                for step, (res, err) in enumerate(zip(result["step_results"], result["step_errors"],
                                                      strict=True)):
                    if err is not None:
                        entries.append({"type": "step_error", "step": step, "error": err})
                    elif res is not None:
                        entries.append({"type": "step_begin", "step": step, "cols": res["cols"]})
                        entries.extend({"type": "row", "row": row} for row in res["rows"])
                        entries.append({"type": "step_end", "affected_row_count": res["affected_row_count"],
                                        "last_insert_rowid": res["last_insert_rowid"]})
            except HranaError as exc:
                entries.append({"type": "error", "error": exc.to_json()})
            except (KeyError, TypeError, ValueError) as exc:
                entries.append({"type": "error", "error": {"message": f"malformed request: {exc}",
                                                           "code": "HRANA_PROTO_ERROR"}})
            baton = self._release_stream(stream)
        lines = [{"baton": baton, "base_url": None}, *entries]
        return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


class HranaServer:
    """The Hrana server in a child process, started and stopped from a test.

    A child process rather than a thread because the ``libsql`` driver keeps the GIL while it
    waits for HTTP responses (see :class:`InProcessHranaServer`). The child exits on its own
    when its stdin closes, so a crashed test run leaves no server behind.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        auth_token: str | None = None,
        token: str | None = None,
        stream_timeout: float = 10.0,
        verbose: bool = False,
    ) -> None:
        self.db_path = str(db_path)
        # ``token`` is accepted as a shorter spelling of ``auth_token``.
        self.auth_token = auth_token or token
        self.stream_timeout = stream_timeout
        self.verbose = verbose
        self._proc: subprocess.Popen[str] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of this server for ``app.db.libsql_dialect``."""
        return f"sqlite+libsql://127.0.0.1:{self.port}?secure=false"

    @property
    def database_url(self) -> str:
        """Alias of :attr:`url`, for settings that call it DATABASE_URL."""
        return self.url

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> HranaServer:
        cmd = [sys.executable, "-m", "tests.doubles.hrana_server", "--db", self.db_path, "--port", "0",
               "--stream-timeout", str(self.stream_timeout), "--exit-on-stdin-eof"]
        if self.auth_token:
            cmd += ["--token", self.auth_token]
        if self.verbose:
            cmd.append("--verbose")
        self._proc = subprocess.Popen(
            cmd, cwd=_PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        stdout = self._proc.stdout
        assert stdout is not None
        ready: list[str] = []
        # readline() has no timeout; a helper thread bounds the wait for a child that hangs.
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = ready[0] if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"Hrana server did not start: {line!r}")
        self._port = int(line.split()[1])
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        self._port = None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> HranaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Hrana 3 over HTTP server over a SQLite file")
    parser.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    parser.add_argument("--stream-timeout", type=float, default=10.0, help="idle seconds per stream")
    parser.add_argument("--verbose", action="store_true", help="log every request and response")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    server = InProcessHranaServer(
        args.db, port=args.port, auth_token=args.token, stream_timeout=args.stream_timeout,
        verbose=args.verbose,
    ).start()
    # The first line is machine-read by HranaServer.start().
    print(f"LISTENING {server.port} {server.http_url} {server.url}", flush=True)
    try:
        if args.exit_on_stdin_eof:
            sys.stdin.read()
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
