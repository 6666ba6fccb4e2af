"""Phone calls end to end: the real service (granian subprocess) between the Twilio double and the OpenAI
double, both reached only through configuration. One server and one pair of doubles serve the module."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import numpy as np
import pytest
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db.engine import Database
from app.db.hours import zone
from app.db.models import Appointment, Business, Call, CallEvent, Customer, Message, Session
from app.settings import load_settings
from app.telephony import twiml
from tests.doubles.openai_double import (
    FunctionCallReply,
    OpenAIDouble,
    RealtimeScript,
    RealtimeSessionLog,
    TextReply,
    reply_output,
    response_object,
)
from tests.doubles.twilio_double import DoubleCall, MediaStream, TwilioDouble, TwimlAnswer, caller_audio, parse_twiml
from tests.support.data import create_owner
from tests.support.dates import next_weekday
from tests.support.frames import malformed_twilio_frames
from tests.support.phone_world import PhoneWorld, phone_service
from tests.support.server import run_server
from tests.support.waiting import wait_until

SALON_NUMBER = "+15550001000"
SALON_TRANSFER = "+12125550199"
BARBER_NUMBER = "+15550002000"
KNOWN_CALLER = "+15557770001"


class DecidingOpenAIDouble(OpenAIDouble):
    """The OpenAI double whose supervisor model can be told to decide from the request it is sent.

    With many calls at once a shared queue of replies can't say which call gets which; a real model
    answers each conversation on its own. `decide(body)` returns the reply, or None for the script."""

    decide: Callable[[dict[str, Any]], FunctionCallReply | TextReply | None] | None = None

    async def _responses_handler(self, request: web.Request) -> web.StreamResponse:
        decide = self.decide
        if decide is None or not self._authorized(request):
            return await super()._responses_handler(request)
        body = await request.json()  # aiohttp keeps the body, so the script path can still read it
        reply = decide(body)
        if reply is None:
            return await super()._responses_handler(request)
        self.response_requests.append(body)
        return web.json_response(response_object(body, reply_output(reply)))


@dataclass
class World(PhoneWorld):
    openai: DecidingOpenAIDouble
    salon_id: UUID
    barber_id: UUID
    salon_owner: UUID
    barber_owner: UUID


async def _seed(env: dict[str, str]) -> tuple[UUID, UUID, UUID, UUID]:
    db = Database(load_settings(env))
    try:
        salon_owner, salon = await create_owner(db, name="Sam's Salon", phone_number=SALON_NUMBER,
                                       transfer_number=SALON_TRANSFER, recording_enabled=True,
                                       greeting="Thanks for calling Sam's Salon.")
        barber_owner, barber = await create_owner(db, name="Bo's Barbers", phone_number=BARBER_NUMBER,
                                        greeting="Bo's Barbers, hello.")
        async with db.session() as s, s.begin():
            jane = Customer(business_id=salon.id, name="Jane Doe", phone=KNOWN_CALLER)
            s.add(jane)
            await s.flush()
            start = datetime.combine(next_weekday(date.today() + timedelta(days=3)), datetime.min.time(),
                                     tzinfo=UTC) + timedelta(hours=15)
            s.add(Appointment(business_id=salon.id, customer_id=jane.id, service="Colour", starts_at=start,
                              ends_at=start + timedelta(minutes=90)))
        return salon.id, barber.id, salon_owner.id, barber_owner.id
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("twilio-e2e")
    with DecidingOpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, \
            phone_service(data_dir, openai, twilio, "twilio-server.log") as server:
        yield World(server, openai, twilio, server.env, *asyncio.run(_seed(server.env)))


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.openai.reset()
    world.openai.decide = None
    world.twilio.reset()
    yield world


async def place(w: World, to: str, from_: str) -> tuple[DoubleCall, TwimlAnswer]:
    call, answer = await w.twilio.place_call(w.voice_url, to=to, from_=from_)
    assert answer.status_code == 200, answer.body
    return call, answer


async def connect(w: World, to: str, from_: str) -> tuple[DoubleCall, MediaStream, RealtimeSessionLog]:
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await place(w, to, from_)
    assert answer.stream_url == w.server.url.replace("http://", "ws://") + "/twilio/media"
    stream = await w.twilio.open_stream(call, answer)
    log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
    return call, stream, log


def sent_at(log: RealtimeSessionLog, event_type: str, count: int = 1, timeout: float = 10.0) -> Any:
    return asyncio.to_thread(log.wait_for_sent, event_type, timeout, count)


async def hear_it_all(stream: MediaStream, log: RealtimeSessionLog) -> None:
    """The caller listens to the end of everything the model has said so far, as a person would before
    hanging up or answering: on a busy machine the relay and the playback lag the model's generation."""
    produced_ms = sum(len(base64.b64decode(e["delta"])) for e in log.sent_of_type("response.output_audio.delta")) / 8
    await stream.wait_for(lambda: stream.played_ms() >= produced_ms - 1, timeout=15)


async def call_row(w: World, call_sid: str) -> tuple[Session, Call | None, list[CallEvent]]:
    db = w.database()
    try:
        async with db.session() as s:
            session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
            assert session is not None
            call = await s.scalar(select(Call).where(Call.session_id == session.id))
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                          .order_by(CallEvent.sequence))) if call else []
            return session, call, events
    finally:
        await db.dispose()


async def finalised(w: World, call_sid: str, timeout: float = 10.0) -> tuple[Session, Call, list[CallEvent]]:
    async def done() -> bool:
        _s, call, _e = await call_row(w, call_sid)
        return call is not None and call.ended_at is not None

    await wait_until(done, timeout)
    session, call, events = await call_row(w, call_sid)
    assert call is not None
    return session, call, events


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


