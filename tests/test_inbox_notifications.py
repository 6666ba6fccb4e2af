"""The inbox's notifications through their real clients: a real SMTP server (aiosmtpd) on 127.0.0.1 and the
Twilio double's Messages API, driven by the same job queue the service runs (`JobQueue.run_one`), with the
reminder and digest rules on a virtual clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from app.db.engine import Database
from app.db.models import (
    Appointment,
    Business,
    Call,
    Customer,
    Job,
    JobStatus,
    Message,
    Notification,
    NotificationSettings,
    User,
)
from app.db.services import BusinessScope, NewCustomer, OutsideHours
from app.inbox.outbox import DEFAULTS, REMINDER_JOB
from app.inbox.outcomes import settle_call
from app.inbox.sender import Notifier
from app.jobs import JobQueue, enqueue, job_id_for
from app.settings import Settings
from app.tools import ToolContext
from app.tools.registry import run_tool
from tests.conftest import make_settings, migrated_database
from tests.doubles.smtp_server import SmtpServer, body_of
from tests.doubles.twilio_double import TwilioDouble
from tests.support.dashboard import seed_call
from tests.support.data import create_owner

SALON = "+15550001000"
OWNER_MOBILE = "+15559990000"
CALLER = "+15553334444"
PUBLIC = "https://salon.example"
NY = ZoneInfo("America/New_York")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        double.sms_numbers = {SALON}
        yield double


@pytest.fixture
def inbox_settings(data_dir: Any, smtp: SmtpServer, twilio: TwilioDouble) -> Settings:
    return make_settings(
        data_dir, SMTP_URL=smtp.url, SMTP_FROM="receptionist@salon.example", PUBLIC_BASE_URL=PUBLIC,
        TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_API_BASE_URL=twilio.api_base_url,
    )


@pytest.fixture
async def idb(inbox_settings: Settings) -> AsyncIterator[Database]:
    async with migrated_database(inbox_settings) as database:
        yield database


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(idb: Database, inbox_settings: Settings, clock: Clock) -> JobQueue:
    jobs = JobQueue(idb)
    Notifier(idb, inbox_settings, clock=clock).register(jobs)
    return jobs


async def drain(jobs: JobQueue) -> int:
    ran = 0
    while await jobs.run_one():
        ran += 1
    return ran


async def salon(db: Database, **prefs: Any) -> tuple[User, Business]:
    user, business = await create_owner(db, phone_number=SALON, email="sam@salon.example")
    async with db.session() as s, s.begin():
        s.add(NotificationSettings(business_id=business.id, **{**DEFAULTS, **prefs}))
    return user, business


async def finish_with_message(db: Database, business: Business, *, summary: str | None = "Ann wants a refund.",
                              phone: str = CALLER, urgency: str = "normal") -> Call:
    """A phone call on which the receptionist took a message, ended (just now) as the recorder ends it."""
    _session, call = await seed_call(db, business.id, caller_phone=phone, summary=summary,
                                     started_at=datetime.now(UTC) - timedelta(seconds=95))
    await BusinessScope(db.session_maker, business.id).take_message(
        "Wants a refund for last week's colour.", caller_name="Ann Lee", caller_phone=phone, call_id=call.id,
        urgency=urgency, callback_requested=True)
    async with db.session() as s, s.begin():
        await settle_call(s, call.id)
    return call


async def notifications(db: Database, **where: Any) -> list[Notification]:
    async with db.session() as s:
        query = select(Notification).order_by(Notification.created_at, Notification.channel)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        return list(await s.scalars(query))


# -- owner notifications ------------------------------------------------------------------------------------
async def test_a_message_reaches_the_owner_by_email_and_text_once_with_the_link(
    idb: Database, queue: JobQueue, smtp: SmtpServer, twilio: TwilioDouble
) -> None:
    _user, business = await salon(idb, sms_enabled=True, sms_to=OWNER_MOBILE)
    call = await finish_with_message(idb, business)

    async with idb.session() as s:
        row = await s.get(Call, call.id)
        message = await s.scalar(select(Message).where(Message.call_id == call.id))
        customer = await s.scalar(select(Customer).where(Customer.phone == CALLER))
    assert row is not None and row.outcomes == ["callback_requested", "message_taken"] and row.needs_follow_up
    assert customer is not None and customer.name == "Ann Lee"
    assert message is not None and message.customer_id == customer.id == row.customer_id
    assert [(n.channel, n.recipient, n.status) for n in await notifications(idb)] == [
        ("email", "sam@salon.example", "pending"), ("sms", OWNER_MOBILE, "pending")]

    assert await drain(queue) == 2
    [email] = smtp.to("sam@salon.example")
    text = body_of(email)
    assert email["Subject"] == "[Sam's Salon] Ann Lee (+15553334444) left a message"
    assert text.splitlines()[:2] == ["Ann Lee (+15553334444) left a message", "Ann wants a refund."]
    assert "Caller: Ann Lee (+15553334444)" in text and "What to do: Call Ann Lee back on +15553334444." in text
    assert f"{PUBLIC}/calls/{call.id}" in text
    [sms] = twilio.texts_to(OWNER_MOBILE)
    assert sms["from"] == SALON and f"{PUBLIC}/calls/{call.id}" in sms["body"] and "Ann wants a refund." in sms["body"]
    sent = await notifications(idb)
    assert {n.status for n in sent} == {"sent"} and sent[1].provider_id == sms["sid"]
    assert sent[0].provider_id == email["Message-ID"]

    # The same ending seen again (a second finalisation path) notifies no one twice.
    async with idb.session() as s, s.begin():
        await settle_call(s, call.id)
    assert await drain(queue) == 0
    assert len(smtp.messages) == 1 and len(twilio.messages) == 1


async def test_the_owners_notification_waits_for_the_calls_summary(
    idb: Database, queue: JobQueue, smtp: SmtpServer
) -> None:
    _user, business = await salon(idb)
    call = await finish_with_message(idb, business, summary=None)
    async with idb.session() as s, s.begin():
        await enqueue(s, "summary", {"call_id": str(call.id)}, key=f"summary:{call.id}")
    await queue.run_one()  # the notify job: no summary yet and it is being written, so it waits
    assert smtp.messages == [] and (await notifications(idb))[0].status == "pending"
    async with idb.session() as s, s.begin():
        await s.execute(update(Call).where(Call.id == call.id).values(summary="Ann Lee wants her money back."))
        await s.execute(update(Job).where(Job.id == job_id_for(f"summary:{call.id}"))
                        .values(status=JobStatus.DONE.value))
    deadline = time.monotonic() + 10
    while not smtp.messages and time.monotonic() < deadline:
        await drain(queue)
    assert body_of(smtp.messages[0]).splitlines()[1] == "Ann Lee wants her money back."


async def test_an_smtp_outage_loses_nothing_and_each_email_goes_once(
    idb: Database, queue: JobQueue, smtp: SmtpServer
) -> None:
    _user, business = await salon(idb)
    smtp.stop()  # connections refused
    calls = [await finish_with_message(idb, business, phone=f"+1555333000{i}") for i in range(3)]
    assert await drain(queue) == 3  # each tried once and failed
    failed = await notifications(idb)
    assert all(n.status == "pending" and n.attempts == 1 and "could not reach the mail server" in (n.last_error or "")
               for n in failed)
    smtp.start()
    deadline = time.monotonic() + 20
    while len(smtp.messages) < 3 and time.monotonic() < deadline:
        await drain(queue)
    await drain(queue)
    ids = sorted(m["Message-ID"] for m in smtp.messages)
    assert len(ids) == 3 == len(set(ids))
    assert {str(c.id) for c in calls} == {body_of(m).split("/calls/")[1].split()[0] for m in smtp.messages}
    assert {n.status for n in await notifications(idb)} == {"sent"}


async def test_a_refusing_mail_server_fails_the_notification_with_its_reason(
    idb: Database, queue: JobQueue, smtp: SmtpServer
) -> None:
    _user, business = await salon(idb)
    smtp.reply = "554 5.7.1 rejected"
    call = await finish_with_message(idb, business)
    await drain(queue)
    [n] = await notifications(idb, call_id=call.id)
    assert n.status == "failed" and "refused the email (554)" in (n.last_error or "")


async def test_a_twilio_outage_is_retried_and_a_stop_reply_opts_the_caller_out_for_good(
    idb: Database, queue: JobQueue, twilio: TwilioDouble, clock: Clock
) -> None:
    _user, business = await salon(idb, email_enabled=False, sms_enabled=True, sms_to=OWNER_MOBILE,
                                  confirmations_enabled=True)
    twilio.message_failures = [503]
    await finish_with_message(idb, business)
    await drain(queue)
    [n] = await notifications(idb)
    assert n.status == "pending" and "Twilio is unavailable (503)" in (n.last_error or "")
    deadline = time.monotonic() + 10
    while not twilio.texts_to(OWNER_MOBILE) and time.monotonic() < deadline:
        await drain(queue)
    assert len(twilio.texts_to(OWNER_MOBILE)) == 1

    # The caller replied STOP to the salon: the confirmation of their booking is refused with 21610.
    twilio.opted_out.add(CALLER)
    _session, live = await seed_call(idb, business.id, caller_phone=CALLER, status="in_progress")
    scope = BusinessScope(idb.session_maker, business.id)
    start = _next_weekday_at(10)
    customer = await scope.customer_by_phone(CALLER)
    assert customer is not None
    await scope.book(customer.id, "Haircut", start, call_id=live.id)
    await drain(queue)
    [confirmation] = await notifications(idb, event="confirm_booked")
    assert confirmation.status == "skipped" and "replied STOP" in (confirmation.last_error or "")
    async with idb.session() as s:
        again = await s.get(Customer, customer.id)
    assert again is not None and again.sms_opted_out_at is not None
    # Never tried again: a reschedule queues no text to them at all.
    await scope.reschedule(_any(await scope.upcoming_for_phone(CALLER)).id, CALLER, start + timedelta(hours=2),
                           call_id=live.id)
    await drain(queue)
    assert await notifications(idb, event="confirm_rescheduled") == []
    assert len([r for r, _ in twilio.message_requests if r["To"] == CALLER]) == 1


def _any(rows: list[Appointment]) -> Appointment:
    assert rows
    return rows[0]


def _next_weekday_at(hour: int) -> datetime:
    day = datetime.now(NY).date() + timedelta(days=3)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=NY)


# -- callers: confirmations and reminders -------------------------------------------------------------------
async def claim(db: Database, job_id: UUID) -> Job:
    """What the worker does when a job is due (the virtual clock has reached it)."""
    async with db.session() as s, s.begin():
        await s.execute(update(Job).where(Job.id == job_id)
                        .values(status=JobStatus.RUNNING.value, attempts=Job.attempts + 1))
    async with db.session() as s:
        job = await s.get(Job, job_id)
    assert job is not None
    return job


async def test_a_phone_booking_across_a_dst_change_is_confirmed_and_reminded_once_at_the_chosen_time(
    idb: Database, inbox_settings: Settings, twilio: TwilioDouble
) -> None:
    _user, business = await salon(idb, email_enabled=False, confirmations_enabled=True, reminders_enabled=True,
                                  reminder_time="17:30")
    # Booked on Friday 12 March 2027 (EST, UTC-5) for Monday 15 March at 10:00 (EDT, UTC-4 since Sunday).
    booked_at = datetime(2027, 3, 12, 9, 0, tzinfo=NY)
    clock = Clock(booked_at.astimezone(UTC))
    jobs = JobQueue(idb)
    notifier = Notifier(idb, inbox_settings, clock=clock)
    notifier.register(jobs)
    _session, call = await seed_call(idb, business.id, caller_phone=CALLER, status="in_progress")
    ctx = ToolContext(scope=BusinessScope(idb.session_maker, business.id), business=business, call_id=call.id,
                      caller_phone=CALLER, now=clock)
    result = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": "2027-03-15T10:00",
                                                      "customer_name": "Ann Lee"})
    assert result.get("booked"), result
    await drain(jobs)
    [confirmation] = twilio.texts_to(CALLER)
    assert confirmation["from"] == SALON
    assert confirmation["body"] == ("Sam's Salon: your Haircut is booked for Mon 15 Mar at 10:00. To change or cancel "
                                    "it, call +15550001000. Reply STOP to opt out.")

    # The reminder: 17:30 local the day before (Sunday 14 March, EDT), whatever the UTC offset was at booking.
    async with idb.session() as s:
        [reminder_job] = list(await s.scalars(select(Job).where(Job.kind == REMINDER_JOB)))
    assert reminder_job.run_after == datetime(2027, 3, 14, 21, 30, tzinfo=UTC)
    clock.now = datetime(2027, 3, 14, 21, 29, tzinfo=UTC)
    # The owner moves the reminder to 18:00 meanwhile: the job waits for the new time.
    async with idb.session() as s, s.begin():
        await s.execute(update(NotificationSettings).values(reminder_time="18:00"))
    await notifier.remind(await claim(idb, reminder_job.id))
    async with idb.session() as s:
        waiting = await s.get(Job, reminder_job.id)
    assert waiting is not None and waiting.status == "pending"
    assert waiting.run_after == datetime(2027, 3, 14, 22, 0, tzinfo=UTC)
    assert len(twilio.texts_to(CALLER)) == 1
    clock.now = datetime(2027, 3, 14, 22, 0, tzinfo=UTC)
    await notifier.remind(await claim(idb, reminder_job.id))
    await drain(jobs)
    # Run again (a lease that ran out, a duplicate worker): still one reminder.
    await notifier.remind(await claim(idb, reminder_job.id))
    await drain(jobs)
    texts = twilio.texts_to(CALLER)
    assert len(texts) == 2
    assert texts[1]["body"] == ("Reminder from Sam's Salon: your Haircut is tomorrow, Mon 15 Mar at 10:00. To change "
                                "or cancel it, call +15550001000. Reply STOP to opt out.")


async def test_a_number_only_said_aloud_is_never_texted(idb: Database, queue: JobQueue, twilio: TwilioDouble) -> None:
    _user, business = await salon(idb, email_enabled=False, confirmations_enabled=True)
    _session, call = await seed_call(idb, business.id, caller_phone=None, status="in_progress")  # a browser call
    ctx = ToolContext(scope=BusinessScope(idb.session_maker, business.id), business=business, call_id=call.id)
    start = _next_weekday_at(11).replace(tzinfo=None).isoformat(timespec="minutes")
    result = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": start,
                                                      "customer_name": "Bo", "customer_phone": "+15553330000"})
    assert result.get("booked"), result
    await drain(queue)
    assert twilio.messages == [] and await notifications(idb, audience="caller") == []


# -- customers ----------------------------------------------------------------------------------------------
async def test_a_refused_booking_saves_no_customer(idb: Database) -> None:
    _user, business = await salon(idb)
    scope = BusinessScope(idb.session_maker, business.id)
    ctx = ToolContext(scope=scope, business=business, caller_phone=CALLER)
    saturday_evening = _next_weekday_at(10)
    while saturday_evening.weekday() != 5:
        saturday_evening += timedelta(days=1)
    result = await run_tool(ctx, "book_appointment", {
        "service": "Haircut", "start": saturday_evening.replace(hour=19, tzinfo=None).isoformat(timespec="minutes"),
        "customer_name": "Ann Lee"})
    assert result["error"]["code"] == "outside_hours"
    with pytest.raises(OutsideHours):
        await scope.book(NewCustomer(CALLER, "Ann Lee"), "Haircut", saturday_evening.replace(hour=19))
    async with idb.session() as s:
        assert await s.scalar(select(func.count(Customer.id))) == 0
    booked = await run_tool(ctx, "book_appointment", {
        "service": "Haircut", "start": _next_weekday_at(10).replace(tzinfo=None).isoformat(timespec="minutes"),
        "customer_name": "Ann Lee"})
    assert booked.get("booked"), booked
    customer = await scope.customer_by_phone(CALLER)
    assert customer is not None and customer.name == "Ann Lee"


async def test_the_daily_digest_goes_at_the_local_time_once_and_queues_the_next(
    idb: Database, inbox_settings: Settings, smtp: SmtpServer
) -> None:
    _user, business = await salon(idb, digest_enabled=True, digest_time="18:00", on_follow_up=False)
    clock = Clock(datetime(2027, 3, 13, 12, 0, tzinfo=UTC))  # Saturday, EST
    jobs = JobQueue(idb)
    notifier = Notifier(idb, inbox_settings, clock=clock)
    notifier.register(jobs)
    await notifier.schedule_all_digests()
    await notifier.schedule_all_digests()  # a second start-up queues nothing more
    async with idb.session() as s:
        [saturday] = list(await s.scalars(select(Job).where(Job.kind == "digest")))
    assert saturday.run_after == datetime(2027, 3, 13, 23, 0, tzinfo=UTC)  # 18:00 EST
    await finish_with_message(idb, business)
    clock.now = saturday.run_after
    await notifier.digest(await claim(idb, saturday.id))
    await drain(jobs)
    [email] = smtp.to("sam@salon.example")
    assert email["Subject"].startswith("[Sam's Salon] Your day: ")
    assert "1 unread message, 1 call to follow up" in body_of(email) and "Wants a refund" in body_of(email)
    async with idb.session() as s:
        digests = list(await s.scalars(select(Job).where(Job.kind == "digest").order_by(Job.run_after)))
    assert [j.run_after for j in digests] == [saturday.run_after, datetime(2027, 3, 14, 22, 0, tzinfo=UTC)]
    await notifier.digest(await claim(idb, saturday.id))  # run again: the same day is not sent twice
    await drain(jobs)
    assert len(smtp.to("sam@salon.example")) == 1
