"""The owner's inbox end to end: the real service (granian subprocess) between the Twilio double (calls and
Messages), the OpenAI double and a real SMTP server on 127.0.0.1, all reached only through configuration.

A caller leaves a message → it is on /messages, unread, linked to the call and the customer → the owner's
email (with the link) and text arrive within seconds → marking it handled clears the nav count. A booking by
phone across a DST change → the caller's confirmation text with the local time. Faults: the mail server
refusing connections for a while, and the service killed between the event and the send."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import BookingRules, Call, Customer, Job, Message, Notification, NotificationSettings, Session
from app.i18n.dates import short_datetime
from app.inbox.outbox import DEFAULTS
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble, RealtimeSessionLog
from tests.doubles.smtp_server import SmtpServer, body_of
from tests.doubles.twilio_double import DoubleCall, MediaStream, TwilioDouble, caller_audio
from tests.support.data import create_owner
from tests.support.phone_world import InboxWorld as World
from tests.support.phone_world import check_log
from tests.support.server import free_port, phone_env, run_server
from tests.support.waiting import wait_until
from tests.support.written import english_words_in

SALON = "+15550001000"
OWNER_MOBILE = "+15559990000"
OWNER_EMAIL = "sam@salon.example"


def inbox_env(data_dir: Path, openai: OpenAIDouble, twilio: TwilioDouble, smtp: SmtpServer) -> dict[str, str]:
    return phone_env(data_dir, openai, twilio, SMTP_URL=smtp.url, SMTP_FROM="receptionist@salon.example")


async def seed(env: dict[str, str]) -> tuple[UUID, UUID]:
    db = Database(load_settings(env))
    try:
        owner, business = await create_owner(db, name="Sam's Salon", phone_number=SALON, email=OWNER_EMAIL,
                                             greeting="Thanks for calling Sam's Salon.")
        async with db.session() as s, s.begin():
            s.add(NotificationSettings(business_id=business.id, **{
                **DEFAULTS, "sms_enabled": True, "sms_to": OWNER_MOBILE, "confirmations_enabled": True,
                "reminders_enabled": True}))
            # The DST test books 15 March 2027, further ahead than the calendar's default 90 days (issue 15).
            s.add(BookingRules(business_id=business.id, max_days_ahead=365))
        return business.id, owner.id
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("inbox-e2e")
    with OpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, SmtpServer() as smtp:
        twilio.sms_numbers = {SALON}
        with run_server(inbox_env(data_dir, openai, twilio, smtp)) as server:
            env = server.env
            business_id, owner_id = asyncio.run(seed(env))
            yield World(server, openai, twilio, env, smtp=smtp, business_id=business_id, owner_id=owner_id)
            check_log(server.log())


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.openai.reset()
    world.twilio.reset()
    world.twilio.sms_numbers = {SALON}
    world.smtp.reset()
    if not world.smtp.running:
        world.smtp.start()
    yield world


async def one(env: dict[str, str], query: Any) -> Any:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            return (await s.scalars(query)).all()
    finally:
        await db.dispose()


async def call_for(env: dict[str, str], call_sid: str) -> Call | None:
    """The call once it has ended and been settled (its outcomes derived, by the job its ending queued)."""
    rows = await one(env, select(Call).join(Session, Session.id == Call.session_id)
                     .where(Session.twilio_call_sid == call_sid, Call.ended_at.is_not(None)))
    return rows[0] if rows and rows[0].outcomes else None


def script_message_call(openai: OpenAIDouble, name: str = "Ann Lee") -> None:
    openai.realtime.say("Thanks for calling Sam's Salon.")
    openai.realtime.caller("Can I leave a message for Sam? I need to talk about a refund.")
    openai.realtime.tool("getNextResponseFromSupervisor",
                         {"relevantContextFromLastUserMessage": "leave a message about a refund"},
                         say_first="One moment.")
    openai.realtime.say_from_tool_output()
    openai.responses.for_model("gpt-4.1").function_call(
        "take_message", {"message": "Wants to talk about a refund for last week's colour.", "name": name,
                         "callback_requested": True}
    ).text("I've passed your message on; Sam will call you back.")


async def greeted_call(w: World, voice_url: str, to: str, caller: str
                       ) -> tuple[DoubleCall, MediaStream, RealtimeSessionLog]:
    """A phone call from `caller`, its stream open and the greeting said."""
    sessions_before = len(w.openai.realtime_sessions)
    call, answer = await w.twilio.place_call(voice_url, to=to, from_=caller)
    assert answer.status_code == 200, answer.body
    stream = await w.twilio.open_stream(call, answer)
    log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
    await asyncio.to_thread(log.wait_for_sent, "response.done", 10.0, 1)
    return call, stream, log


async def leave_message(w: World, server_url: str, caller: str) -> str:
    """A phone call on which the caller leaves a message and hangs up; returns the CallSid."""
    call, stream, log = await greeted_call(w, server_url + "/twilio/voice", SALON, caller)
    await stream.speak(caller_audio("person"))
    await asyncio.to_thread(log.wait_for_sent, "response.done", 15.0, 3)
    await stream.hang_up()
    return call.sid


async def test_a_message_by_phone_reaches_the_inbox_the_owners_email_and_text(w: World) -> None:
    script_message_call(w.openai)
    caller = "+15553334444"
    started = time.monotonic()
    call_sid = await leave_message(w, w.server.url, caller)
    call = await wait_until(lambda: call_for(w.env, call_sid))
    assert call.outcomes == ["callback_requested", "message_taken"] and call.needs_follow_up
    [customer] = await one(w.env, select(Customer).where(Customer.phone == caller))
    assert customer.name == "Ann Lee" and call.customer_id == customer.id
    [message] = await one(w.env, select(Message).where(Message.call_id == call.id))
    assert message.customer_id == customer.id and message.handled_at is None and message.callback_requested

    async with w.owner_client() as owner:
        inbox = (await owner.get("/messages")).text
        assert "Ann Lee" in inbox and f'href="/calls/{call.id}"' in inbox
        assert f'href="/customers/{customer.id}"' in inbox
        assert 'data-state="unread"' in inbox and f'href="tel:{caller}"' in inbox
        assert '<span class="count" aria-label="1 unread">1</span>' in (await owner.get("/messages/count")).text

        # The owner hears about it within seconds, by email and by text, each with the link to the call.
        link = f"{w.server.url}/calls/{call.id}"
        await wait_until(lambda: w.smtp.to(OWNER_EMAIL) and w.twilio.texts_to(OWNER_MOBILE), timeout=15)
        assert time.monotonic() - started < 30
        [email] = w.smtp.to(OWNER_EMAIL)
        body = body_of(email)
        assert email["Subject"] == f"[Sam's Salon] Ann Lee ({caller}) left a message"
        assert body.splitlines()[1].startswith("Summary: ")  # the call's summary, written after the call
        assert link in body and f"What to do: Call Ann Lee back on {caller}." in body
        [text] = w.twilio.texts_to(OWNER_MOBILE)
        assert text["from"] == SALON and link in text["body"]
        # Twilio's status callback (signed, to the public route) marks the text delivered on the call page.
        async def delivered() -> bool:
            rows = await one(w.env, select(Notification).where(Notification.call_id == call.id,
                                                               Notification.channel == "sms"))
            return bool(rows) and rows[0].status == "delivered"

        await wait_until(delivered)
        page = (await owner.get(f"/calls/{call.id}")).text
        assert 'id="notifications"' in page and "delivered" in page and OWNER_MOBILE in page

        token = (await owner.get("/messages")).cookies.get("csrftoken") or owner.cookies.get("csrftoken")
        handled = await owner.post(f"/messages/{message.id}/handled", headers={"HX-Request": "true",
                                                                               "x-csrftoken": token or ""})
        assert handled.status_code == 200 and handled.headers["HX-Trigger"] == "inbox-changed"
        assert (await owner.get("/messages/count")).text == ""
    assert len(w.smtp.messages) == 1 and len(w.twilio.texts_to(OWNER_MOBILE)) == 1


async def test_a_booking_by_phone_across_a_dst_change_texts_the_caller_the_local_time(w: World) -> None:
    # Booked today (Eastern Standard Time) for Monday 15 March 2027, the day after clocks go forward.
    assert date.today() < date(2027, 3, 14)
    w.openai.realtime.say("Thanks for calling Sam's Salon.")
    w.openai.realtime.caller("I'd like a haircut on the fifteenth of March at ten.")
    w.openai.realtime.tool("getNextResponseFromSupervisor",
                           {"relevantContextFromLastUserMessage": "haircut 15 March 10am"}, say_first="One moment.")
    w.openai.realtime.say_from_tool_output()
    w.openai.responses.for_model("gpt-4.1").function_call(
        "book_appointment", {"service": "Haircut", "start": "2027-03-15T10:00", "customer_name": "Cy Diaz"}
    ).text("You're booked for Monday the fifteenth at ten.")
    caller = "+15553337777"
    call, stream, _log = await greeted_call(w, w.voice_url, SALON, caller)
    await stream.speak(caller_audio("book"))
    # The confirmation goes out while the caller is still on the line.
    await wait_until(lambda: w.twilio.texts_to(caller), timeout=15)
    [confirmation] = w.twilio.texts_to(caller)
    assert confirmation["from"] == SALON
    assert confirmation["body"] == ("Sam's Salon: your Haircut is booked for Mon 15 Mar at 10:00. To change or "
                                    "cancel it, call +15550001000. Reply STOP to opt out.")
    await stream.hang_up()
    row = await wait_until(lambda: call_for(w.env, call.sid))
    assert row.outcomes == ["booked"] and not row.needs_follow_up and row.customer_id is not None
    # The reminder waits for 18:00 local on Sunday 14 March (22:00 UTC, daylight time), once.
    reminders = await one(w.env, select(Job).where(Job.kind == "reminder"))
    assert [j.run_after.isoformat() for j in reminders] == ["2027-03-14T22:00:00+00:00"]
    # And the owner hears of the booking once the call's summary is in.
    await wait_until(lambda: any("New booking: Haircut, Mon 15 Mar at 10:00" in (m["Subject"] or "")
                                 for m in w.smtp.to(OWNER_EMAIL)), timeout=20)


async def test_a_mail_server_outage_then_back_delivers_each_email_exactly_once(w: World) -> None:
    w.smtp.stop()
    callers = ["+15553330001", "+15553330002"]
    for caller in callers:
        script_message_call(w.openai, name=f"Caller {caller[-1]}")
        await leave_message(w, w.server.url, caller)

    async def tried_twice() -> bool:
        rows = await one(w.env, select(Notification).where(Notification.channel == "email",
                                                           Notification.recipient == OWNER_EMAIL,
                                                           Notification.status == "pending"))
        return len(rows) == 2 and all(n.attempts >= 2 and "could not reach" in (n.last_error or "") for n in rows)

    await wait_until(tried_twice, timeout=30)
    w.smtp.start()
    await wait_until(lambda: len(w.smtp.messages) == 2, timeout=40)
    await asyncio.sleep(3)  # nothing more arrives
    subjects = sorted(m["Subject"] for m in w.smtp.messages)
    assert subjects == [f"[Sam's Salon] Caller {c[-1]} ({c}) left a message" for c in callers]
    assert len({m["Message-ID"] for m in w.smtp.messages}) == 2


def kill_tree(pid: int) -> None:
    """SIGKILL granian's main process and its workers (killing the main alone leaves a worker running on)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    for target in [pid, *workers]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