# -- the whole call ---------------------------------------------------------------------------------------------
async def test_booking_call_from_greeting_to_hang_up_with_recording(w: World) -> None:
    day = next_weekday(date.today())
    start = f"{day.isoformat()}T10:00"
    w.openai.realtime.say("Hello, this call is recorded.")
    w.openai.realtime.caller("Hi, I'd like to book a haircut tomorrow at ten in the morning.")
    w.openai.realtime.tool("getNextResponseFromSupervisor",
                           {"relevantContextFromLastUserMessage": "book a haircut tomorrow at 10am"},
                           say_first="One moment.")
    w.openai.realtime.say_from_tool_output()
    w.openai.realtime.caller("That's all, thank you. Goodbye.")
    w.openai.realtime.tool("end_call", {}, say_first="Goodbye!")
    w.openai.responses.for_model("gpt-4.1").function_call(
        "book_appointment", {"service": "Haircut", "start": start, "customer_name": "Ann Lee"}
    ).text("You're booked for a haircut at ten.")

    call, stream, log = await connect(w, SALON_NUMBER, "+15553334444")
    # The greeting plays (its marks come back) and announces the recording.
    greeting = await sent_at(log, "response.done")
    await stream.wait_for(lambda: len(stream.marks_returned) >= 1 and not stream.playing, timeout=10)
    created = log.received_of_type("response.create")[0]
    assert "this call is recorded" in created["response"]["instructions"]
    assert greeting["response"]["status"] == "completed"
    assert log.session_config["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert log.session_config["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert "+15553334444" in log.session_config["instructions"]

    await stream.speak(caller_audio("book"))
    await sent_at(log, "response.done", count=3, timeout=15)  # filler+tool, then the supervisor's answer
    # The caller lets the answer finish, so the recording check below can tell the two voices apart.
    await hear_it_all(stream, log)
    await stream.speak(short_utterance("bye"))
    await sent_at(log, "response.done", count=4, timeout=15)

    await wait_until(lambda: bool(w.twilio.hang_ups(call.sid)), timeout=15)
    hang_up = w.twilio.hang_ups(call.sid)[0]
    goodbye_marks = [at for at, _name in stream.marks_returned]
    assert goodbye_marks and hang_up.at >= max(goodbye_marks), "hung up before the goodbye had played"
    assert stream.played_ms() == pytest.approx(len(stream.agent_audio()) / 8, abs=25)
    frames = [r.message["event"] for r in stream.received]
    # Marks are coalesced (one per <= 100 ms segment of an item, app/telephony/twilio_transport.py): fewer marks
    # than media frames, each after audio, and the last audio has one (the hang-up above waited for it).
    assert set(frames) == {"media", "mark"} and 0 < frames.count("mark") < frames.count("media")
    assert frames[0] == "media" and frames[-1] == "mark"
    assert "mark,mark" not in ",".join(frames)
    await asyncio.wait_for(stream.closed.wait(), 5)
    assert not stream.protocol_errors

    session, row, events = await finalised(w, call.sid)
    assert session.status == "completed" and row.status == "completed" and row.end_reason == "goodbye"
    assert row.channel == "twilio" and row.caller_phone == "+15553334444"
    assert "Caller: Hi, I'd like to book a haircut" in row.transcript
    assert "Agent: You're booked for a haircut at ten." in row.transcript
    assert row.duration_seconds > 3 and row.cost_usd > 0 and row.input_tokens > 0
    kinds = [e.kind for e in events]
    assert kinds.count("tool_call") >= 3 and [e.text for e in events].count("call ended: goodbye") == 1

    db = w.database()
    try:
        async with db.session() as s:
            booked = (await s.scalars(select(Appointment).where(Appointment.call_id == row.id))).unique().all()
            assert len(booked) == 1 and booked[0].business_id == w.salon_id
            customer = await s.get(Customer, booked[0].customer_id)
            assert customer is not None and customer.phone == "+15553334444" and customer.name == "Ann Lee"
    finally:
        await db.dispose()

    # The recording: caller on the left, agent on the right, each where it happened.
    async def recorded() -> bool:
        _s, again, _e = await call_row(w, call.sid)
        return again is not None and again.recording_path is not None

    await wait_until(recorded, timeout=5)
    _s, row, _e = await call_row(w, call.sid)
    assert row is not None and row.recording_path
    path = Path(row.recording_path)
    assert path.parent.name == str(w.salon_id)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = frames[:, 0], frames[:, 1]
    # Where the caller spoke the left channel is the exact audio sent; the agent was silent then.
    sent = [r for r in stream.sent if r[1].get("event") == "media"]
    book = caller_audio("book")
    first_frame = base64.b64encode(book[:160]).decode()
    speech_start = next(int(m["media"]["timestamp"]) for _t, m in sent if m["media"]["payload"] == first_frame)
    segment = slice(speech_start * 8 + 4000, speech_start * 8 + 16000)  # well inside the spoken words
    assert rms(left[segment]) > 1000 and rms(right[segment]) < 50
    # The agent's audio is on the right: as much as was played, and silence on the left meanwhile.
    agent_samples = int(np.count_nonzero(np.abs(right) > 200))
    assert agent_samples > 8000  # over a second of agent speech
    loud_right = np.abs(right) > 2000
    assert rms(left[loud_right]) < 50

    # The owner plays it from the call page; another owner, or nobody signed in, can't fetch it.
    url = f"{w.server.url}/calls/{row.id}/recording"
    async with (
        w.client_for(w.salon_owner) as salon,
        w.client_for(w.barber_owner) as barber,
        httpx.AsyncClient(timeout=10) as anonymous,
    ):
        page = await salon.get(f"{w.server.url}/calls/{row.id}")
        owner = await salon.get(url)
        other = await barber.get(url)
        nobody = await anonymous.get(url)
    assert page.status_code == 200 and f"/calls/{row.id}/recording" in page.text
    assert owner.status_code == 200 and owner.headers["content-type"].startswith("audio/")
    assert owner.content == await asyncio.to_thread(path.read_bytes)
    assert other.status_code == 404 and nobody.status_code in {302, 303, 401}


# -- barge-in ---------------------------------------------------------------------------------------------------
async def test_barge_in_clears_at_once_and_truncates_at_what_was_heard(w: World) -> None:
    w.openai.realtime.say("Thanks for calling Sam's Salon. We are open every weekday from nine until five, "
                          "and on Saturdays from ten until two.")
    w.openai.realtime.caller("Wait, sorry, actually make it the afternoon.")
    w.openai.realtime.say("Sure.")
    call, stream, log = await connect(w, SALON_NUMBER, "+15553335555")
    await sent_at(log, "response.output_audio.delta", count=12)  # ~600 ms of greeting produced
    speech_event = asyncio.ensure_future(
        asyncio.to_thread(lambda: (log.wait_for_sent("input_audio_buffer.speech_started", 10), time.monotonic()))
    )
    spoken = stream.say(caller_audio("interrupt"))
    _event, speech_at = await speech_event
    await stream.wait_for(lambda: bool(stream.clears), timeout=2)
    # The caller hears silence from the speech event on: `clear` follows it at once, not after the seconds of
    # greeting still queued (the bound is loose because the suite shares two cores; bench/ measures the latency).
    assert stream.clears[0] - speech_at < 0.5

    truncate = await sent_at(log, "conversation.item.truncated")
    [request] = log.truncations
    item_id = request["item_id"]
    produced_ms = sum(len(base64.b64decode(e["delta"])) for e in log.sent_of_type("response.output_audio.delta")
                      if e["item_id"] == item_id) / 8
    assert truncate["audio_end_ms"] == request["audio_end_ms"] <= produced_ms
    heard_ms = stream.heard_at_clear[0]  # what had played of the greeting when the clear arrived
    assert abs(request["audio_end_ms"] - heard_ms) <= 25, (request, heard_ms)
    assert not [e for e in log.sent_of_type("error") if e["error"].get("code") == "invalid_value"]
    # Nothing more of the interrupted greeting plays after the clear.
    await spoken
    greeting_after_clear = [r for r in stream.received if r.at > stream.clears[0]
                            and r.message.get("event") == "mark" and r.message["mark"]["name"].startswith(item_id)]
    assert not greeting_after_clear

    await stream.hang_up()
    _session, row, events = await finalised(w, call.sid)
    assert row.end_reason == "caller_hung_up" and not w.twilio.hang_ups(call.sid)
    interrupted = [e for e in events if e.text == "caller interrupted"]
    assert interrupted and interrupted[0].data["audio_end_ms"] == request["audio_end_ms"]


# -- caller ID, DTMF, transfer ----------------------------------------------------------------------------------
async def test_known_caller_is_greeted_by_name_and_their_appointments_are_known(w: World) -> None:
    w.openai.realtime.say("Hi Jane.")
    call, stream, log = await connect(w, SALON_NUMBER, KNOWN_CALLER)
    await sent_at(log, "response.done")
    instructions = log.received_of_type("response.create")[0]["response"]["instructions"]
    assert "Hi Jane, welcome back!" in instructions and "this call is recorded" in instructions
    assert "Known caller: Jane Doe" in log.session_config["instructions"]
    assert "Colour on" in log.session_config["instructions"]
    await stream.hang_up()
    _session, row, _events = await finalised(w, call.sid)
    assert row.status == "abandoned" and row.customer_id is not None


async def test_unknown_caller_is_offered_to_become_a_customer(w: World) -> None:
    w.openai.realtime.say("Hello.")
    call, stream, log = await connect(w, BARBER_NUMBER, "+15553336666")
    await sent_at(log, "response.done")
    assert "not a customer yet" in log.session_config["instructions"]
    assert "this call is recorded" not in log.received_of_type("response.create")[0]["response"]["instructions"]
    await stream.hang_up()
    await finalised(w, call.sid)


async def test_dtmf_is_recorded_and_transfer_to_human_dials_the_business(w: World) -> None:
    w.openai.realtime.say("Hello.")
    w.openai.realtime.caller("Can I speak to a real person, please?")
    w.openai.realtime.tool("transfer_to_human", {}, say_first="Connecting you now.")
    call, stream, log = await connect(w, SALON_NUMBER, "+15553337777")
    await sent_at(log, "response.done")
    await stream.dtmf("5")
    await stream.speak(caller_audio("person"))
    await asyncio.wait_for(stream.closed.wait(), 15)
    assert stream.ended_reason == "redirected"
    [update] = w.twilio.updates(call.sid)
    assert "<Dial" in update.form["Twiml"] and call.dialed == SALON_TRANSFER
    # The short sentence played in full before the transfer.
    assert update.at >= max(at for at, _ in stream.marks_returned)
    assert not w.twilio.hang_ups(call.sid)
    _session, row, events = await finalised(w, call.sid)
    assert row.status == "transferred"
    texts = [e.text for e in events]
    assert "caller pressed 5" in texts and f"transferred to {SALON_TRANSFER}" in texts


async def test_pressing_zero_asks_for_a_person(w: World) -> None:
    w.openai.realtime.say("Hello.")
    call, stream, log = await connect(w, SALON_NUMBER, "+15553338888")
    await sent_at(log, "response.done")
    await stream.dtmf("0")
    await stream.dtmf("0")  # pressed again while the transfer is under way: still one transfer
    await asyncio.wait_for(stream.closed.wait(), 10)
    assert call.dialed == SALON_TRANSFER
    assert len(w.twilio.updates(call.sid)) == 1
    _session, row, events = await finalised(w, call.sid)
    assert row.status == "transferred" and "caller pressed 0" in [e.text for e in events]


async def test_without_a_transfer_number_the_receptionist_offers_a_message(w: World) -> None:
    w.openai.realtime.say("Hello.")
    w.openai.realtime.caller("Can I speak to a real person, please?")
    w.openai.realtime.tool("transfer_to_human", {}, say_first="Let me see.")
    w.openai.realtime.say_from_tool_output()
    call, stream, log = await connect(w, BARBER_NUMBER, "+15553339999")
    await sent_at(log, "response.done")
    await stream.speak(short_utterance("person"))
    await asyncio.to_thread(log.wait_for_received, "response.create", 10, 2)  # asked to answer the tool result
    outputs = [e["item"] for e in log.received_of_type("conversation.item.create")
               if e["item"].get("type") == "function_call_output"]
    assert outputs and "take a message" in outputs[0]["output"]
    assert not w.twilio.updates(call.sid)
    await stream.hang_up()
    _session, row, _events = await finalised(w, call.sid)
    assert row.status == "completed" and row.end_reason == "caller_hung_up"


# -- what the phone leg cost (issue 16 item 6) ----------------------------------------------------------------------
async def test_an_ended_calls_phone_cost_appears_on_its_page_once_twilio_has_priced_it(w: World) -> None:
    # Twilio rates a call a while after it ends: the service's first look finds no price, and it looks again.
    w.twilio.rating_seconds = 8.0
    w.openai.realtime.say("Thanks for calling Sam's Salon.")
    call, stream, log = await connect(w, SALON_NUMBER, "+15553330001")
    await sent_at(log, "response.done")
    await stream.hang_up()
    _session, row, _events = await finalised(w, call.sid)
    async with w.client_for(w.salon_owner) as salon:
        async def phone_cost() -> tuple[str, str]:
            page = (await salon.get(f"{w.server.url}/calls/{row.id}")).text
            found = re.search(r'id="phone-cost" data-state="(\w*)">([^<]*)<', page)
            assert found, page
            return found.group(1), found.group(2)

        state, words = await phone_cost()
        assert state == "pending" and "pending" in words  # known to be owed, not yet known: never $0
        await wait_until(lambda: w.twilio.price_of(call) is not None, timeout=15)
        await wait_until(lambda: _priced(phone_cost), timeout=60, interval=0.5)
        state, words = await phone_cost()
        page = (await salon.get(f"{w.server.url}/calls/{row.id}")).text
        listed = (await salon.get(f"{w.server.url}/calls")).text
    # Under a minute on an inbound line: one started minute at the double's $0.0085.
    assert state == "rated" and words == "$0.0085"
    assert w.twilio.call_fetches.count(call.sid) >= 2  # looked before Twilio had rated it, then again
    _s, priced, _e = await call_row(w, call.sid)
    assert priced is not None and priced.telephony_cost_usd == pytest.approx(0.0085)
    total = f"${priced.cost_usd + 0.0085:,.4f}"
    assert f'<strong id="total-cost">{total}</strong>' in page and total in listed


async def _priced(phone_cost: Callable[[], Any]) -> bool:
    state, _words = await phone_cost()
    return bool(state == "rated")


# -- calls that never got their stream ----------------------------------------------------------------------------
@pytest.mark.parametrize(("twilio_status", "call_status"), [("no-answer", "failed"), ("completed", "abandoned")])
async def test_status_callback_closes_a_call_that_never_streamed(
    w: World, twilio_status: str, call_status: str
) -> None:
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await place(w, BARBER_NUMBER, "+15554440000")
    prewarmed = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
    response = await w.twilio.post_status(w.status_url, call, twilio_status, duration=0)
    assert response.status_code == 204
    session, row, _events = await call_row(w, call.sid)
    assert row is not None and row.status == call_status
    assert row.end_reason == "twilio_" + twilio_status.replace("-", "_")
    assert session.ended_at is not None and row.ended_at is not None
    assert await asyncio.to_thread(prewarmed.closed.wait, 5)
    # A stream that shows up after that is refused: the token was used up by the status callback.
    late = await w.twilio.open_stream(call, answer)
    await asyncio.wait_for(late.closed.wait(), 5)
    assert late.close_code == 4409
    assert prewarmed.input_audio_bytes == 0 and not prewarmed.received_of_type("session.update")
    again = await w.twilio.post_status(w.status_url, call, twilio_status)
    assert again.status_code == 204  # a repeated callback changes nothing


# -- refusals -----------------------------------------------------------------------------------------------------
async def test_unsigned_or_mis_signed_webhooks_are_refused(w: World) -> None:
    call = DoubleCall(sid="CA" + "e" * 32, from_="+15554441111", to=SALON_NUMBER)
    params = w.twilio.voice_params(call)
    forged = await w.twilio.post_webhook(w.voice_url, params, signature=w.twilio.sign(w.voice_url + "x", params))
    unsigned = await w.twilio.post_webhook(w.voice_url, params, signed=False)
    tampered = await w.twilio.post_webhook(
        w.voice_url, params | {"From": "+15550000000"}, signature=w.twilio.sign(w.voice_url, params)
    )
    status = await w.twilio.post_webhook(w.status_url, {"CallSid": call.sid, "CallStatus": "busy"}, signed=False)
    assert [r.status_code for r in (forged, unsigned, tampered, status)] == [403, 403, 403, 403]
    assert forged.json()["error"] == "invalid Twilio signature"
    db = w.database()
    try:
        async with db.session() as s:
            assert await s.scalar(select(Session).where(Session.twilio_call_sid == call.sid)) is None
    finally:
        await db.dispose()
    assert "refused mis-signed Twilio webhook for /twilio/voice" in w.server.log()
    assert "refused unsigned Twilio webhook for /twilio/status" in w.server.log()


async def test_unknown_number_gets_a_spoken_apology_and_hang_up(w: World) -> None:
    sessions_before = len(w.openai.realtime_sessions)
    _call, answer = await place(w, "+15559999999", "+15554442222")
    assert answer.says and "not set up" in answer.says[0] and answer.hangup and answer.stream_url is None
    await asyncio.sleep(0.2)
    assert len(w.openai.realtime_sessions) == sessions_before


async def assert_refused(w: World, stream: MediaStream, code: int, sessions_before: int) -> None:
    await asyncio.wait_for(stream.closed.wait(), 5)
    assert stream.close_code == code
    await asyncio.sleep(0.3)
    for log in w.openai.realtime_sessions[sessions_before:]:
        # Only the prewarmed connection may exist, and it is dropped without ever being used.
        assert not log.received_of_type("session.update") and log.input_audio_bytes == 0
        assert await asyncio.to_thread(log.closed.wait, 5)


async def test_reused_token_is_refused(w: World) -> None:
    w.openai.realtime.say("Hello.")
    call, first, log = await connect(w, BARBER_NUMBER, "+15554443333")
    await sent_at(log, "response.done")
    sessions_before = len(w.openai.realtime_sessions)
    answer = TwimlAnswer(200, "", stream_url=first.url, parameters=first.parameters)
    second = await w.twilio.open_stream(call, answer)
    await assert_refused(w, second, 4409, sessions_before)
    assert len(w.openai.realtime_sessions) == sessions_before
    await first.hang_up()
    await finalised(w, call.sid)


async def test_token_for_another_call_is_refused_and_the_prewarmed_connection_dropped(w: World) -> None:
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await place(w, BARBER_NUMBER, "+15554444444")
    stream = await w.twilio.open_stream(call, answer, handshake=False)
    await stream.send_connected()
    await stream.send_start(call_sid="CA" + "f" * 32)
    await assert_refused(w, stream, 4403, sessions_before)
    assert len(w.openai.realtime_sessions) == sessions_before + 1  # just the prewarm, now closed


async def test_expired_token_is_refused(w: World) -> None:
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from app.voice.tokens import TokenIssuer

    secret = w.env["SESSION_SECRETS"]
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await place(w, BARBER_NUMBER, "+15554445555")
    session_id, nonce = TokenIssuer((secret,)).read(answer.parameters["session"])

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3600

    stale = URLSafeTimedSerializer(secret, salt="call-connect", signer=LongAgo)
    expired = answer.parameters | {"session": stale.dumps({"sid": str(session_id), "n": nonce})}
    stream = await w.twilio.open_stream(call, TwimlAnswer(200, "", stream_url=answer.stream_url,
                                                          parameters=expired))
    await assert_refused(w, stream, 4401, sessions_before)


async def test_handshake_garbage_and_malformed_frames_mid_call_are_ignored(w: World) -> None:
    w.openai.realtime.say("Hello.")
    w.openai.realtime.caller("What time do you open on Saturday?")
    w.openai.realtime.say("Ten.")
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await place(w, BARBER_NUMBER, "+15554446666")
    stream = await w.twilio.open_stream(call, answer, handshake=False)
    await stream.send_text("this is not json")
    await stream.send_json({"event": "media", "media": {"payload": "AAAA"}})  # media before start
    await stream.send_connected()
    await stream.send_start()
    log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
    await sent_at(log, "response.done")
    for frame in ("[1, 2]", '{"event": 5}', '{"event": "media"}', '{"event": "media", "media": {"payload": "%%"}}',
                  '{"event": "mark", "mark": {"name": "never-sent"}}', '{"event": "dtmf", "dtmf": {"digit": "xy"}}',
                  '{"event": "start", "start": {}}', '{"event": "connected"}', '{"event": "surprise"}'):
        await stream.send_text(frame)
    await stream.speak(caller_audio("hours"))
    await sent_at(log, "response.done", count=2, timeout=15)
    await hear_it_all(stream, log)
    await stream.hang_up()
    _session, row, _events = await finalised(w, call.sid)
    assert "Caller: What time do you open on Saturday?" in row.transcript and "Agent: Ten." in row.transcript
    assert "twilio stream" in w.server.log() and "ignored" in w.server.log()


# -- many calls at once -------------------------------------------------------------------------------------------
PHONE_IN_FACTS = re.compile(r"Caller's phone \(from the line\): (\+\d+)")


def books_own_slot(slot_of: dict[str, str]) -> Callable[[dict[str, Any]], FunctionCallReply | TextReply | None]:
    """A `DecidingOpenAIDouble.decide` whose supervisor books each caller the slot `slot_of` gives their phone
    (read from the facts it is sent), then says so; summaries take the double's default reply."""

    def decide(body: dict[str, Any]) -> FunctionCallReply | TextReply | None:
        if body.get("model") != "gpt-4.1":
            return None
        phone = PHONE_IN_FACTS.search(json.dumps(body))
        if phone is None:
            return TextReply("I don't know who is calling.")
        caller = phone.group(1)
        if any(item.get("type") == "function_call_output" for item in body.get("input", [])):
            return TextReply(f"Booked for {caller} at {slot_of[caller][-5:]}.")
        return FunctionCallReply("book_appointment", {"service": "Haircut", "start": slot_of[caller],
                                                      "customer_name": f"Caller {caller[-4:]}"})

    return decide


def all_ask_to_book(realtime: RealtimeScript, asks: list[str]) -> None:
    """Concurrent callers each say one of `asks`; each receptionist asks its supervisor and reads out the answer
    (the script hands out caller lines, tool calls and readings each in turn, one per call)."""
    for ask in asks:
        realtime.caller(ask)
    for _ in asks:
        realtime.tool("getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "book"},
                      say_first="One moment.")
    for _ in asks:
        realtime.say_from_tool_output()


def short_utterance(name: str, speech_ms: int = 1200) -> bytes:
    """The start of a recorded line (0.3 s of silence, then speech), cut short to keep the test lean."""
    return caller_audio(name)[: (300 + speech_ms) * 8]


def own_transcript(log: RealtimeSessionLog) -> str:
    """The transcript the app should have kept for this realtime session: its own turns, in order."""
    lines = []
    for event in list(log.sent):
        if event["type"] == "conversation.item.input_audio_transcription.completed" and event["transcript"].strip():
            lines.append("Caller: " + event["transcript"].strip())
        elif event["type"] == "response.output_audio_transcript.done" and event["transcript"].strip():
            lines.append("Agent: " + event["transcript"].strip())
    return "\n".join(lines)


async def test_twenty_concurrent_calls_to_two_businesses(w: World) -> None:
    count = 20
    day = next_weekday(date.today() + timedelta(days=1))
    callers = [f"+1555600{k:04d}" for k in range(count)]
    business_of = {phone: (SALON_NUMBER if k % 2 == 0 else BARBER_NUMBER) for k, phone in enumerate(callers)}
    slot_of = {phone: f"{day.isoformat()}T{9 + k // 4:02d}:{(k // 2 % 2) * 30:02d}" for k, phone in enumerate(callers)}
    w.openai.decide = books_own_slot(slot_of)
    sessions_before = len(w.openai.realtime_sessions)
    placed = await asyncio.gather(*(w.twilio.place_call(w.voice_url, to=business_of[p], from_=p) for p in callers))
    streams = await asyncio.gather(*(w.twilio.open_stream(call, answer) for call, answer in placed))
    stream_of = {call.from_: stream for (call, _a), stream in zip(placed, streams, strict=True)}

    def realtime_by_phone() -> dict[str, RealtimeSessionLog]:
        found = {}
        for log in w.openai.realtime_sessions[sessions_before:]:
            match = PHONE_IN_FACTS.search(log.session_config.get("instructions", ""))
            if match:
                found[match.group(1)] = log
        return found

    # Phase 1: every call is greeted (the script is empty, so each greeting is the default "Okay.").
    await wait_until(lambda: len(realtime_by_phone()) == count
                     and all(log.sent_of_type("response.done") for log in realtime_by_phone().values()), timeout=20)
    logs = realtime_by_phone()
    await wait_until(lambda: all(s.marks_returned and not s.playing for s in streams), timeout=10)

    # Phase 2: everyone asks to book at once; each supervisor books that caller's own slot.
    all_ask_to_book(w.openai.realtime, [f"Please book me in, caller number {k}." for k in range(count)])
    ask = short_utterance("book")
    await asyncio.gather(*(s.speak(ask) for s in streams))
    await wait_until(lambda: all(len(log.sent_of_type("response.done")) >= 3 for log in logs.values()), timeout=30)

    # Phase 3: everyone says goodbye; the receptionist ends each call after its goodbye has played.
    for k in range(count):
        w.openai.realtime.caller(f"Thanks, goodbye from caller {k}.")
    for _ in range(count):
        w.openai.realtime.tool("end_call", {}, say_first="Goodbye!")
    bye = short_utterance("bye")
    await asyncio.gather(*(s.speak(bye) for s in streams))
    await wait_until(lambda: all(w.twilio.hang_ups(call.sid) for call, _a in placed), timeout=30)
    await asyncio.gather(*(asyncio.wait_for(s.closed.wait(), 10) for s in streams))

    db = w.database()
    try:
        async with db.session() as s:
            calls = list(await s.scalars(select(Call).where(Call.caller_phone.in_(callers))))
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id.in_([c.id for c in calls]))))
            appointments = (await s.scalars(select(Appointment).where(
                Appointment.call_id.in_([c.id for c in calls])))).unique().all()
            businesses = {b.id: b for b in await s.scalars(select(Business))}
    finally:
        await db.dispose()

    assert len(calls) == count
    for call in calls:
        phone = call.caller_phone
        assert phone is not None
        (double_call, _answer), stream = next(p for p in placed if p[0].from_ == phone), stream_of[phone]
        # Finalised once, as a completed goodbye, and hung up only after the goodbye had played.
        assert call.status == "completed" and call.end_reason == "goodbye" and call.ended_at is not None
        ends = [e for e in events if e.call_id == call.id and e.text.startswith("call ended")]
        assert len(ends) == 1
        [hang_up] = w.twilio.hang_ups(double_call.sid)
        assert hang_up.at >= max(at for at, _ in stream.marks_returned)
        # The transcript holds this call's own turns and nothing else.
        assert call.transcript == own_transcript(logs[phone]), phone
        assert f"Booked for {phone}" in call.transcript
        # Its booking is in the business it called, for this caller, at this caller's slot.
        [booking] = [a for a in appointments if a.call_id == call.id]
        assert businesses[booking.business_id].phone_number == business_of[phone]
        assert booking.business_id == call.business_id
        assert booking.customer.phone == phone and booking.customer.business_id == booking.business_id
        assert booking.starts_at.astimezone(zone("America/New_York")).strftime("%H:%M") == slot_of[phone][-5:]
    per_business = {number: sum(1 for a in appointments if businesses[a.business_id].phone_number == number)
                    for number in (SALON_NUMBER, BARBER_NUMBER)}
    assert per_business == {SALON_NUMBER: count // 2, BARBER_NUMBER: count // 2}


async def test_pressing_zero_without_a_transfer_number_tells_the_receptionist(w: World) -> None:
    w.openai.realtime.say("Hello.")
    w.openai.realtime.say("Nobody can come to the phone, but I can take a message.")
    call, stream, log = await connect(w, BARBER_NUMBER, "+15553338889")
    await sent_at(log, "response.done")
    await stream.dtmf("0")
    await asyncio.to_thread(log.wait_for_received, "response.create", 10, 2)
    [item] = [e["item"] for e in log.received_of_type("conversation.item.create")]
    assert item["role"] == "user" and "pressed 0" in item["content"][0]["text"]
    await sent_at(log, "response.done", count=2)
    await hear_it_all(stream, log)
    assert not w.twilio.updates(call.sid)
    await stream.hang_up()
    _session, row, events = await finalised(w, call.sid)
    assert "caller pressed 0" in [e.text for e in events]
    assert "Agent: Nobody can come to the phone, but I can take a message." in row.transcript


async def test_a_retried_voice_webhook_gets_a_fresh_token_for_the_same_session(w: World) -> None:
    w.openai.realtime.say("Hello.")
    call, first = await place(w, BARBER_NUMBER, "+15554447777")
    again, second = await w.twilio.place_call(w.voice_url, to=BARBER_NUMBER, from_="+15554447777", call_sid=call.sid)
    assert second.parameters["session"] != first.parameters["session"]
    stale = await w.twilio.open_stream(call, first)
    await asyncio.wait_for(stale.closed.wait(), 5)
    assert stale.close_code == 4403  # the first token was replaced
    sessions_before = len(w.openai.realtime_sessions)
    stream = await w.twilio.open_stream(again, second)  # the retry's answer is the one Twilio carries out
    await wait_until(lambda: any(log.received_of_type("session.update")
                                 for log in w.openai.realtime_sessions[sessions_before - 1:]), timeout=5)
    await stream.hang_up()
    _session, row, _events = await finalised(w, call.sid)
    assert row.caller_phone == "+15554447777"


async def test_a_restart_mid_call_tells_the_caller_and_keeps_the_record(w: World) -> None:
    """SIGTERM (a deploy, a restart) reaches the process carrying a call. granian closes the sockets before the
    app's shutdown hook runs, so Twilio goes on to the TwiML after <Connect>: the caller hears why rather than
    a dead line, and the process still finalises the call record before it exits."""
    w.openai.realtime.say("Bo's Barbers, hello.")
    env = {k: v for k, v in w.env.items() if k != "PUBLIC_BASE_URL"}
    other = run_server(env)  # a second process on the same database: this one is restarted
    server = await asyncio.to_thread(other.__enter__)
    stopped = False
    try:
        sessions_before = len(w.openai.realtime_sessions)
        call, answer = await w.twilio.place_call(server.url + "/twilio/voice", to=BARBER_NUMBER,
                                                 from_="+15554446666")
        stream = await w.twilio.open_stream(call, answer)
        log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 20.0)
        await sent_at(log, "response.done")
        await hear_it_all(stream, log)
        await asyncio.to_thread(other.__exit__, None, None, None)
        stopped = True
    finally:
        if not stopped:
            await asyncio.to_thread(other.__exit__, None, None, None)
    assert stream.closed.is_set() and call.status == "completed"
    assert call.said_after_stream == [twiml.CUT_OFF_APOLOGY]
    assert not w.twilio.updates(call.sid) and not w.twilio.hang_ups(call.sid)
    _session, row, _events = await finalised(w, call.sid, timeout=15)
    assert (row.status, row.end_reason) == ("abandoned", "caller_disconnected")
    assert "Agent: Bo's Barbers, hello." in row.transcript
    assert "Traceback" not in server.log()


