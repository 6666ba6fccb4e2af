"""What the web-trust layer costs per request and per log line, against its own floor in the same run.

- headers: the SecurityHeaders ASGI wrapper around a minimal HTML response vs the same app bare;
- guard: the public-path check the deny-by-default guard and the headers make on every request;
- logs: the redacting formatter vs the stdlib formatter, on an access-log line (no match) and on a line
  with a phone number and a token (every pattern fires).

    .venv/bin/python bench/bench_web_trust.py           # 50,000 iterations each
    .venv/bin/python bench/bench_web_trust.py --short   # 2,000: a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from app.auth.access import is_public
from app.web.logs import FORMAT, RedactingFormatter
from app.web.security_headers import SecurityHeaders


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"10")]})
    await send({"type": "http.response.body", "body": b"0123456789"})


async def _sink(_message: Any) -> None:
    return None


async def _receive() -> Any:
    return {"type": "http.request"}


async def _per_request(app: Any, n: int) -> float:
    scope = {"type": "http", "path": "/calls", "path_template": "/calls", "headers": []}
    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), _receive, _sink)
    return (time.perf_counter() - started) / n * 1e6


def _per_call(fn: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def _record(msg: str, args: tuple[Any, ...]) -> logging.LogRecord:
    record = logging.LogRecord("app.access", logging.INFO, __file__, 1, msg, args, None)
    record.request_id = "0123456789abcdef"
    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true")
    n = 2_000 if parser.parse_args().short else 50_000
    bare = asyncio.run(_per_request(_bare, n))
    wrapped = asyncio.run(_per_request(SecurityHeaders(_bare), n))
    guard = _per_call(lambda: is_public("/calls/{call_id}"), n)
    plain, redacting = logging.Formatter(FORMAT), RedactingFormatter(FORMAT, ["s" * 32, "t" * 48])
    access = _record("%s %s %s %.1fms", ("GET", "/calls/01a2", 200, 12.3))
    loaded = _record("dial %s failed; GET /x?token=%s", ("+15553334444", "abc.def"))
    rows = [
        ("response, bare ASGI app (floor)", bare),
        ("response, with SecurityHeaders", wrapped),
        ("  overhead per request", wrapped - bare),
        ("public-path check (cached)", guard),
        ("access line, stdlib formatter (floor)", _per_call(lambda: plain.format(access), n)),
        ("access line, redacting formatter", _per_call(lambda: redacting.format(access), n)),
        ("number + token line, stdlib formatter", _per_call(lambda: plain.format(loaded), n)),
        ("number + token line, redacting formatter", _per_call(lambda: redacting.format(loaded), n)),
    ]
    for name, micros in rows:
        print(f"{name:<44} {micros:8.2f} µs")


if __name__ == "__main__":
    main()
