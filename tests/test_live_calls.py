"""Phone calls end to end on both voice engines: the real service (granian subprocess) between the Twilio
double and the OpenAI double (Realtime WebSocket, Live WebSocket, Responses), reached only through
configuration. The same booking script on Realtime and on GPT-Live leaves the same database state and the
same call record apart from the engine and cost fields; a Live session the double refuses is answered on
Realtime."""

from __future__ import annotations

import asyncio
import base64
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Appointment, Business, Call, CallEvent, Customer, Session
from app.settings import load_settings
from tests.doubles.live_double import LiveSessionLog
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.twilio_double import MediaStream, TwilioDouble, caller_audio
from tests.support.data import create_owner
from tests.support.dates import next_weekday
from tests.support.phone_world import PhoneWorld, phone_service
from tests.support.waiting import wait_until

REALTIME_NUMBER = "+15550003000"
LIVE_NUMBER = "+15550004000"
GREETING = "Thanks for calling, how can I help?"
BOOKED = "You're booked for a haircut at ten."
GOODBYE = "Goodbye, have a lovely day!"


@dataclass
class World(PhoneWorld):
    owners: dict[str, UUID]


async def _seed(env: dict[str, str]) -> dict[str, UUID]:
    db = Database(load_settings(env))
    try:
        owners = {}
        for engine, number in (("realtime", REALTIME_NUMBER), ("live", LIVE_NUMBER)):
            owner, _biz = await create_owner(db, name=f"{engine.title()} Salon", phone_number=number,
                                             greeting=GREETING, voice_engine=engine, recording_enabled=True)
            owners[engine] = owner.id
        return owners
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("live-e2e")
    with OpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, \
            phone_service(data_dir, openai, twilio, "live-server.log") as server:
        yield World(server, openai, twilio, server.env, asyncio.run(_seed(server.env)))


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.openai.reset()
    world.twilio.reset()
    yield world


def script_booking(w: World, engine: str, start: str, caller: str) -> None:
    """One script, in each engine's terms: the caller's words, the agent's words and the supervisor's work are
    the same; only who decides the hang-up differs (Realtime's receptionist; on Live, the supervisor)."""
    supervisor = w.openai.responses.for_model("gpt-4.1")
    supervisor.function_call("book_appointment", {"service": "Haircut", "start": start, "customer_name": "Ann Lee",
                                                  "customer_phone": caller}).text(BOOKED)
    if engine == "realtime":
        w.openai.realtime.say(GREETING).caller("Hi, I'd like to book a haircut tomorrow at ten.").tool(
            "getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "book a haircut at ten"},
            say_first="One moment.").say_from_tool_output().caller("That's all, thank you. Goodbye.").tool(
            "end_call", {}, say_first=GOODBYE)
    else:
        w.openai.live.say(GREETING).caller("Hi, I'd like to book a haircut tomorrow at ten.").delegate(
            say_first="One moment.").say_from_commentary().caller("That's all, thank you. Goodbye.").delegate(
        ).say_from_commentary()
        supervisor.function_call("end_call", {}).text(GOODBYE)


async def agent_audio_ms(w: World, engine: str) -> float:
    if engine == "realtime":
        log = w.openai.realtime_sessions[-1]
        deltas = log.sent_of_type("response.output_audio.delta")
    else:
        deltas = w.openai.live_sessions[-1].sent_of_type("session.output_audio.delta")
    return sum(len(base64.b64decode(e["delta"])) for e in deltas) / 8


async def spoken(w: World, engine: str, utterances: int) -> None:
    """Wait until the voice model has finished its `utterances`-th utterance (Realtime: that many
    `response.done`; Live, which has no responses: that many `session.usage.updated`, sent after each)."""
    if engine == "realtime":
        log = await asyncio.to_thread(w.openai.wait_for_session, 0, 10.0)
        await asyncio.to_thread(log.wait_for_sent, "response.done", 20.0, utterances)
    else:
        live = await asyncio.to_thread(w.openai.wait_for_live_session, 0, 10.0)
        await asyncio.to_thread(live.wait_for_sent, "session.usage.updated", 20.0, utterances)