async def test_the_service_killed_between_the_event_and_the_send_sends_after_restart_once(
    w: World, tmp_path: Path
) -> None:
    with SmtpServer(port=free_port()) as smtp:
        smtp.stop()  # the mail server is down when the call ends
        env = inbox_env(tmp_path / "data", w.openai, w.twilio, smtp)
        (tmp_path / "data").mkdir()
        first = run_server(env)
        server = await asyncio.to_thread(first.__enter__)
        try:
            await seed(server.env)
            script_message_call(w.openai, name="Dee Park")
            call_sid = await leave_message(w, server.url, "+15553338888")
            call = await wait_until(lambda: call_for(server.env, call_sid))

            async def tried() -> bool:
                rows = await one(server.env, select(Notification).where(Notification.call_id == call.id,
                                                                        Notification.channel == "email"))
                return bool(rows) and rows[0].attempts >= 1 and rows[0].status == "pending"

            await wait_until(tried, timeout=20)
            kill_tree(server.process.pid)  # no shutdown hook, no goodbye: the service is simply gone
            server.process.wait(10)
        finally:
            await asyncio.to_thread(first.__exit__, None, None, None)
        smtp.start()
        with run_server({k: v for k, v in env.items()}) as again:
            # Killed between two attempts, the send is due within seconds; killed during one (the job still
            # claimed), within the send's lease (app.inbox.sender.SEND_LEASE, 45 s after that claim).
            await wait_until(lambda: smtp.messages, timeout=60)
            await asyncio.sleep(3)
            assert len(smtp.messages) == 1 and "Dee Park" in smtp.messages[0]["Subject"]
            rows = await one(again.env, select(Notification).where(Notification.call_id == call.id,
                                                                   Notification.channel == "email"))
            assert rows[0].status == "sent"
            assert "Traceback" not in again.log()