async def test_when_openai_is_unreachable_the_call_is_forwarded_to_the_business(w: World) -> None:
    w.openai.fail_realtime_connect = True
    w.twilio.dial_outcome = "completed"  # somebody at the salon picks up
    call, answer = await place(w, SALON_NUMBER, "+15554448887")
    stream = await w.twilio.open_stream(call, answer)
    await asyncio.wait_for(stream.closed.wait(), 15)
    [update] = w.twilio.updates(call.sid)
    forward = parse_twiml(200, update.form["Twiml"])
    assert forward.dial == SALON_TRANSFER and forward.dial_attributes["timeout"] == "20"
    assert forward.dial_attributes["action"] == w.server.url + "/twilio/fallback/dial"
    await wait_until(lambda: call.ended is not None, timeout=10)
    assert call.dial_status == "completed" and call.recording_sid is None
    [(url, form)] = w.twilio.fallback_posts
    assert url.endswith("/twilio/fallback/dial") and form["DialCallStatus"] == "completed"
    session, row, events = await finalised(w, call.sid)
    assert (row.status, row.end_reason) == ("failed", "openai_unavailable")
    assert "sent to the fallback: forwarded to the business" in [e.text for e in events]
    assert session.status == "failed" and "HTTP 500" in (session.failure_reason or "")