async def hear_it_all(w: World, stream: MediaStream, engine: str) -> None:
    produced = await agent_audio_ms(w, engine)
    await stream.wait_for(lambda: stream.played_ms() >= produced - 1, timeout=15)


async def record_of(w: World, call_sid: str) -> tuple[Call, list[CallEvent], list[Appointment], list[Customer]]:
    db = w.database()
    try:
        async with db.session() as s:
            session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
            assert session is not None
            call = await s.scalar(select(Call).where(Call.session_id == session.id))
            assert call is not None
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                          .order_by(CallEvent.sequence)))
            booked = list((await s.scalars(select(Appointment).where(Appointment.call_id == call.id))).unique())
            customers = list(await s.scalars(select(Customer).where(Customer.business_id == call.business_id)))
            return call, events, booked, customers
    finally:
        await db.dispose()


async def book_by_phone(w: World, engine: str, caller: str, start: str) -> tuple[Call, list[CallEvent],
                                                                               list[Appointment], list[Customer]]:
    script_booking(w, engine, start, caller)
    number = REALTIME_NUMBER if engine == "realtime" else LIVE_NUMBER
    call, answer = await w.twilio.place_call(w.server.url + "/twilio/voice", to=number, from_=caller)
    assert answer.status_code == 200, answer.body
    stream = await w.twilio.open_stream(call, answer)
    await spoken(w, engine, 1)  # the greeting
    await hear_it_all(w, stream, engine)
    await stream.speak(caller_audio("book"))
    await spoken(w, engine, 3)  # the filler, then the supervisor's answer
    await hear_it_all(w, stream, engine)
    await stream.speak(caller_audio("bye")[: 1500 * 8])
    await wait_until(lambda: bool(w.twilio.hang_ups(call.sid)), timeout=20)
    hang_up = w.twilio.hang_ups(call.sid)[0]
    assert hang_up.at >= max(at for at, _name in stream.marks_returned), "hung up before the goodbye had played"
    await asyncio.wait_for(stream.closed.wait(), 5)
    assert not stream.protocol_errors

    async def finalised() -> bool:
        row, *_ = await record_of(w, call.sid)
        return row.ended_at is not None

    await wait_until(finalised)
    return await record_of(w, call.sid)


async def call_by_id(w: World, call_id: UUID) -> Call:
    db = w.database()
    try:
        async with db.session() as s:
            call = await s.get(Call, call_id)
            assert call is not None
            return call
    finally:
        await db.dispose()


async def recorded(w: World, call_id: UUID) -> bool:
    return (await call_by_id(w, call_id)).recording_path is not None


def comparable(call: Call, events: list[CallEvent], booked: list[Appointment], customers: list[Customer]) -> Any:
    """What must match across engines: the call's outcome and words, the business tools the supervisor ran
    with their arguments and results, and what ended up in the calendar and the customer list."""
    def without_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_ids(v) for k, v in value.items() if k != "id" and not k.endswith("_id")}
        return [without_ids(v) for v in value] if isinstance(value, list) else value

    business_tools = [(e.kind, e.text, e.data.get("arguments") if e.kind == "tool_call"
                       else without_ids(e.data.get("result")))
                      for e in events if e.data.get("source") == "supervisor" or (
                          e.kind == "tool_result" and e.text not in {"getNextResponseFromSupervisor", "end_call"})]
    return {
        "status": call.status, "end_reason": call.end_reason, "channel": call.channel,
        "caller_phone": call.caller_phone, "transcript": call.transcript,
        "business_tools": [t for t in business_tools if t[1] != "end_call"],
        "booked": [(a.service, a.starts_at, a.ends_at, a.status) for a in booked],
        "customers": sorted((c.name, c.phone) for c in customers),
    }


