"""The browser call's HTTP and WebSocket routes on the real server: who may create a session, and a
connect token that is wrong, reused, expired or for another session is refused before any OpenAI use."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.engine import Database
from app.db.models import Call
from app.settings import load_settings
from app.voice.tokens import TokenIssuer
from tests.doubles.openai_double import OpenAIDouble
from tests.support.data import create_owner
from tests.support.frames import malformed_browser_frames
from tests.support.server import RunningServer, base_env, run_server

SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="module")
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key="test-key") as d:
        yield d


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, double: OpenAIDouble) -> Iterator[RunningServer]:
    env = base_env(tmp_path_factory.mktemp("voice-routes"), OPENAI_API_KEY="test-key",
                   OPENAI_BASE_URL=double.base_url)
    with run_server(env) as running:
        yield running


@pytest.fixture(scope="module")
def owner_client(server: RunningServer) -> Iterator[httpx.Client]:
    async def make() -> uuid.UUID:
        db = Database(load_settings(server.env))
        try:
            user, _business = await create_owner(db)
            return user.id
        finally:
            await db.dispose()

    user_id = asyncio.run(make())
    with httpx.Client(base_url=server.url, cookies={COOKIE_NAME: SessionSigner((SECRET,)).sign(user_id)}) as client:
        yield client


def csrf_token(client: httpx.Client) -> str:
    page = client.get("/test")
    assert page.status_code == 200 and 'id="test-call"' in page.text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert match
    return match.group(1)


def new_session(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/api/sessions", headers={"x-csrftoken": csrf_token(client)})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ws_url"] == f"/ws/calls/{body['session_id']}?token={body['token']}"
    return body


def close_code(server: RunningServer, path: str) -> tuple[int, str]:
    with connect(server.url.replace("http", "ws", 1) + path, open_timeout=5) as ws:
        try:
            ws.recv(timeout=5)
        except ConnectionClosed:
            pass
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


def nothing_billed(double: OpenAIDouble) -> None:
    """Any prewarmed realtime socket was closed without a session.update, audio or response."""
    deadline = time.monotonic() + 3
    while any(not s.closed.is_set() for s in double.realtime_sessions) and time.monotonic() < deadline:
        time.sleep(0.05)
    for session in double.realtime_sessions:
        assert session.closed.is_set()
        assert [e["type"] for e in session.received] == []


def test_signed_out_and_cross_site_requests_are_refused(server: RunningServer, owner_client: httpx.Client) -> None:
    anonymous = httpx.post(server.url + "/api/sessions", headers={"accept": "application/json"})
    assert anonymous.status_code in {401, 403}
    assert owner_client.post("/api/sessions").status_code == 403  # no CSRF token
    page = httpx.get(server.url + "/test", follow_redirects=False)
    assert page.status_code in {302, 303, 307} and "/auth/login" in page.headers["location"]


def test_bad_tokens_are_refused_before_openai(server: RunningServer, owner_client: httpx.Client,
                                              double: OpenAIDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    double.reset()
    first = new_session(owner_client)
    second = new_session(owner_client)
    # Garbage, and a good token presented for another session.
    assert close_code(server, f"/ws/calls/{first['session_id']}?token=not-a-token")[0] == 4403
    assert close_code(server, f"/ws/calls/{first['session_id']}?token={second['token']}") == (4403, "token mismatch")
    assert close_code(server, f"/ws/calls/{uuid.uuid4()}?token=") == (4403, "token malformed")
    # Expired: signed two minutes and more ago.
    issuer = TokenIssuer((SECRET,))
    signed_at = time.time() - 600
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: signed_at)
    stale = issuer.sign(uuid.UUID(second["session_id"]), "nonce")
    monkeypatch.undo()
    assert close_code(server, f"/ws/calls/{second['session_id']}?token={stale}") == (4401, "token expired")
    nothing_billed(double)


def test_a_token_works_once(server: RunningServer, owner_client: httpx.Client, double: OpenAIDouble) -> None:
    double.reset()
    double.realtime.say("Hello!")
    body = new_session(owner_client)
    url = server.url.replace("http", "ws", 1) + body["ws_url"]
    with connect(url, open_timeout=5) as ws:
        message = ws.recv(timeout=5)
        assert '"state"' in str(message)
        ws.send('{"type":"hangup"}')
    assert close_code(server, body["ws_url"]) == (4409, "token used")


# -- malformed frames inside live calls (issue 11) ---------------------------------------------------------------
def _call_end_reason(server: RunningServer, session_id: str) -> str | None:
    async def read() -> str | None:
        db = Database(load_settings(server.env))
        try:
            async with db.session() as s:
                call = await s.scalar(select(Call).where(Call.session_id == uuid.UUID(session_id)))
                return call.end_reason if call is not None and call.ended_at is not None else None
        finally:
            await db.dispose()

    deadline = time.monotonic() + 10
    while (reason := asyncio.run(read())) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return reason


def _browser_call_survives(server: RunningServer, owner_client: httpx.Client, double: OpenAIDouble,
                           frames: list[str | bytes]) -> None:
    double.reset()
    double.realtime.say("Hello!")
    body = new_session(owner_client)
    with connect(server.url.replace("http", "ws", 1) + body["ws_url"], open_timeout=5, max_size=None) as ws:
        while not isinstance(ws.recv(timeout=10), bytes):  # the greeting's audio: the call is live
            pass
        for frame in frames:
            ws.send(frame)
        ws.send('{"type":"played","item_id":"x","ms":1}')
        ws.send('{"type":"hangup"}')
        try:
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed:
            pass
        assert (ws.close_code, ws.close_reason) == (1000, "caller_hangup")
    assert _call_end_reason(server, body["session_id"]) == "caller_hangup"


def test_each_frame_that_used_to_end_a_browser_call_is_ignored(server: RunningServer, owner_client: httpx.Client,
                                                                double: OpenAIDouble) -> None:
    from tests.test_frames import FATAL_BROWSER

    _browser_call_survives(server, owner_client, double, [*FATAL_BROWSER, b"\x01", b"\x00" * 100_000, "y" * 10_000])
    assert "browser call: ignored" in server.log()


@settings(max_examples=3, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(frames=st.lists(malformed_browser_frames(), min_size=100, max_size=100))
def test_fuzzed_frames_inside_live_browser_calls_end_no_call(server: RunningServer, owner_client: httpx.Client,
                                                             double: OpenAIDouble, frames: list[str]) -> None:
    _browser_call_survives(server, owner_client, double, list(frames))


@pytest.mark.slow
@settings(max_examples=20, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(frames=st.lists(malformed_browser_frames(), min_size=500, max_size=500))
def test_ten_thousand_fuzzed_frames_inside_live_browser_calls_end_no_call(
        server: RunningServer, owner_client: httpx.Client, double: OpenAIDouble, frames: list[str]) -> None:
    _browser_call_survives(server, owner_client, double, list(frames))


def test_a_phone_calls_token_on_the_browser_socket_closes_that_session(server: RunningServer,
                                                                        owner_client: httpx.Client) -> None:
    from app.db.models import Business, Session
    from app.voice.lifecycle import offer_session

    async def offer() -> tuple[str, str]:
        db = Database(load_settings(server.env))
        try:
            async with db.session() as s:
                business = await s.scalar(select(Business))
            assert business is not None
            session, token = await offer_session(db, TokenIssuer((SECRET,)), business, "twilio",
                                                 call_sid="CA" + "9" * 32)
            return str(session.id), token
        finally:
            await db.dispose()

    async def status(session_id: str) -> tuple[str, str | None]:
        db = Database(load_settings(server.env))
        try:
            async with db.session() as s:
                row = await s.get(Session, uuid.UUID(session_id))
                assert row is not None
                return row.status, row.failure_reason
        finally:
            await db.dispose()

    session_id, token = asyncio.run(offer())
    assert close_code(server, f"/ws/calls/{session_id}?token={token}") == (4403, "token mismatch")
    assert asyncio.run(status(session_id)) == ("failed", "a browser socket presented a phone call's token")
