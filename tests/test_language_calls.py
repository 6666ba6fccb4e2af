"""Issue 16 end to end: phone calls in the caller's language, on the real service (granian) between the Twilio
double and the OpenAI double, reached only through configuration. One server serves the module.

The transcription model is `gpt-transcribe`, whose completed events report the detected language, so both ways a
switch is noticed run here: from the transcript, and from the receptionist model's `set_language` tool."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Call, CallEvent, Customer, Session
from app.i18n.lines import Line, text
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble, RealtimeSessionLog
from tests.doubles.twilio_double import DoubleCall, MediaStream, TwilioDouble, caller_audio, parse_twiml
from tests.support.data import create_owner
from tests.support.phone_world import PhoneWorld, phone_service
from tests.support.waiting import wait_until

NUMBER = "+15550003000"
TRANSFER = "+12125550142"
SPANISH_CUSTOMER = "+15557770101"
GREETING = "Thanks for calling Casa Lupita. How can I help you today?"
SPANISH_WEEKDAYS = re.compile(r"\b(lunes|martes|miércoles|jueves|viernes|sábado|domingo)\b")


@dataclass
class World(PhoneWorld):
    business_id: UUID
    owner_id: UUID


async def _seed(env: dict[str, str]) -> tuple[UUID, UUID]:
    db = Database(load_settings(env))
    try:
        owner, business = await create_owner(db, name="Casa Lupita", phone_number=NUMBER, transfer_number=TRANSFER,
                                             greeting=GREETING, languages=["en-US", "es-MX"])
        async with db.session() as s, s.begin():
            s.add(Customer(business_id=business.id, name="Lupe García", phone=SPANISH_CUSTOMER))
        return business.id, owner.id
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("language-calls")
    with OpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, \
            phone_service(data_dir, openai, twilio, "language-calls-server.log",
                          TRANSCRIPTION_MODEL="gpt-transcribe") as server:
        yield World(server, openai, twilio, server.env, *asyncio.run(_seed(server.env)))


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.openai.reset()
    world.twilio.reset()
    yield world


async def connect(w: World, from_: str) -> tuple[DoubleCall, MediaStream, RealtimeSessionLog]:
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await w.twilio.place_call(w.server.url + "/twilio/voice", to=NUMBER, from_=from_)
    assert answer.status_code == 200, answer.body
    # Answered in the primary language: the apology after <Connect> is English, read by an en-US voice.
    assert answer.after_stream == [text(Line.CUT_OFF, "en-US")]
    assert answer.say_voices == [("Polly.Joanna-Neural", "en-US")]
    stream = await w.twilio.open_stream(call, answer)
    log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
    return call, stream, log


def sent_at(log: RealtimeSessionLog, event_type: str, count: int = 1, timeout: float = 15.0) -> Any:
    return asyncio.to_thread(log.wait_for_sent, event_type, timeout, count)


async def finalised(w: World, call_sid: str) -> tuple[Call, list[CallEvent]]:
    db = w.database()
    try:
        async def ended() -> tuple[Call, list[CallEvent]] | None:
            async with db.session() as s:
                session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
                call = await s.scalar(select(Call).where(Call.session_id == session.id)) if session else None
                if call is None or call.ended_at is None:
                    return None
                events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id)
                                              .order_by(CallEvent.sequence)))
                return call, events

        return await wait_until(ended)
    finally:
        await db.dispose()


def position(log: RealtimeSessionLog, predicate: Any) -> int:
    return next(i for i, event in enumerate(log.received) if predicate(event))


def is_spanish_update(event: dict[str, Any]) -> bool:
    return event.get("type") == "session.update" and "speak only Spanish" in event["session"].get("instructions", "")


def tool_output(event: dict[str, Any], call_id: str | None = None) -> bool:
    item = event.get("item") or {}
    return (event.get("type") == "conversation.item.create" and item.get("type") == "function_call_output"
            and (call_id is None or item.get("call_id") == call_id))


# -- a Spanish-speaking caller ------------------------------------------------------------------------------
async def test_a_spanish_caller_is_answered_in_spanish_and_the_fallback_speaks_spanish(w: World) -> None:
    """Greeted in English; the caller speaks Spanish, the transcription says so, and from the second turn on the
    model is told to speak Spanish, the supervisor answers in Spanish with times worded in Spanish, and when the
    model's connection is lost for good, the forward, the voicemail and the goodbye Twilio speaks are Spanish."""
    day = date.today() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    w.openai.realtime.say(GREETING)
    w.openai.realtime.caller("Hola, quisiera reservar un corte de pelo para mañana, por favor.", language="es")
    w.openai.realtime.tool("getNextResponseFromSupervisor",
                           {"relevantContextFromLastUserMessage": "quiere un corte de pelo mañana"},
                           say_first="Un momento.")
    w.openai.realtime.say_from_tool_output()
    w.openai.responses.for_model("gpt-4.1").function_call(
        "check_availability", {"service": "Haircut", "date": day.isoformat()}
    ).text("Mañana tenemos libre a las diez de la mañana. ¿Le va bien?")
    w.twilio.dial_outcome = "no-answer"  # nobody at the business picks up the forwarded call

    call, stream, log = await connect(w, SPANISH_CUSTOMER)
    await sent_at(log, "response.done")
    first = log.received_of_type("session.update")[0]["session"]
    assert first["audio"]["input"]["transcription"] == {"model": "gpt-transcribe", "languages": ["en", "es"]}
    assert "set_language" in [tool["name"] for tool in first["tools"]]
    assert "Speak English (United States) unless the caller speaks another language" in first["instructions"]
    assert GREETING in log.received_of_type("response.create")[0]["response"]["instructions"]
    await stream.speak(caller_audio("book"))
    await sent_at(log, "response.done", count=3)  # filler + tool, then the supervisor's answer

    # What the service sent the model: Spanish instructions, before the supervisor's answer was handed over.
    switched = position(log, is_spanish_update)
    assert switched < position(log, tool_output)
    assert text(Line.TROUBLE, "es-MX") not in json.dumps(log.received)  # nothing went wrong yet
    supervisor = w.openai.response_requests
    assert all("Write every reply in Spanish" in body["instructions"] for body in supervisor)
    availability = next(item for item in supervisor[-1]["input"] if item.get("type") == "function_call_output")
    assert SPANISH_WEEKDAYS.search(json.loads(availability["output"])["free_starts_spoken"][0])

    # The model's connection is lost for good: the caller is forwarded, in Spanish.
    w.openai.refuse_connects = 2
    w.openai.realtime.expire_after(0.01, once=True)
    await asyncio.wait_for(stream.closed.wait(), 20)
    [update] = w.twilio.updates(call.sid)
    forward = parse_twiml(200, update.form["Twiml"])
    assert forward.dial == TRANSFER
    assert forward.says == [text(Line.FORWARD_TROUBLE, "es-MX")]
    assert forward.say_voices == [("Polly.Mia-Neural", "es-MX")]
    # Nobody answers: the voicemail Twilio fetches next (another request, from the stored call) is Spanish too,
    # and so is the goodbye when the caller leaves no message.
    await wait_until(lambda: call.ended is not None)
    voicemail = call.documents[1]
    assert voicemail.record is not None
    assert voicemail.says[0] == f"{text(Line.NOBODY_AVAILABLE, 'es-MX')} {text(Line.VOICEMAIL_PROMPT, 'es-MX')}"
    assert set(voicemail.say_voices) == {("Polly.Mia-Neural", "es-MX")}
    assert call.said_after_stream == [text(Line.NO_MESSAGE, "es-MX")]

    row, events = await finalised(w, call.sid)
    assert row.language == "es-MX" and row.status == "failed" and row.end_reason == "realtime_lost"
    assert "Caller: Hola, quisiera reservar" in row.transcript  # kept as spoken
    [switch] = [e for e in events if e.text.startswith("language:")]
    assert switch.data == {"language": "es-MX", "previous": "en-US", "source": "transcription"}

    db = w.database()
    try:
        async def remembered() -> bool:
            async with db.session() as s:
                customer = await s.scalar(select(Customer).where(Customer.phone == SPANISH_CUSTOMER))
            return customer is not None and customer.language == "es-MX"

        await wait_until(remembered)  # the customer's next call (and calls to them) know their language
    finally:
        await db.dispose()

    async with w.client_for(w.owner_id) as owner:
        page = await owner.get(f"{w.server.url}/calls/{row.id}")
        listing = await owner.get(f"{w.server.url}/calls")
    assert page.status_code == 200 and '<dd id="call-language">Spanish (Mexico)</dd>' in page.text
    assert listing.status_code == 200 and "Spanish (Mexico)" in listing.text

    # The next call from that customer tells the model the language they spoke last time.
    w.openai.reset()
    w.openai.realtime.say(GREETING)
    again, stream, log = await connect(w, SPANISH_CUSTOMER)
    await sent_at(log, "response.done")
    assert "This caller spoke Spanish on an earlier call." in log.session_config["instructions"]
    await stream.hang_up()
    await finalised(w, again.sid)


