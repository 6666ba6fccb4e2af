"""Error reports to Sentry carry no personal data: the real sentry-sdk sends its envelope to a local
Sentry ingest double (`POST /api/<project>/envelope/`), and what arrived is read back."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli
import pytest
import sentry_sdk

from app.error_reporting import init_error_reporting, scrub
from tests.conftest import make_settings


class Ingest(ThreadingHTTPServer):
    envelopes: list[bytes]


class _Handler(BaseHTTPRequestHandler):
    server: Ingest

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":  # the SDK prefers brotli whenever the brotli package is installed
            body = brotli.decompress(body)
        if self.path.startswith("/api/1/envelope/"):
            self.server.envelopes.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest(("127.0.0.1", 0), _Handler)
    server.envelopes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    sentry_sdk.get_client().close()


def items(envelope: bytes) -> list[dict[str, Any]]:
    lines = envelope.split(b"\n")
    return [json.loads(line) for line in lines[2::2] if line.strip()]


def test_nothing_personal_reaches_sentry(tmp_path: Path, ingest: Ingest) -> None:
    dsn = f"http://publickey@127.0.0.1:{ingest.server_address[1]}/1"
    assert init_error_reporting(make_settings(tmp_path, SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="test"))
    log = logging.getLogger("app.test")
    log.warning("could not text %s for %s", "+1 (555) 123-4567", "jane@example.com")
    transcript = "Caller: my number is 555 123 4567"
    try:
        raise ValueError(f"bad row ('+15551234567', 'jane@example.com', {transcript!r})")
    except ValueError:
        secret_in_locals = transcript  # noqa: F841 - local variables must not be sent
        sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=5)
    assert ingest.envelopes, "no envelope reached the ingest double"
    raw = b"\n".join(ingest.envelopes).decode()
    # The number's digits in every way it was written, not a bare "555" (a random event or trace id can hold it).
    for personal in ("(555)", "+1555", "555 123", "123-4567", "1234567", "jane@example.com", "my number is"):
        assert personal not in raw, personal
    event = next(item for e in ingest.envelopes for item in items(e) if "exception" in item)
    assert event["exception"]["values"][0]["type"] == "ValueError"
    assert event["exception"]["values"][0]["value"] == "[withheld]"
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert "could not text %s for %s" in crumbs  # the log call's template, without its arguments
    assert event["environment"] == "test" and "request" not in event and "user" not in event


def test_scrub() -> None:
    assert scrub("call +44 20 7946 0958 or 07700 900123, mail a.b+c@x.co.uk") == (
        "call [number] or [number], mail [email]"
    )


def test_off_without_a_dsn(tmp_path: Path) -> None:
    assert init_error_reporting(make_settings(tmp_path)) is False


def test_a_service_without_a_dsn_never_loads_the_sdk(tmp_path: Path) -> None:
    probe = ("import sys; from app.main import create_app; from tests.conftest import make_settings; "
             "from pathlib import Path; create_app(make_settings(Path(sys.argv[1]))); "
             "print('sentry_sdk' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