async def test_the_same_booking_by_phone_on_both_engines_gives_the_same_record(w: World) -> None:
    day = next_weekday(date.today())
    start = f"{day.isoformat()}T10:00"
    caller = "+15553334444"
    records = {}
    for engine in ("realtime", "live"):
        w.openai.reset()
        records[engine] = await book_by_phone(w, engine, caller, start)
    realtime, live = (comparable(*records[e]) for e in ("realtime", "live"))
    assert realtime["transcript"] == live["transcript"], (realtime["transcript"], live["transcript"])
    assert realtime == live
    assert realtime["status"] == "completed" and realtime["end_reason"] == "goodbye"
    assert f"Agent: {BOOKED}" in realtime["transcript"] and f"Agent: {GOODBYE}" in realtime["transcript"]
    assert len(realtime["booked"]) == 1 and realtime["customers"] == [("Ann Lee", caller)]

    rt_call, live_call = records["realtime"][0], records["live"][0]
    assert (rt_call.engine, live_call.engine) == ("realtime", "live")
    # Recorded the same way: stereo WAV, caller left, agent right, about as long as the call.
    for row in (rt_call, live_call):
        await wait_until(lambda row=row: recorded(w, row.id), timeout=10)
    wavs = {}
    for engine in ("realtime", "live"):
        row = await call_by_id(w, records[engine][0].id)
        assert row.recording_path
        with wave.open(row.recording_path) as wav:
            assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
            frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
        wavs[engine] = frames
        assert np.count_nonzero(np.abs(frames[:, 1]) > 200) > 8000  # over a second of agent speech
        assert np.count_nonzero(np.abs(frames[:, 0]) > 200) > 8000  # and of the caller's
    # Cost: Realtime by tokens; Live by session seconds at the per-minute price, plus the same supervisor.
    assert set(rt_call.usage) >= {"realtime", "transcription", "supervisor"} and "live" not in rt_call.usage
    assert set(live_call.usage) >= {"live", "supervisor"} and "realtime" not in live_call.usage
    assert live_call.usage["live"]["active_seconds"] > 0 and live_call.cost_usd > 0
    per_minute = {e: records[e][0].cost_usd / (records[e][0].duration_seconds / 60) for e in records}
    assert per_minute["live"] < per_minute["realtime"]
    log: LiveSessionLog = w.openai.live_sessions[-1]
    assert log.protocol_errors == [] and not log.sent_of_type("error")
    assert log.session["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}  # Twilio audio untouched

    # The owner sees the engine on the call page.
    async with w.client_for(w.owners["live"]) as owner:
        page = await owner.get(f"{w.server.url}/calls/{live_call.id}")
    assert page.status_code == 200 and "GPT-Live" in page.text


async def test_a_refused_live_session_is_answered_on_realtime(w: World) -> None:
    w.openai.refuse_live = "model_not_enabled"
    w.openai.realtime.say(GREETING)
    call, answer = await w.twilio.place_call(w.server.url + "/twilio/voice", to=LIVE_NUMBER, from_="+15553335555")
    stream = await w.twilio.open_stream(call, answer)
    await spoken(w, "realtime", 1)
    await hear_it_all(w, stream, "realtime")
    assert len(stream.agent_audio()) > 8000  # the caller heard the greeting, from Realtime
    await stream.hang_up()
    await wait_until(lambda: record_of(w, call.sid), timeout=5)

    async def finalised() -> bool:
        row, *_ = await record_of(w, call.sid)
        return row.ended_at is not None

    await wait_until(finalised)
    row, events, _booked, _customers = await record_of(w, call.sid)
    assert row.engine == "realtime" and f"Agent: {GREETING}" in row.transcript
    fallback = [e for e in events if e.text == "GPT-Live unavailable: answered on Realtime"]
    assert len(fallback) == 1 and "model_not_enabled" in fallback[0].data["reason"]
    assert w.openai.live_sessions[-1].refused
    db = w.database()
    try:
        async with db.session() as s:
            business = await s.scalar(select(Business).where(Business.phone_number == LIVE_NUMBER))
            assert business is not None and business.voice_engine == "live"  # the owner's choice stays
    finally:
        await db.dispose()