async def _voicemail(w: World, call: DoubleCall) -> Any:
    await wait_until(lambda: call.recording_sid is not None and call.ended is not None, timeout=15)
    db = w.database()
    try:
        async def transcribed() -> Any:
            async with db.session() as s:
                message = await s.scalar(select(Message).where(Message.recording_sid == call.recording_sid))
            return message if message is not None and message.transcript_status == "done" else None

        await wait_until(transcribed, timeout=30)
        return await transcribed()
    finally:
        await db.dispose()


async def test_without_a_fallback_number_the_caller_leaves_a_voicemail_for_the_inbox(w: World) -> None:
    w.openai.fail_realtime_connect = True
    w.openai.transcription_failures = 1  # OpenAI can't transcribe at first: the job retries later
    w.twilio.voicemail_audio = caller_audio("book")
    call, answer = await place(w, BARBER_NUMBER, "+15554448888")
    stream = await w.twilio.open_stream(call, answer)
    await asyncio.wait_for(stream.closed.wait(), 15)
    [update] = w.twilio.updates(call.sid)
    document = parse_twiml(200, update.form["Twiml"])
    assert document.record is not None and document.dial is None
    assert document.record["maxLength"] == "120" and document.record["recordingStatusCallbackEvent"] == "completed"
    assert document.record["recordingStatusCallback"] == w.server.url + "/twilio/voicemail/recording"
    message = await _voicemail(w, call)
    assert message.body == w.openai.transcription_text and message.caller_phone == "+15554448888"
    assert message.business_id == w.barber_id and message.audio_seconds == len(caller_audio("book")) // 8000
    assert len(w.openai.transcription_requests) == 1  # after one refused attempt
    stored = Path(message.audio_path)
    stored_audio = await asyncio.to_thread(stored.read_bytes)
    assert stored.parent.name == str(w.barber_id) and stored_audio.endswith(caller_audio("book"))
    _session, row, events = await finalised(w, call.sid)
    assert message.call_id == row.id and "sent to the fallback: voicemail" in [e.text for e in events]
    assert [url.rsplit("/", 2)[-2:] for url, _f in w.twilio.fallback_posts] == [["twilio", "voicemail"],
                                                                               ["voicemail", "recording"]]
    # The owner sees and plays it on the call page; another owner can't fetch it.
    async with (
        w.client_for(w.barber_owner) as barber,
        w.client_for(w.salon_owner) as salon,
    ):
        page = await barber.get(f"{w.server.url}/calls/{row.id}")
        audio = await barber.get(f"{w.server.url}/messages/{message.id}/audio")
        other = await salon.get(f"{w.server.url}/messages/{message.id}/audio")
    assert page.status_code == 200 and w.openai.transcription_text in page.text
    assert f"/messages/{message.id}/audio" in page.text
    assert audio.status_code == 200 and audio.content == stored_audio and other.status_code == 404


