"""The browser test call, end to end: real server, real Chromium with a fake microphone fed from a WAV,
the real openai SDK talking to the OpenAI double. Sign in, open /test, hear the greeting, ask to book; the
scripted receptionist hands the turn to the supervisor, which checks availability and books."""

from __future__ import annotations

import asyncio
import re
import wave
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Appointment, Business, Call, CallEvent, Session, User
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble
from tests.support.browser import ARTIFACTS, ensure_owner, launch, mic_page, sign_in_locally, write_wav
from tests.support.server import RunningServer
from tests.support.voice import ASSETS, GREETING, next_open_weekday, silence, wav_pcm
from tests.support.waiting import wait_until_sync

OWNER_EMAIL = "caller-test@example.com"


@pytest.fixture(scope="module")
def double(openai_double: OpenAIDouble) -> OpenAIDouble:
    return openai_double


@pytest.fixture(scope="module")
def server(voice_server: RunningServer) -> RunningServer:
    asyncio.run(ensure_owner(voice_server.env, OWNER_EMAIL, recording_enabled=True))
    return voice_server


def _owned(email: str) -> Any:
    """This module's owner's business: the servers are shared with other modules' owners."""
    return select(Business.id).join(User, User.id == Business.owner_id).where(User.email == email).scalar_subquery()


async def _call_record(env: dict[str, str]) -> tuple[Call, list[CallEvent], list[Appointment], Session]:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            call = (await s.scalars(select(Call).where(Call.business_id == _owned(OWNER_EMAIL))
                                    .order_by(Call.started_at.desc()))).first()
            assert call is not None
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                          .order_by(CallEvent.sequence)))
            appointments = list(await s.scalars(select(Appointment).where(Appointment.call_id == call.id)))
            session = await s.get(Session, call.session_id)
            assert session is not None
            return call, events, appointments, session
    finally:
        await db.dispose()


def sign_in(page: Page, base_url: str) -> None:
    sign_in_locally(page, base_url, OWNER_EMAIL, "/test")


