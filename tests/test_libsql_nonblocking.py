"""A slow libSQL link must not stall the event loop: the driver runs in a child process per connection.

The `libsql` driver keeps the GIL while it waits on the network, so in-process it froze every call's audio
for each database round trip. Here a proxy adds 300 ms to every Hrana request; while a statement waits
for it, the event loop must keep running.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db.engine import Database
from tests.conftest import make_settings
from tests.doubles.hrana_server import HranaServer

DELAY_SECONDS = 0.3


def _serve_delaying_proxy(upstream: str, port_out: Connection) -> None:
    """A proxy that adds DELAY_SECONDS to every request; its own process, so no GIL is shared with it."""

    class Delaying(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(DELAY_SECONDS)
            request = urllib.request.Request(upstream + self.path, data=body, method="POST", headers={
                "Authorization": self.headers.get("Authorization", ""), "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    status, data = reply.status, reply.read()
            except urllib.error.HTTPError as error:
                status, data = error.code, error.read()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Delaying)
    port_out.send(proxy.server_address[1])
    proxy.serve_forever()


@pytest.fixture
def slow_link(data_dir: Path) -> Iterator[str]:
    server = HranaServer(data_dir / "remote.db", token="tok")
    server.start()
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    proxy = context.Process(target=_serve_delaying_proxy, args=(f"http://127.0.0.1:{server.port}", send),
                            daemon=True)
    proxy.start()
    try:
        port = receive.recv()
        yield f"sqlite+libsql://127.0.0.1:{port}?secure=false"
    finally:
        proxy.kill()
        proxy.join()
        server.stop()


async def test_event_loop_keeps_running_while_a_statement_waits_on_the_network(
    data_dir: Path, slow_link: str
) -> None:
    db = Database(make_settings(data_dir, DATABASE_URL=slow_link, TURSO_AUTH_TOKEN="tok"))
    try:
        async with db.engine.connect() as conn:  # connect first: process start-up is not what is measured
            await conn.execute(text("SELECT 1"))
            ticks = 0
            stop = asyncio.Event()

            async def tick() -> None:
                nonlocal ticks
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar() == 42
            waited = loop.time() - started
            stop.set()
            await ticker
    finally:
        await db.dispose()
    assert waited >= DELAY_SECONDS  # the statement really went through the slow link
    # Blocked, the loop would tick about once; running, it ticks every 10 ms of the wait.
    assert ticks >= int(waited / 0.01) // 4, (ticks, waited)