async def test_the_model_switches_with_set_language_and_the_transfer_line_is_spanish(w: World) -> None:
    """No language in the transcript (the detector was unsure): the receptionist model reports it with
    `set_language`; the session's instructions change before its answer, and the transfer that follows is
    announced by Twilio in Spanish."""
    w.openai.realtime.say(GREETING)
    w.openai.realtime.caller("Buenas, ¿me pasa con alguien, por favor?")  # no language reported
    w.openai.realtime.tool("set_language", {"language": "es"})
    w.openai.realtime.tool("transfer_to_human", {}, say_first="Claro, le comunico.")
    call, stream, log = await connect(w, "+15557770202")
    await sent_at(log, "response.done")
    await stream.speak(caller_audio("person"))
    await asyncio.wait_for(stream.closed.wait(), 20)
    output = log.received[position(log, tool_output)]
    assert json.loads(output["item"]["output"])["language"] == "es-MX"
    assert position(log, is_spanish_update) < position(log, tool_output)
    [update] = w.twilio.updates(call.sid)
    transfer = parse_twiml(200, update.form["Twiml"])
    assert transfer.dial == TRANSFER and transfer.says == [text(Line.TRANSFER, "es-MX")]
    assert transfer.say_voices == [("Polly.Mia-Neural", "es-MX")]
    row, events = await finalised(w, call.sid)
    assert row.language == "es-MX" and row.status == "transferred"
    assert [e.data.get("source") for e in events if e.text.startswith("language:")] == ["set_language"]