def test_browser_call_books_an_appointment(server: RunningServer, double: OpenAIDouble, tmp_path: Path) -> None:
    double.reset()
    day = next_open_weekday()
    answer = f"You're all set: a haircut on {day:%A} at ten a.m. See you then, Jane."
    double.realtime.say(GREETING).caller("Hi, I'd like to book a haircut for tomorrow at ten in the morning.").tool(
        "getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "wants a haircut at ten"},
        say_first="One moment.",
    ).say_from_tool_output()
    double.responses.for_model("gpt-4.1").function_call(
        "check_availability", {"service": "Haircut", "date": day.isoformat()}
    ).function_call(
        "book_appointment",
        {"service": "Haircut", "start": f"{day.isoformat()}T10:00", "customer_name": "Jane Doe",
         "customer_phone": "+1 555 123 4567"},
    ).text(answer)
    # The fake microphone loops its file: quiet while the greeting plays, the request, then a long quiet.
    mic = write_wav(tmp_path / "mic.wav", silence(3500) + wav_pcm(ASSETS / "book-24k.wav") + silence(40000))
    ARTIFACTS.mkdir(exist_ok=True)

    with mic_page(mic, server.url) as page:
        blocked: list[str] = []  # the call page runs under the CSP: workers, audio, socket all allowed
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        sign_in(page, server.url)
        page.click("#call-start")
        root = page.locator("#test-call")

        # The greeting's audio really plays through the page's output.
        page.wait_for_function(
            "() => Number(document.querySelector('#test-call').dataset.playedSamples || 0) > 24000",
            timeout=10_000,
        )
        assert float(root.get_attribute("data-played-peak-rms") or 0) > 0.01
        assert root.get_attribute("data-sample-rate") == "24000"
        page.wait_for_selector(f".caption.agent.final:has-text(\"{GREETING}\")", timeout=5_000)

        # Meanwhile the owner watches the live page in another tab and opens this call's row: it stays
        # open while the call goes on, and the latest words appear in it (the row shows the call's last few
        # events, so by the time the answer is spoken the request may have scrolled out).
        session_id = root.get_attribute("data-session-id")
        live = page.context.new_page()
        live.goto(f"{server.url}/sessions")
        row = live.locator(f"#live-{session_id}")
        row.locator("summary").click(timeout=10_000)
        assert row.get_attribute("open") is not None

        # The caller's request, then the supervisor's answer, spoken and captioned.
        page.wait_for_selector(".caption.caller.final:has-text('book a haircut')", timeout=15_000)
        page.wait_for_selector(f".caption.agent.final:has-text(\"{answer}\")", timeout=20_000)
        live.wait_for_function(
            "([id, text]) => { const r = document.getElementById(id); return r && r.open && "
            "r.textContent.includes(text); }", arg=[f"live-{session_id}", "You're all set"], timeout=30_000)
        # Still open after the answer was spoken, the list having been refreshed every second meanwhile.
        live.wait_for_timeout(1500)
        assert live.locator(f"#live-{session_id}").get_attribute("open") is not None
        live.screenshot(path=str(ARTIFACTS / "browser-call-live-row.png"), full_page=True)
        live.close()
        rt = double.realtime_sessions[0]
        assert rt.input_audio_bytes > 48 * 4000
        assert rt.sent_of_type("error") == []  # every client event was valid GA protocol
        config = rt.session_config
        assert config["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert config["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert config["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
        assert [t["name"] for t in config["tools"]] == [
            "getNextResponseFromSupervisor", "end_call", "transfer_to_human", "set_language"]
        assert "Sam's Salon" in config["instructions"] and "Haircut" in config["instructions"]
        assert "OpenAI-Beta" not in rt.headers and "openai-beta" not in {k.lower() for k in rt.headers}
        page.screenshot(path=str(ARTIFACTS / "browser-call-answered.png"), full_page=True)
        page.wait_for_function(
            "() => Number(document.querySelector('#test-call').dataset.micFrames || 0) > 0", timeout=2_000
        )
        page.click("#call-hangup")
        page.wait_for_selector("#test-call[data-state=ended]", timeout=5_000)
        # The ended call points at its record.
        record = page.locator("#call-record")
        record.wait_for(state="visible", timeout=5_000)
        assert record.get_attribute("href") == f"/sessions/{session_id}/record"
        record.click()
        page.wait_for_url(re.compile(r"/calls/[0-9a-f-]+$"))
        assert "Browser test call" in page.locator("main").inner_text()
        assert blocked == []

    def finalised() -> Any:
        call, events, appointments, session = asyncio.run(_call_record(server.env))
        return (call, events, appointments, session) if call.ended_at and call.summary else None

    call, events, appointments, session = wait_until_sync(finalised, 15, what="the finalised call and its summary")
    assert call.status == "completed" and call.end_reason == "caller_hangup" and call.channel == "browser"
    assert session.status == "completed" and session.ended_at is not None and session.token_used_at is not None
    assert len(appointments) == 1 and appointments[0].service == "Haircut"
    local = appointments[0].starts_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.date(), local.hour) == (day, 10)
    assert appointments[0].customer.phone == "+15551234567" and appointments[0].customer.name == "Jane Doe"
    assert f"Agent: {GREETING}" in call.transcript and f"Agent: {answer}" in call.transcript
    assert "Caller: Hi, I'd like to book a haircut" in call.transcript
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    names = [e.data.get("name") for e in events if e.kind == "tool_call"]
    assert names == ["getNextResponseFromSupervisor", "check_availability", "book_appointment"]
    booked = next(e for e in events if e.kind == "tool_result" and e.data.get("name") == "book_appointment")
    assert booked.data["result"]["booked"] is True
    supervisor = [r for r in double.response_requests if r["model"] == "gpt-4.1"]
    assert len(supervisor) == 3 and all(r["parallel_tool_calls"] is False for r in supervisor)
    assert "book a haircut" in supervisor[0]["input"][0]["content"]
    turn = next(t for t in call.latencies if "supervisor_ms" in t)
    assert 0 < turn["response_ms"] < 3000 and turn["supervisor_ms"] > 0 and turn["answer_ms"] > 0
    assert call.usage["realtime"]["audio_output"] > 0 and call.usage["supervisor"]["text_output"] > 0
    assert call.usage["transcription"]["audio_input"] > 0 and call.usage["summary"]["model"] == "gpt-4.1-mini"
    assert call.input_tokens > 0 and call.output_tokens > 0
    assert call.cost_usd > 0 and call.duration_seconds > 5
    assert call.summary is not None and call.summary.startswith("Summary: Hi, I'd like to book a haircut")
    # Recording is on: the test call is recorded like a phone call, caller left and agent right.
    recorded = wait_until_sync(lambda: asyncio.run(_call_record(server.env))[0].recording_path, 10,
                               what="the recording")
    with wave.open(recorded) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 24000)
        assert w.getnframes() > 24000 * 3
    assert "Traceback" not in server.log()