async def test_a_voicemail_callback_repeated_by_twilio_makes_one_message(w: World) -> None:
    w.openai.fail_realtime_connect = True
    w.twilio.voicemail_audio = caller_audio("bye")
    call, answer = await place(w, BARBER_NUMBER, "+15554448889")
    await w.twilio.open_stream(call, answer)
    message = await _voicemail(w, call)
    url, form = w.twilio.fallback_posts[-1]
    assert (await w.twilio.post_webhook(url, form)).status_code == 204  # Twilio retries callbacks
    db = w.database()
    try:
        async with db.session() as s:
            count = len((await s.scalars(select(Message).where(Message.business_id == w.barber_id,
                                                                Message.call_id == message.call_id))).all())
    finally:
        await db.dispose()
    assert count == 1


# -- caller identity (issue 8) ------------------------------------------------------------------------------------
async def _customer_with_booking(w: World, name: str, phone: str, hour: int) -> tuple[UUID, UUID]:
    """A salon customer with private details and one upcoming booking; returns (customer id, appointment id)."""
    db = w.database()
    try:
        async with db.session() as s, s.begin():
            customer = Customer(business_id=w.salon_id, name=name, phone=phone,
                                email=f"{name.split()[0].lower()}@private.example", notes=f"PRIVATE NOTE about {name}")
            s.add(customer)
            await s.flush()
            start = datetime.combine(next_weekday(date.today() + timedelta(days=8)), datetime.min.time(),
                                     tzinfo=UTC) + timedelta(hours=hour)
            appointment = Appointment(business_id=w.salon_id, customer_id=customer.id, service="Haircut",
                                      starts_at=start, ends_at=start + timedelta(minutes=30),
                                      notes="PRIVATE BOOKING NOTE")
            s.add(appointment)
            await s.flush()
            return customer.id, appointment.id
    finally:
        await db.dispose()


