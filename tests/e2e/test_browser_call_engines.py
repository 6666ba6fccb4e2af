"""The browser test call on both voice engines: real server, real Chromium with a fake microphone, the real
SDK against the OpenAI double's Realtime and Live WebSockets. The same booking script, once per engine,
leaves the same appointment, customer and call record apart from the engine and cost fields."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Appointment, Business, Call, CallEvent, Customer, User
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble
from tests.support.browser import ARTIFACTS, ensure_owner, mic_page, sign_in_locally, write_wav
from tests.support.server import RunningServer
from tests.support.voice import ASSETS, GREETING, next_open_weekday, silence, wav_pcm
from tests.support.waiting import wait_until_sync

EMAILS = {"realtime": "realtime-owner@example.com", "live": "live-owner@example.com"}
REQUEST = "Hi, I'd like to book a haircut for tomorrow at ten in the morning."


@pytest.fixture(scope="module")
def double(openai_double: OpenAIDouble) -> OpenAIDouble:
    return openai_double


@pytest.fixture(scope="module")
def server(voice_server: RunningServer) -> RunningServer:
    for engine, email in EMAILS.items():
        asyncio.run(ensure_owner(voice_server.env, email, voice_engine=engine))
    return voice_server


async def _latest_call(env: dict[str, str], engine: str
                       ) -> tuple[Call, list[CallEvent], list[Appointment], list[Customer]] | None:
    """The latest call of the business whose engine is `engine` (the server is shared with other owners)."""
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            business = select(Business.id).join(User, User.id == Business.owner_id).where(
                User.email == EMAILS[engine]).scalar_subquery()
            call = (await s.scalars(select(Call).where(Call.business_id == business)
                                    .order_by(Call.started_at.desc()))).first()
            if call is None:
                return None
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                          .order_by(CallEvent.sequence)))
            booked = list((await s.scalars(select(Appointment).where(Appointment.call_id == call.id))).unique())
            customers = list(await s.scalars(select(Customer).where(Customer.business_id == call.business_id)))
            return call, events, booked, customers
    finally:
        await db.dispose()


def script(double: OpenAIDouble, engine: str, answer: str, day: Any) -> None:
    if engine == "realtime":
        double.realtime.say(GREETING).caller(REQUEST).tool(
            "getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "wants a haircut at ten"},
            say_first="One moment.").say_from_tool_output()
    else:
        double.live.say(GREETING).caller(REQUEST).delegate(say_first="One moment.").say_from_commentary()
    double.responses.for_model("gpt-4.1").function_call(
        "check_availability", {"service": "Haircut", "date": day.isoformat()}
    ).function_call(
        "book_appointment", {"service": "Haircut", "start": f"{day.isoformat()}T10:00", "customer_name": "Jane Doe",
                             "customer_phone": "+1 555 123 4567"},
    ).text(answer)


def browser_call(server: RunningServer, mic: Path, engine: str, answer: str) -> None:
    with mic_page(mic, server.url) as page:
        sign_in_locally(page, server.url, EMAILS[engine], "/test")
        page.click("#call-start")
        page.wait_for_function(
            "() => Number(document.querySelector('#test-call').dataset.playedSamples || 0) > 24000",
            timeout=15_000,
        )
        page.wait_for_selector(f".caption.agent.final:has-text(\"{GREETING}\")", timeout=10_000)
        page.wait_for_selector(".caption.caller.final:has-text('book a haircut')", timeout=20_000)
        page.wait_for_selector(f".caption.agent.final:has-text(\"{answer}\")", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / f"browser-call-{engine}.png"), full_page=True)
        page.click("#call-hangup")
        page.wait_for_selector("#test-call[data-state=ended]", timeout=5_000)


def comparable(call: Call, events: list[CallEvent], booked: list[Appointment], customers: list[Customer]) -> Any:
    return {
        "status": call.status, "end_reason": call.end_reason, "channel": call.channel,
        "transcript": call.transcript,
        "supervisor_tools": [(e.kind, e.data.get("name"), e.data.get("arguments")) for e in events
                             if e.data.get("source") == "supervisor"],
        "booked": [(a.service, a.starts_at, a.ends_at, a.status) for a in booked],
        "customers": sorted((c.name, c.phone) for c in customers),
    }


def test_the_same_browser_booking_on_both_engines(server: RunningServer, double: OpenAIDouble,
                                                  tmp_path: Path) -> None:
    day = next_open_weekday()
    answer = f"You're all set: a haircut on {day:%A} at ten a.m. See you then, Jane."
    mic = write_wav(tmp_path / "mic.wav", silence(3500) + wav_pcm(ASSETS / "book-24k.wav") + silence(40000))
    ARTIFACTS.mkdir(exist_ok=True)
    records = {}
    for engine in ("realtime", "live"):
        double.reset()
        script(double, engine, answer, day)
        browser_call(server, mic, engine, answer)

        def finalised(engine: str = engine) -> Any:
            record = asyncio.run(_latest_call(server.env, engine))
            return record if record and record[0].ended_at and record[0].engine == engine else None

        records[engine] = wait_until_sync(finalised, 15, what=f"the finalised {engine} call")
        if engine == "live":
            log = double.live_sessions[0]
            assert log.protocol_errors == [] and not log.sent_of_type("error")
            assert log.session["audio"]["format"] == {"type": "audio/pcm", "rate": 24000}
            assert log.input_audio_bytes > 48 * 4000  # the microphone reached GPT-Live untouched

    realtime, live = (comparable(*records[e]) for e in ("realtime", "live"))
    assert realtime == live
    assert realtime["status"] == "completed" and realtime["end_reason"] == "caller_hangup"
    assert f"Agent: {answer}" in realtime["transcript"] and "Caller: Hi, I'd like to book" in realtime["transcript"]
    assert [name for _k, name, _a in realtime["supervisor_tools"]] == ["check_availability", "book_appointment"]
    assert len(realtime["booked"]) == 1 and realtime["customers"] == [("Jane Doe", "+15551234567")]
    rt_call, live_call = records["realtime"][0], records["live"][0]
    assert (rt_call.engine, live_call.engine) == ("realtime", "live")
    assert "realtime" in rt_call.usage and "live" in live_call.usage and "realtime" not in live_call.usage
    assert live_call.usage["supervisor"]["text_output"] > 0 and live_call.cost_usd > 0
    assert "Traceback" not in server.log()