def test_browser_barge_in_truncates_at_what_was_played(
    server: RunningServer, double: OpenAIDouble, tmp_path: Path
) -> None:
    double.reset()
    long_greeting = ("Thanks for calling Sam's Salon. We do haircuts and colour, we are open six days a week, "
                     "and we would love to help you look your best. How can I help you today?")
    double.realtime.say(long_greeting).caller("Wait, sorry, actually make it the afternoon.").say("Of course.")
    mic = write_wav(tmp_path / "mic.wav", silence(2500) + wav_pcm(ASSETS / "interrupt-24k.wav") + silence(40000))
    with mic_page(mic, server.url) as page:
        sign_in(page, server.url)
        page.click("#call-start")
        page.wait_for_function("() => document.querySelector('#test-call').dataset.lastClearMs", timeout=15_000)
        root = page.locator("#test-call")
        played_at_clear = int(root.get_attribute("data-last-clear-ms") or -1)
        item_id = root.get_attribute("data-last-clear-item")
        rt = double.realtime_sessions[0]
        truncate = rt.wait_for_received("conversation.item.truncate", 5.0)
        page.wait_for_selector(".caption.agent.final:has-text('Of course.')", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "browser-call-barge-in.png"), full_page=True)
        page.click("#call-hangup")
        page.wait_for_selector("#test-call[data-state=ended]", timeout=5_000)
    assert truncate["item_id"] == item_id
    assert 500 < played_at_clear < len(long_greeting) * 60
    assert abs(truncate["audio_end_ms"] - played_at_clear) <= 20  # within one frame of what was played
    produced = sum(48 * 50 for e in rt.sent_of_type("response.output_audio.delta") if e["item_id"] == item_id)
    assert truncate["audio_end_ms"] <= produced // 48
    assert not [e for e in rt.sent_of_type("error") if e["error"].get("code") == "invalid_value"]


@pytest.fixture(scope="module")
def keyless_server(plain_server: RunningServer) -> RunningServer:
    asyncio.run(ensure_owner(plain_server.env, OWNER_EMAIL, recording_enabled=True))
    return plain_server


def test_without_openai_the_page_says_so(keyless_server: RunningServer, tmp_path: Path) -> None:
    mic = write_wav(tmp_path / "mic.wav", silence(1000))
    with mic_page(mic, keyless_server.url) as page:
        sign_in(page, keyless_server.url)
        assert page.locator(".notice.bad").first.is_visible()  # warned before calling
        page.click("#call-start")
        page.wait_for_selector("#test-call[data-state=ended]", timeout=10_000)
        notice = page.locator("#call-notice")
        assert "unavailable" in notice.inner_text()
        page.screenshot(path=str(ARTIFACTS / "browser-call-no-openai.png"), full_page=True)

    async def session_state() -> tuple[str, str | None]:
        db = Database(load_settings(keyless_server.env))
        try:
            async with db.session() as s:
                row = (await s.scalars(select(Session).where(Session.business_id == _owned(OWNER_EMAIL)))).one()
                return row.status, row.failure_reason
        finally:
            await db.dispose()

    status, reason = asyncio.run(session_state())
    assert status == "failed" and reason is not None and "OPENAI_API_KEY" in reason


async def _session_count(env: dict[str, str]) -> int:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            return int(await s.scalar(select(func.count(Session.id))
                                      .where(Session.business_id == _owned(OWNER_EMAIL))) or 0)
    finally:
        await db.dispose()


def test_a_refused_microphone_leaves_no_session_behind(server: RunningServer) -> None:
    before = asyncio.run(_session_count(server.env))
    with sync_playwright() as pw:
        # Without the fake consent UI and without a granted permission, Chromium refuses the microphone.
        browser = launch(pw, consent=False)
        try:
            page = browser.new_context().new_page()
            sign_in(page, server.url)
            page.click("#call-start")
            page.wait_for_selector("#call-notice:has-text('Microphone access was refused')", timeout=10_000)
            assert page.locator("#test-call").get_attribute("data-state") == "ended"
        finally:
            browser.close()
    assert asyncio.run(_session_count(server.env)) == before