def _supervisor_outputs(events: list[CallEvent]) -> list[dict[str, Any]]:
    """What the supervisor's tools returned, as the call record keeps it (an error is kept beside `result`)."""
    return [{"name": e.data["name"], "result": e.data.get("result") or {"error": e.data.get("error")}}
            for e in events if e.kind == "tool_result" and e.data.get("name") != "getNextResponseFromSupervisor"]


async def _ask(stream: MediaStream, log: RealtimeSessionLog, turns_done: int) -> None:
    """The caller says their next line and hears the receptionist's answer (filler + tool, then the answer)."""
    await stream.speak(short_utterance("book"))
    await sent_at(log, "response.done", count=turns_done, timeout=20)
    await hear_it_all(stream, log)


async def test_a_withheld_caller_cannot_cancel_someone_elses_booking_but_can_book_and_leave_a_message(w: World) -> None:
    lee_id, lee_booking = await _customer_with_booking(w, "Lee Private", "+15557770042", 14)
    day = next_weekday(date.today() + timedelta(days=6))
    w.openai.realtime.say("Hello.")
    for line in ("Please cancel Lee Private's appointment, her number is 555 777 0042.",
                 "Then book me a haircut instead.", "And please leave a message for Sam."):
        w.openai.realtime.caller(line)
        w.openai.realtime.tool("getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": line},
                               say_first="One moment.")
        w.openai.realtime.say_from_tool_output()
    w.openai.responses.for_model("gpt-4.1").function_call(
        "cancel_appointment", {"appointment_id": str(lee_booking), "phone": "+15557770042"}
    ).function_call("find_customer", {"phone": "+15557770042"}).function_call(
        "find_appointments", {"phone": "+15557770042"}
    ).text("I can't look that up without your caller ID; I can take a message or put you through.").function_call(
        "book_appointment", {"service": "Haircut", "start": f"{day.isoformat()}T11:00", "customer_name": "Ann Onymous",
                             "customer_phone": "(555) 333-4242"}
    ).text("You're booked at eleven.").function_call(
        "take_message", {"message": "Please call me back about a colour.", "name": "Ann Onymous"}
    ).text("I've passed your message on.")

    call, stream, log = await connect(w, SALON_NUMBER, "anonymous")
    await sent_at(log, "response.done")
    assert "Caller's phone: withheld" in log.session_config["instructions"]
    await hear_it_all(stream, log)
    for turn in range(3):
        await _ask(stream, log, 3 + 2 * turn)
    await stream.hang_up()
    session, row, events = await finalised(w, call.sid)
    # Withheld: no number recorded. The call may come to be linked to the customer the booking made (the
    # outcomes job runs just after the call ends), never to the customer whose booking was asked about.
    assert session.caller_phone is None and row.caller_phone is None and row.customer_id != lee_id

    outputs = _supervisor_outputs(events)
    assert [o["name"] for o in outputs] == ["cancel_appointment", "find_customer", "find_appointments",
                                            "book_appointment", "take_message"]
    for refused in outputs[:3]:
        assert refused["result"]["error"]["code"] == "caller_not_verified"
    assert outputs[3]["result"]["booked"] is True and outputs[4]["result"]["saved"] is True
    recorded = json.dumps([e.data for e in events]) + row.transcript
    for private in ("Lee Private", "PRIVATE NOTE", "PRIVATE BOOKING NOTE", "@private.example"):
        assert private not in json.dumps(outputs), private
    assert "PRIVATE" not in recorded and "@private.example" not in recorded
    assert "without your caller ID" in row.transcript

    db = w.database()
    try:
        async with db.session() as s:
            lee_appointment = await s.get(Appointment, lee_booking)
            lee = await s.get(Customer, lee_id)
            booked = (await s.scalars(select(Appointment).where(Appointment.call_id == row.id))).unique().all()
            [message] = list(await s.scalars(select(Message).where(Message.call_id == row.id)))
    finally:
        await db.dispose()
    assert lee_appointment is not None and lee_appointment.status == "booked"  # nothing changed
    assert lee is not None and lee.name == "Lee Private"
    [new] = booked
    assert new.caller_verified is False and new.customer.phone == "+15553334242"
    assert new.customer.phone_verified is False and new.customer.name == "Ann Onymous"
    assert row.customer_id in (None, new.customer_id)
    assert message.body == "Please call me back about a colour." and message.caller_phone is None


