"""Outbound calls end to end (issue 16): the real service (granian subprocess) places calls through the Twilio
double (`Calls.create` → signed status callbacks → the voice webhook with Direction=outbound-api → the media
stream, and the async AMD verdict), with the OpenAI double as the receptionist and a real SMTP server for the
owner's report. One server for the module; each test adds its own customer and appointment.

- a confirmation call answered by a person: the receptionist states who is calling and why, the customer
  confirms through the supervisor's tool on the vouched (dialled) number → the appointment is confirmed in
  the database, the call is on the calls page as outbound with its outcome;
- answered by a machine: after the beep the double records the voicemail `<Say>`, the attempt is marked;
- nobody answers: retried per the owner's policy, then reported to the owner by email;
- click to call from a message: the owner's phone rings first, then Twilio dials the customer with the
  business's number as caller ID; recorded as an outbound call linked to the message;
- a callback the owner schedules shows on Calls out and can be cancelled.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import (
    Appointment,
    Call,
    Customer,
    Message,
    Notification,
    NotificationSettings,
    OutboundCall,
    OutboundSettings,
)
from app.inbox.outbox import DEFAULTS
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.smtp_server import SmtpServer
from tests.doubles.twilio_double import TwilioDouble, caller_audio
from tests.support.data import create_owner
from tests.support.phone_world import InboxWorld as World
from tests.support.phone_world import check_log
from tests.support.server import phone_env, run_server
from tests.support.waiting import wait_until

SALON = "+15550001000"
OWNER_MOBILE = "+12125550100"
OWNER_EMAIL = "sam@salon.example"


async def _db_run(env: dict[str, str], fn: Any) -> Any:
    db = Database(load_settings(env))
    try:
        return await fn(db)
    finally:
        await db.dispose()


async def seed(env: dict[str, str]) -> tuple[UUID, UUID]:
    async def go(db: Database) -> tuple[UUID, UUID]:
        owner, business = await create_owner(db, name="Sam's Salon", phone_number=SALON, email=OWNER_EMAIL)
        async with db.session() as s, s.begin():
            s.add(NotificationSettings(business_id=business.id, **DEFAULTS))
        return business.id, owner.id

    return await _db_run(env, go)  # type: ignore[no-any-return]


async def add_customer_with_appointment(env: dict[str, str], business_id: UUID, phone: str, name: str,
                                        hours_ahead: float = 20) -> UUID:
    """A customer and their Haircut in `hours_ahead` hours, booked three days ago (so its confirmation call,
    24 hours before, is due now)."""
    async def go(db: Database) -> UUID:
        starts = (datetime.now(UTC) + timedelta(hours=hours_ahead)).replace(second=0, microsecond=0)
        booked = datetime.now(UTC) - timedelta(days=3)
        async with db.session() as s, s.begin():
            customer = Customer(business_id=business_id, phone=phone, name=name)
            s.add(customer)
            await s.flush()
            appointment = Appointment(business_id=business_id, customer_id=customer.id, service="Haircut",
                                      starts_at=starts, ends_at=starts + timedelta(minutes=30),
                                      created_at=booked, updated_at=booked)
            s.add(appointment)
            await s.flush()
            return appointment.id

    return await _db_run(env, go)  # type: ignore[no-any-return]


async def rows(env: dict[str, str], query: Any) -> list[Any]:
    async def go(db: Database) -> list[Any]:
        async with db.session() as s:
            return list((await s.scalars(query)).unique().all())

    return await _db_run(env, go)  # type: ignore[no-any-return]


async def csrf(client: httpx.AsyncClient) -> str:
    await client.get("/outbound")
    return client.cookies.get("csrftoken") or ""


async def save_calling_settings(w: World, **overrides: str) -> httpx.Response:
    """The owner turns confirmation calls on for Haircut (24 hours before), through Settings → Calling out;
    saving plans the due calls at once."""
    form = {"owner_phone": OWNER_MOBILE, "calling_start": "00:00", "calling_end": "23:59", "max_attempts": "2",
            "retry_minutes": "0", "max_concurrent": "2", "confirm_0": "24"} | overrides
    async with w.owner_client() as owner:
        token = await csrf(owner)
        return await owner.post("/settings/outbound", data=form | {"_csrf_token": token},
                                headers={"x-csrftoken": token})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("outbound-e2e")
    with OpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, SmtpServer() as smtp:
        env = phone_env(data_dir, openai, twilio, SMTP_URL=smtp.url, SMTP_FROM="receptionist@salon.example")
        with run_server(env) as server:
            business_id, owner_id = asyncio.run(seed(server.env))
            yield World(server, openai, twilio, server.env, smtp=smtp, business_id=business_id, owner_id=owner_id)
            check_log(server.log())


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.openai.reset()
    world.twilio.reset()
    world.smtp.reset()
    yield world


async def outbound_for(env: dict[str, str], appointment_id: UUID) -> OutboundCall | None:
    found = await rows(env, select(OutboundCall).where(OutboundCall.appointment_id == appointment_id))
    return found[0] if found else None


async def test_a_confirmation_call_answered_by_a_person_confirms_the_appointment(w: World) -> None:
    jane = "+12125550123"
    appointment_id = await add_customer_with_appointment(w.env, w.business_id, jane, "Jane Doe")
    w.openai.realtime.say("Hi Jane, this is the receptionist at Sam's Salon.")
    w.openai.realtime.caller("Yes, I can make it.")
    w.openai.realtime.tool("getNextResponseFromSupervisor",
                           {"relevantContextFromLastUserMessage": "they can make it"}, say_first="One moment.")
    w.openai.realtime.say_from_tool_output()
    w.openai.responses.for_model("gpt-4.1").function_call(
        "confirm_appointment", {"appointment_id": str(appointment_id)}).text("Great, see you then. Goodbye!")
    sessions_before = len(w.openai.realtime_sessions)

    saved = await save_calling_settings(w)
    assert saved.status_code == 200 and "Calling-out settings saved" in saved.text

    # Twilio places the call: status callbacks, then the voice webhook (outbound-api) answers with the stream.
    call = await wait_until(lambda: next((c for c in w.twilio.outbound_calls_to(jane) if c.voice_answer), None))
    created = call.create_form
    assert created["From"] == SALON and created["MachineDetection"] == "DetectMessageEnd"
    assert created["AsyncAmd"] == "true" and created["AsyncAmdStatusCallback"].endswith("/amd")
    assert w.twilio.created_calls[-1]["StatusCallbackEvent"] == "initiated ringing answered completed"
    assert [p["CallStatus"] for p in w.twilio.status_callbacks if p["CallSid"] == call.sid][:3] == [
        "initiated", "ringing", "in-progress"]
    assert call.voice_answer.stream_url, call.voice_answer.body
    stream = await w.twilio.open_stream(call, call.voice_answer)
    log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 10.0)
    await asyncio.to_thread(log.wait_for_sent, "response.done", 15.0, 1)
    # Who is calling and why: the opening line, and the purpose in the instructions.
    greeting = log.received_of_type("response.create")[0]["response"]["instructions"]
    assert "Sam's Salon" in greeting and "calling about your Haircut" in greeting and "Hi Jane" in greeting
    instructions = log.received_of_type("session.update")[0]["session"]["instructions"]
    assert "outbound call" in instructions and str(appointment_id) in instructions
    await stream.speak(caller_audio("person"))
    await asyncio.to_thread(log.wait_for_sent, "response.done", 20.0, 3)
    await stream.hang_up()

    async def settled() -> OutboundCall | None:
        found = await outbound_for(w.env, appointment_id)
        return found if found is not None and found.status == "done" else None

    done = await wait_until(settled)
    assert done.outcome == "confirmed" and done.answered_by == "human" and done.attempts == 1
    [appointment] = await rows(w.env, select(Appointment).where(Appointment.id == appointment_id))
    assert appointment.confirmation == "confirmed" and appointment.status == "booked"
    [record] = await rows(w.env, select(Call).where(Call.outbound_call_id == done.id))
    assert record.direction == "outbound" and record.outbound_outcome == "confirmed"
    assert record.caller_phone == jane and record.ended_at is not None

    async with w.owner_client() as owner:
        calls = (await owner.get("/calls")).text
        assert "direction-out" in calls and "confirmed" in calls
        detail = (await owner.get(f"/calls/{record.id}")).text
        assert "Outbound (we called)" in detail and "Call to" in detail
        appointments = (await owner.get("/appointments")).text
        assert 'data-confirmation="confirmed"' in appointments
        outbound = (await owner.get("/outbound")).text
        assert "Jane Doe" in outbound and 'data-outcome="confirmed"' in outbound


async def test_a_machine_gets_the_voicemail_after_the_beep(w: World) -> None:
    mark = "+12125550124"
    appointment_id = await add_customer_with_appointment(w.env, w.business_id, mark, "Mark Lee", 21)
    w.twilio.outbound_answers[mark] = "machine_end_beep"
    w.openai.realtime.say("Hi Mark, this is the receptionist at Sam's Salon.")
    assert (await save_calling_settings(w)).status_code == 200

    call = await wait_until(lambda: next((c for c in w.twilio.outbound_calls_to(mark) if c.voice_answer), None))
    stream = await w.twilio.open_stream(call, call.voice_answer)
    # The AMD verdict after the machine's greeting → a call update speaks the voicemail and hangs up.
    await wait_until(lambda: call.said_after_beep, timeout=20)
    [voicemail] = call.said_after_beep
    assert "Sam's Salon" in voicemail and "Haircut" in voicemail and "call us back" in voicemail
    update_twiml = next(r.form["Twiml"] for r in w.twilio.updates(call.sid) if "Twiml" in r.form)
    assert '<Say language="en-US"' in update_twiml and "<Hangup />" in update_twiml
    await asyncio.wait_for(stream.closed.wait(), 15)

    async def settled() -> OutboundCall | None:
        found = await outbound_for(w.env, appointment_id)
        return found if found is not None and found.status == "done" else None

    done = await wait_until(settled)
    assert done.outcome == "voicemail_left" and done.answered_by == "machine_end_beep"
    assert done.voicemail_text == voicemail
    [appointment] = await rows(w.env, select(Appointment).where(Appointment.id == appointment_id))
    assert appointment.confirmation == "voicemail_left"
    [record] = await rows(w.env, select(Call).where(Call.outbound_call_id == done.id))
    assert record.outbound_outcome == "voicemail_left" and record.direction == "outbound"


async def test_no_answer_is_retried_then_reported_to_the_owner(w: World) -> None:
    nora = "+12125550125"
    appointment_id = await add_customer_with_appointment(w.env, w.business_id, nora, "Nora Field", 22)
    w.twilio.outbound_answers[nora] = "no-answer"
    assert (await save_calling_settings(w)).status_code == 200

    async def failed() -> OutboundCall | None:
        found = await outbound_for(w.env, appointment_id)
        return found if found is not None and found.status == "failed" else None

    row = await wait_until(failed, timeout=40)
    assert row.outcome == "no_answer" and row.attempts == 2 and "not reached after 2 attempts" in row.last_error
    assert len(w.twilio.outbound_calls_to(nora)) == 2  # the owner's policy: two attempts in all
    attempts = await rows(w.env, select(Call).where(Call.outbound_call_id == row.id))
    assert [c.outbound_outcome for c in attempts] == ["no_answer", "no_answer"]
    assert all(c.direction == "outbound" and c.status == "abandoned" for c in attempts)
    [appointment] = await rows(w.env, select(Appointment).where(Appointment.id == appointment_id))
    assert appointment.confirmation == "no_answer"
    [note] = await rows(w.env, select(Notification).where(Notification.event == "outbound_unreached",
                                                          Notification.appointment_id == appointment_id))
    assert note.recipient == OWNER_EMAIL
    await wait_until(lambda: w.smtp.to(OWNER_EMAIL), timeout=20)
    [email] = w.smtp.to(OWNER_EMAIL)
    assert email["Subject"] == "[Sam's Salon] The receptionist could not reach Nora Field"


async def test_call_back_from_a_message_rings_the_owner_then_the_customer(w: World) -> None:
    caller = "+13105551234"
    w.twilio.dial_outcome = "completed"

    async def add_message(db: Database) -> UUID:
        async with db.session() as s, s.begin():
            message = Message(business_id=w.business_id, body="Please call me about my refund",
                              caller_name="Ann Lee", caller_phone=caller, callback_requested=True)
            s.add(message)
            await s.flush()
            return message.id

    message_id = await _db_run(w.env, add_message)
    async with w.owner_client() as owner:
        token = await csrf(owner)
        inbox = (await owner.get("/messages")).text
        assert f'action="/messages/{message_id}/call-back"' in inbox
        answer = await owner.post(f"/messages/{message_id}/call-back", data={"_csrf_token": token},
                                  headers={"x-csrftoken": token, "HX-Request": "true"})
        assert answer.status_code == 200 and "Ringing your phone" in answer.text, answer.text
        assert f"/messages/{message_id}/handled" in answer.text  # "Done: mark handled" next to it

        [leg] = await wait_until(lambda: w.twilio.outbound_calls_to(OWNER_MOBILE))
        assert leg.from_ == SALON and "MachineDetection" not in leg.create_form
        w.twilio.prices[leg.sid] = "-0.01300"  # what Twilio charges for ringing the owner's phone
        [customer_leg] = await wait_until(lambda: leg.child_sids)  # the <Dial> to the customer: a call of its own
        w.twilio.prices[customer_leg] = "-0.02150"
        await wait_until(lambda: leg.ended is not None)
        [dial] = [d for d in leg.documents if d.dial]
        assert dial.dial == caller and dial.dial_attributes["callerId"] == SALON

        async def recorded() -> list[Call]:
            return await rows(w.env, select(Call).join(OutboundCall, OutboundCall.id == Call.outbound_call_id)
                              .where(OutboundCall.message_id == message_id))

        [record] = await wait_until(recorded)
        assert record.direction == "outbound" and record.outbound_outcome == "connected"
        assert record.caller_phone == caller

        # Issue 16 item 6: the call's phone cost is both legs' prices (no AI on this call), once Twilio has them.
        async def rated() -> list[Call]:
            return [c for c in await recorded() if c.telephony_cost_state == "rated"]

        [record] = await wait_until(rated, timeout=60)
        assert record.telephony_cost_usd == pytest.approx(0.0345) and record.telephony_cost_unit == "USD"
        detail = (await owner.get(f"/calls/{record.id}")).text
        assert 'data-state="rated">$0.0345<' in detail and '<strong id="total-cost">$0.0345</strong>' in detail
        calls_out = (await owner.get("/outbound")).text
        assert '<td class="outbound-cost">$0.0345</td>' in calls_out
        exported = csv.DictReader(io.StringIO((await owner.get("/calls/export.csv")).text))
        [line] = [row for row in exported if row["call_id"] == str(record.id)]
        assert (line["direction"], line["telephony_cost"], line["telephony_cost_unit"], line["total_cost_usd"]) == (
            "outbound", "0.03450", "USD", "0.034500")
        handled = await owner.post(f"/messages/{message_id}/handled", data={"_csrf_token": token},
                                   headers={"x-csrftoken": token, "HX-Request": "true"})
        assert handled.status_code == 200
        [message] = await rows(w.env, select(Message).where(Message.id == message_id))
        assert message.handled_at is not None

        # A number the business doesn't have can't be called: another business's message is simply not found.
        missing = await owner.post(f"/messages/{UUID(int=1)}/call-back", data={"_csrf_token": token},
                                   headers={"x-csrftoken": token})
        assert missing.status_code == 404


async def test_a_scheduled_callback_is_listed_and_can_be_cancelled(w: World) -> None:
    async def add(db: Database) -> UUID:
        async with db.session() as s, s.begin():
            customer = Customer(business_id=w.business_id, phone="+12125550126", name="Cal Byrne")
            s.add(customer)
            await s.flush()
            return customer.id

    customer_id = await _db_run(w.env, add)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT10:00")
    async with w.owner_client() as owner:
        token = await csrf(owner)
        bad = await owner.post("/outbound/callbacks", data={"_csrf_token": token, "customer_id": str(customer_id),
                                                            "when": "yesterday", "purpose": ""},
                               headers={"x-csrftoken": token})
        assert bad.status_code == 422 and "enter the date and time" in bad.text and "say what the call" in bad.text
        made = await owner.post("/outbound/callbacks", data={
            "_csrf_token": token, "customer_id": str(customer_id), "when": tomorrow,
            "purpose": "moving her appointment"}, headers={"x-csrftoken": token})
        assert made.status_code == 200 and "Callback scheduled." in made.text
        assert "Callback: moving her appointment" in made.text
        [row] = await rows(w.env, select(OutboundCall).where(OutboundCall.customer_id == customer_id))
        assert row.kind == "callback" and row.status == "scheduled"
        cancelled = await owner.post(f"/outbound/{row.id}/cancel", data={"_csrf_token": token},
                                     headers={"x-csrftoken": token})
        assert cancelled.status_code == 200 and "Cancelled: that call will not be made." in cancelled.text
    [row] = await rows(w.env, select(OutboundCall).where(OutboundCall.id == row.id))
    assert row.status == "cancelled"
    assert not w.twilio.outbound_calls_to("+12125550126")

    # The settings form refuses what makes no sense, saying which field, and saves nothing.
    assert (await save_calling_settings(w)).status_code == 200
    bad_settings = await save_calling_settings(w, calling_start="19:00", calling_end="09:00", max_attempts="9",
                                               confirm_0="500", owner_phone="not a number")
    assert bad_settings.status_code == 422
    for words in ("must start before they end", "enter 1 to 5 attempts", "1 to 168"):
        assert words in bad_settings.text
    [prefs] = await rows(w.env, select(OutboundSettings).where(OutboundSettings.business_id == w.business_id))
    assert (prefs.calling_start, prefs.max_attempts, prefs.owner_phone) == ("00:00", 2, OWNER_MOBILE)

    # Opted out of calls: the form refuses, and a call already due is never placed.
    async def opt_out(db: Database) -> None:
        async with db.session() as s, s.begin():
            await s.execute(update(Customer).where(Customer.id == customer_id)
                            .values(calls_opted_out_at=datetime.now(UTC)))

    await _db_run(w.env, opt_out)
    async with w.owner_client() as owner:
        token = await csrf(owner)
        refused = await owner.post("/outbound/callbacks", data={
            "_csrf_token": token, "customer_id": str(customer_id), "when": tomorrow, "purpose": "anything"},
            headers={"x-csrftoken": token})
        assert refused.status_code == 422 and "asked not to be called" in refused.text