# -- issue 16: written in the reader's language -----------------------------------------------------------
CASA = "+15550002000"
CASA_EMAIL = "lupita@casa.example"


async def seed_spanish_business(env: dict[str, str], caller: str) -> UUID:
    """A business whose primary language is Mexican Spanish (French offered too), and a customer who spoke
    French on their last call."""
    db = Database(load_settings(env))
    try:
        _owner, business = await create_owner(
            db, name="Casa Lupita", phone_number=CASA, email=CASA_EMAIL, timezone="America/Mexico_City",
            languages=["es-MX", "fr-FR"], services=[{"name": "Corte", "minutes": 30, "price": 25.0}],
            greeting="Gracias por llamar a Casa Lupita.")
        async with db.session() as s, s.begin():
            s.add(NotificationSettings(business_id=business.id, **{**DEFAULTS, "confirmations_enabled": True}))
            s.add(Customer(business_id=business.id, name="Lupe Ortiz", phone=caller, language="fr-FR"))
        return business.id
    finally:
        await db.dispose()


async def test_the_owner_reads_the_booking_in_spanish_and_the_french_customer_is_confirmed_in_french(
    w: World,
) -> None:
    caller = "+15553335555"
    await seed_spanish_business(w.env, caller)
    w.twilio.sms_numbers = {SALON, CASA}
    mexico = ZoneInfo("America/Mexico_City")
    day = date.today() + timedelta(days=7)
    while day.weekday() > 4:  # a weekday, inside the business's hours
        day += timedelta(days=1)
    starts = datetime(day.year, day.month, day.day, 10, 0, tzinfo=mexico)
    w.openai.realtime.say("Gracias por llamar a Casa Lupita.")
    w.openai.realtime.caller("Bonjour, je voudrais une coupe, s'il vous plaît.")
    w.openai.realtime.tool("set_language", {"language": "fr"})  # she speaks French again: the call switches
    w.openai.realtime.tool("getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "une coupe"},
                           say_first="Un instant.")
    w.openai.realtime.say_from_tool_output()
    w.openai.responses.for_model("gpt-4.1").function_call(
        "book_appointment", {"service": "Corte", "start": f"{day.isoformat()}T10:00", "customer_name": "Lupe Ortiz"}
    ).text("C'est réservé.")
    w.openai.responses.for_model(load_settings(w.env).summary_model).text(
        "Resumen: Lupe Ortiz reservó un corte; habló en francés.")
    call, stream, _log = await greeted_call(w, w.voice_url, CASA, caller)
    await stream.speak(caller_audio("book"))

    # The customer's confirmation, while they are on the line: French (the language she speaks), the date and
    # time worded by Babel on Mexico City's clock, and the opt-out keyword Twilio knows.
    await wait_until(lambda: w.twilio.texts_to(caller), timeout=15)
    [confirmation] = w.twilio.texts_to(caller)
    when = short_datetime(starts, "fr-FR", mexico)
    assert confirmation["from"] == CASA
    assert confirmation["body"] == (f"Casa Lupita : votre rendez-vous (Corte) est réservé pour le {when}. Pour le "
                                    f"modifier ou l'annuler, appelez le {CASA}. Répondez STOP pour ne plus recevoir "
                                    "de messages.")
    await stream.hang_up()
    await wait_until(lambda: call_for(w.env, call.sid))

    # The owner's email, once the call's summary is in: subject and body in Spanish, the time in es-MX.
    await wait_until(lambda: w.smtp.to(CASA_EMAIL), timeout=20)
    [email] = w.smtp.to(CASA_EMAIL)
    body = body_of(email)
    es_when = short_datetime(starts, "es-MX", mexico)
    assert email["Subject"] == f"[Casa Lupita] Nueva reserva: Corte, {es_when}, para Lupe Ortiz ({caller})"
    assert body.splitlines()[1] == "Resumen: Lupe Ortiz reservó un corte; habló en francés."
    assert "Qué hacer: Nada: ya está en sus citas." in body and f"Llamada de: Lupe Ortiz ({caller})" in body
    assert "Idioma: francés (Francia)" in body  # the language to call her back in, named in Spanish
    names = ("Casa Lupita", "Lupe Ortiz", "Corte")
    assert not english_words_in(email["Subject"] + "\n" + body, "es", names), body
    # the summary was asked for in the owner's language
    summary_requests = [r for r in w.openai.response_requests if "summar" in str(r.get("instructions", "")).lower()]
    assert summary_requests and "Write it in Spanish" in str(summary_requests[-1]["instructions"])