async def test_a_known_caller_cancels_their_own_booking_and_hears_nothing_private(w: World) -> None:
    kim_phone = "+15557770043"
    _kim_id, kim_booking = await _customer_with_booking(w, "Kim Known", kim_phone, 15)
    _lee_id, other_booking = await _customer_with_booking(w, "Other Person", "+15557770044", 16)
    w.openai.realtime.say("Hi Kim.")
    line = "Please cancel my haircut."
    w.openai.realtime.caller(line)
    w.openai.realtime.tool("getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": line},
                           say_first="One moment.")
    w.openai.realtime.say_from_tool_output()
    w.openai.responses.for_model("gpt-4.1").function_call("find_customer", {"phone": "+15557770044"}).function_call(
        "find_appointments", {}
    ).function_call("cancel_appointment", {"appointment_id": str(other_booking)}).function_call(
        "cancel_appointment", {"appointment_id": str(kim_booking)}
    ).text("Your haircut is cancelled.")

    call, stream, log = await connect(w, SALON_NUMBER, kim_phone)
    await sent_at(log, "response.done")
    assert "Known caller: Kim Known" in log.session_config["instructions"]
    await hear_it_all(stream, log)
    await _ask(stream, log, 3)
    await stream.hang_up()
    _session, _row, events = await finalised(w, call.sid)

    outputs = _supervisor_outputs(events)
    found, listed, wrong, cancelled = (o["result"] for o in outputs)
    assert found == {"found": True, "name": "Kim Known",
                     "upcoming_appointments": [listed["appointments"][0]]}
    assert [a["appointment_id"] for a in listed["appointments"]] == [str(kim_booking)]
    assert wrong["error"]["code"] == "not_your_appointment"
    assert cancelled == {"cancelled": True, "appointment_id": str(kim_booking)}
    text = json.dumps(outputs)
    for private in ("PRIVATE", "@private.example", "Other Person", "+15557770044", "Jane"):
        assert private not in text, private
    db = w.database()
    try:
        async with db.session() as s:
            mine, theirs = await s.get(Appointment, kim_booking), await s.get(Appointment, other_booking)
    finally:
        await db.dispose()
    assert mine is not None and mine.status == "cancelled"
    assert theirs is not None and theirs.status == "booked"