# -- a language the business doesn't offer ------------------------------------------------------------------
async def test_a_caller_speaking_a_language_not_offered_gets_the_polite_primary_language_line(w: World) -> None:
    polite = text(Line.NOT_OFFERED, "en-US", languages="English and Spanish")
    w.openai.realtime.say(GREETING)
    w.openai.realtime.caller("こんにちは、明日の予約をしたいのですが。", language="ja")
    w.openai.realtime.tool("set_language", {"language": "ja"})
    w.openai.realtime.say_from_tool_output()
    call, stream, log = await connect(w, "+15557770303")
    await sent_at(log, "response.done")
    await stream.speak(caller_audio("book"))
    await sent_at(log, "response.done", count=3)
    # Told twice over, in English: by a note beside the transcript and by the tool's answer.
    notes = [e for e in log.received_of_type("conversation.item.create") if e["item"].get("role") == "system"]
    assert len(notes) == 1 and polite in notes[0]["item"]["content"][0]["text"]
    output = json.loads(log.received[position(log, tool_output)]["item"]["output"])
    assert output["ok"] is False and output["message"] == polite and output["offered"] == ["en-US", "es-MX"]
    assert not any(is_spanish_update(e) for e in log.received)
    await asyncio.to_thread(log.wait_for_sent, "response.output_audio_transcript.done", 15.0, 2)
    await stream.hang_up()
    row, events = await finalised(w, call.sid)
    assert row.language == "en-US" and f"Agent: {polite}" in row.transcript
    assert [e.text for e in events].count("caller spoke a language not offered (ja)") == 1