# -- malformed frames inside live calls (issue 11) ---------------------------------------------------------------
async def _stop_without_closing(w: World, call: DoubleCall, stream: MediaStream) -> None:
    """The caller hangs up: `stop`, and the socket left for the service to close."""
    w.twilio._end(call, "completed", "caller")
    await stream.send_json({"event": "stop", "sequenceNumber": "999", "streamSid": stream.stream_sid,
                            "stop": {"accountSid": w.twilio.account_sid, "callSid": call.sid}})
    await asyncio.wait_for(stream.closed.wait(), 10)


async def _call_survives(w: World, frames: list[str], *, speak: bool) -> None:
    """One live call that gets `frames` mid-call and ends only at its `stop`, with a close frame."""
    w.openai.reset()
    w.openai.realtime.say("Hello.")
    if speak:
        w.openai.realtime.caller("What time do you open on Saturday?")
        w.openai.realtime.say("Ten.")
    call, stream, log = await connect(w, BARBER_NUMBER, "+15554447777")
    await sent_at(log, "response.done")
    for frame in frames:
        await stream.send_text(frame.replace("MZ0", stream.stream_sid))
    if speak:
        await stream.speak(caller_audio("hours"))
        await sent_at(log, "response.done", count=2, timeout=15)
        await hear_it_all(stream, log)
    assert not stream.closed.is_set(), "a malformed frame ended the call"
    await _stop_without_closing(w, call, stream)
    assert stream.close_code == 1000  # a close frame, not a reset connection
    _session, row, events = await finalised(w, call.sid)
    assert row.end_reason == "caller_hung_up", row.end_reason
    assert "Agent: Hello." in row.transcript
    assert any("malformed frames from the caller" in e.text for e in events)  # the owner sees it counted
    if speak:
        assert "Caller: What time do you open on Saturday?" in row.transcript and "Agent: Ten." in row.transcript


async def test_each_frame_that_used_to_end_a_call_is_ignored_inside_a_live_call(w: World) -> None:
    from tests.test_frames import FATAL_TWILIO

    await _call_survives(w, [*FATAL_TWILIO, "x" * 100_000, '{"event":"start","start":{"mediaFormat":5}}'],
                         speak=True)
    assert "ignored" in w.server.log()


@settings(max_examples=3, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(frames=st.lists(malformed_twilio_frames(), min_size=100, max_size=100))
async def test_fuzzed_frames_inside_live_phone_calls_end_no_call(w: World, frames: list[str]) -> None:
    await _call_survives(w, frames, speak=False)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(frames=st.lists(malformed_twilio_frames(), min_size=500, max_size=500))
async def test_ten_thousand_fuzzed_frames_inside_live_phone_calls_end_no_call(w: World, frames: list[str]) -> None:
    await _call_survives(w, frames, speak=False)


# -- planned restarts (issue 11 item 4) --------------------------------------------------------------------------
async def test_a_drained_instance_says_so_and_a_call_cut_by_its_restart_is_a_service_restart(w: World) -> None:
    """The deploy drains the instance first (POST /ops/drain with the operator's token): /health answers 503
    "draining" so the load balancer moves on; a call still live when the process then stops is recorded as
    a service restart, not as the caller's network drop."""
    w.openai.realtime.say("Bo's Barbers, hello.")
    token = "operator-token-0123456789"
    env = {k: v for k, v in w.env.items() if k != "PUBLIC_BASE_URL"} | {"OPERATOR_TOKEN": token,
                                                                       "DRAIN_TIMEOUT_SECONDS": "1"}
    other = run_server(env)
    server = await asyncio.to_thread(other.__enter__)
    stopped = False
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            assert (await client.post("/ops/drain")).status_code == 401
            assert (await client.get("/ops/drain", headers={"Authorization": "Bearer nope"})).status_code == 401
            sessions_before = len(w.openai.realtime_sessions)
            call, answer = await w.twilio.place_call(server.url + "/twilio/voice", to=BARBER_NUMBER,
                                                     from_="+15554446667")
            stream = await w.twilio.open_stream(call, answer)
            log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
            await sent_at(log, "response.done")
            auth = {"Authorization": f"Bearer {token}"}
            drained = await client.post("/ops/drain", headers=auth)
            assert drained.status_code == 202 and drained.json()["live_calls"] == 1
            health = await client.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "draining"
            state = (await client.get("/ops/drain", headers=auth)).json()
            # "moving" may be true for a moment: the drain first asks whether another instance is there to take
            # phone calls (none is; the call stays and is cut by the restart below)
            assert state["draining"] is True and state["live_calls"] == 1 and isinstance(state["moving"], bool)
        await asyncio.to_thread(other.__exit__, None, None, None)
        stopped = True
    finally:
        if not stopped:
            await asyncio.to_thread(other.__exit__, None, None, None)
    # The stopped process's socket close reaches the double's own loop a moment later.
    await asyncio.wait_for(stream.closed.wait(), 10)
    _session, row, _events = await finalised(w, call.sid, timeout=5)
    assert (row.status, row.end_reason) == ("failed", "service_restart")
    assert "draining: 1 live call" in server.log() and "Traceback" not in server.log()
