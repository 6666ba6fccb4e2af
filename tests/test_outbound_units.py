"""The sharp parts of outbound calling (issue 16), without a server: calling hours on the customer's clock
(time zones from the number, several zones, DST changes), the opt-out and number checks before a call is
placed, and the per-business cap held by the database across two workers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Customer, Job, OutboundCall, OutboundSettings
from app.jobs import job_id_for
from app.outbound.dialer import Dialer
from app.outbound.hours import customer_zones, next_calling_time, within_calling_hours, zones_for_number
from app.outbound.lines import lines_for
from app.outbound.store import DIAL_JOB, claim_slot, dial_key, schedule_dial
from app.settings import Settings
from app.telephony.rest import TwilioCalls
from tests.doubles.twilio_double import TwilioDouble
from tests.support.data import create_owner

NY, LA, LONDON = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles"), ZoneInfo("Europe/London")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- calling hours --------------------------------------------------------------------------------------------
def test_the_customers_number_decides_their_clock() -> None:
    assert zones_for_number("+12125550123") == ("America/New_York",)
    assert zones_for_number("+13105551234") == ("America/Los_Angeles",)
    assert zones_for_number("+442079460958") == ("Europe/London",)
    assert zones_for_number("+15550001000") == ()  # no zone data: the business's clock
    assert customer_zones("+15550001000", "Europe/Paris") == (ZoneInfo("Europe/Paris"),)
    assert customer_zones("+13105551234", "America/New_York") == (LA,)


def test_calling_hours_are_the_customers_local_time_across_time_zones() -> None:
    # 13:30 UTC on a winter Tuesday: 08:30 in New York, 05:30 in Los Angeles, 13:30 in London.
    now = utc(2026, 1, 13, 13, 30)
    assert next_calling_time(now, [NY], "09:00", "19:00") == utc(2026, 1, 13, 14, 0)
    assert next_calling_time(now, [LA], "09:00", "19:00") == utc(2026, 1, 13, 17, 0)
    assert next_calling_time(now, [LONDON], "09:00", "19:00") == now
    assert within_calling_hours(now, [LONDON], "09:00", "19:00")
    assert not within_calling_hours(now, [NY], "09:00", "19:00")
    # After the evening's end: tomorrow morning, local.
    assert next_calling_time(utc(2026, 1, 14, 0, 30), [NY], "09:00", "19:00") == utc(2026, 1, 14, 14, 0)
    # A number spanning two zones is called only when the hours hold in both: 09:00 in Los Angeles.
    assert next_calling_time(now, [NY, LA], "09:00", "19:00") == utc(2026, 1, 13, 17, 0)
    # …and not after 19:00 in New York (16:00 in Los Angeles): the shared window ends at 00:00 UTC.
    assert next_calling_time(utc(2026, 1, 14, 0, 5), [NY, LA], "09:00", "19:00") == utc(2026, 1, 14, 17, 0)


def test_calling_hours_keep_the_wall_clock_across_dst_changes() -> None:
    # New York springs forward on Sunday 8 March 2026: 09:00 is 14:00 UTC the day before, 13:00 UTC that day.
    assert next_calling_time(utc(2026, 3, 7, 12, 0), [NY], "09:00", "19:00") == utc(2026, 3, 7, 14, 0)
    assert next_calling_time(utc(2026, 3, 8, 12, 0), [NY], "09:00", "19:00") == utc(2026, 3, 8, 13, 0)
    # The evening ends at 19:00 local, daylight time: 23:00 UTC, so 23:30 UTC waits for Monday 09:00 EDT.
    assert next_calling_time(utc(2026, 3, 8, 23, 30), [NY], "09:00", "19:00") == utc(2026, 3, 9, 13, 0)
    # A start inside the skipped hour (02:30 does not exist that night) falls an hour later, 03:30 EDT, as the
    # inbox's reminders do.
    assert next_calling_time(utc(2026, 3, 8, 5, 0), [NY], "02:30", "05:00") == utc(2026, 3, 8, 7, 30)
    # London falls back on 25 October 2026: 09:00 is 08:00 UTC on the Saturday, 09:00 UTC on the Sunday.
    assert next_calling_time(utc(2026, 10, 24, 7, 0), [LONDON], "09:00", "19:00") == utc(2026, 10, 24, 8, 0)
    assert next_calling_time(utc(2026, 10, 25, 7, 0), [LONDON], "09:00", "19:00") == utc(2026, 10, 25, 9, 0)
    # While the US is on daylight time and London not yet (the weeks between), the gap is four hours, not five.
    assert next_calling_time(utc(2026, 3, 20, 12, 0), [NY, LONDON], "09:00", "19:00") == utc(2026, 3, 20, 13, 0)


def test_lines_fall_back_to_the_base_language_then_english() -> None:
    assert lines_for("en") == lines_for(None) == lines_for("xx-YY") == lines_for("en-US")
    assert "{business}" in lines_for("en").confirmation_voicemail
    spanish = lines_for("es")  # a base language: its offered locale, with that locale's Twilio voice
    assert spanish == lines_for("es-MX") and spanish.say_language.startswith("es-")
    assert spanish.confirmation_voicemail != lines_for("en").confirmation_voicemail
    assert "{business}" in spanish.confirmation_voicemail and "{number}" in spanish.confirmation_voicemail


# -- before a call is placed ----------------------------------------------------------------------------------
@pytest.fixture
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        yield double


async def _business_with(db: Database, *, cap: int = 2, phones: tuple[str, ...] = ("+12125550123",),
                         **customer: object) -> tuple[UUID, list[UUID]]:
    _owner, business = await create_owner(db, phone_number="+15550001000", timezone="America/New_York")
    ids = []
    async with db.session() as s, s.begin():
        s.add(OutboundSettings(business_id=business.id, calling_start="00:00", calling_end="23:59",
                               max_concurrent=cap))
        for phone in phones:
            c = Customer(business_id=business.id, phone=phone, name="Jane", **customer)
            s.add(c)
            await s.flush()
            ids.append(c.id)
    return business.id, ids


async def _callback(db: Database, business_id: UUID, customer_id: UUID, phone: str, *, at: datetime) -> UUID:
    async with db.session() as s, s.begin():
        row = OutboundCall(business_id=business_id, kind="callback", to_phone=phone, customer_id=customer_id,
                           purpose="your order", scheduled_for=at)
        s.add(row)
        await s.flush()
        await schedule_dial(s, row.id, at)
        return row.id


async def _run_dial(dialer: Dialer, db: Database, row_id: UUID, at: datetime) -> None:
    async with db.session() as s:
        job = await s.get(Job, job_id_for(dial_key(row_id, at)))
    assert job is not None and job.kind == DIAL_JOB
    await dialer.dial(job)


def _dialer(db: Database, settings: Settings, twilio: TwilioDouble, now: datetime) -> Dialer:
    return Dialer(db, settings, TwilioCalls(twilio.account_sid, twilio.auth_token, twilio.api_base_url),
                  clock=lambda: now)


async def test_an_opted_out_customer_is_never_called(db: Database, settings: Settings, twilio: TwilioDouble) -> None:
    now = datetime.now(UTC)
    business_id, [customer_id] = await _business_with(db, calls_opted_out_at=now - timedelta(days=1))
    row_id = await _callback(db, business_id, customer_id, "+12125550123", at=now)
    await _run_dial(_dialer(db, settings, twilio, now), db, row_id, now)
    async with db.session() as s:
        row = await s.get(OutboundCall, row_id)
    assert row is not None and (row.status, row.outcome) == ("failed", "opted_out") and row.attempts == 0
    assert twilio.created_calls == []


async def test_only_the_customers_own_number_on_an_ordinary_line_is_dialled(db: Database, settings: Settings,
                                                                           twilio: TwilioDouble) -> None:
    now = datetime.now(UTC)
    business_id, [customer_id] = await _business_with(db)
    # A row naming another number than the customer's (e.g. edited by hand) is refused, as is a premium line.
    other = await _callback(db, business_id, customer_id, "+13105551234", at=now)
    dialer = _dialer(db, settings, twilio, now)
    await _run_dial(dialer, db, other, now)
    async with db.session() as s, s.begin():
        premium = Customer(business_id=business_id, phone="+19005550100", name="Premium")
        s.add(premium)
        await s.flush()
        premium_id = premium.id
    premium_row = await _callback(db, business_id, premium_id, "+19005550100", at=now)
    await _run_dial(dialer, db, premium_row, now)
    async with db.session() as s:
        rows = {r.id: r for r in await s.scalars(select(OutboundCall))}
    assert (rows[other].status, rows[other].outcome) == ("failed", "refused")
    assert (rows[premium_row].status, rows[premium_row].outcome) == ("failed", "refused")
    assert "premium" in (rows[premium_row].last_error or "")
    assert twilio.created_calls == []


async def test_outside_calling_hours_the_call_waits_for_the_customers_morning(
        db: Database, settings: Settings, twilio: TwilioDouble) -> None:
    business_id, [customer_id] = await _business_with(db, phones=("+13105551234",))
    async with db.session() as s, s.begin():
        prefs = await s.scalar(select(OutboundSettings).where(OutboundSettings.business_id == business_id))
        assert prefs is not None
        prefs.calling_start, prefs.calling_end = "09:00", "19:00"
    now = utc(2026, 1, 13, 14, 0)  # 09:00 in New York (the business), 06:00 in Los Angeles (the customer)
    row_id = await _callback(db, business_id, customer_id, "+13105551234", at=now)
    await _run_dial(_dialer(db, settings, twilio, now), db, row_id, now)
    async with db.session() as s:
        row = await s.get(OutboundCall, row_id)
        later = await s.get(Job, job_id_for(dial_key(row_id, utc(2026, 1, 13, 17, 0))))
    assert row is not None and row.status == "scheduled" and row.scheduled_for == utc(2026, 1, 13, 17, 0)
    assert later is not None and later.run_after == utc(2026, 1, 13, 17, 0)
    assert twilio.created_calls == []


# -- the cap --------------------------------------------------------------------------------------------------
async def test_the_cap_on_calls_at_once_holds_across_two_workers(db: Database, settings: Settings) -> None:
    phones = tuple(f"+1212555{n:04d}" for n in range(200, 210))
    business_id, customer_ids = await _business_with(db, cap=3, phones=phones)
    now = datetime.now(UTC)
    row_ids = [await _callback(db, business_id, c, p, at=now) for c, p in zip(customer_ids, phones, strict=True)]
    other_worker = Database(settings)  # a second process's engine on the same database file
    try:
        async with db.session() as s:
            rows = list(await s.scalars(select(OutboundCall).where(OutboundCall.id.in_(row_ids))))
        results = await asyncio.gather(*(claim_slot(db if i % 2 else other_worker, row, cap=3, now=now)
                                         for i, row in enumerate(rows)))
    finally:
        await other_worker.dispose()
    assert sum(results) == 3
    async with db.session() as s:
        dialing = list(await s.scalars(select(OutboundCall).where(OutboundCall.status == "dialing")))
    assert len(dialing) == 3 and all(r.attempts == 1 for r in dialing)
    # A slot whose status callback never came is given back after a while; another business has its own cap.
    async with db.session() as s, s.begin():
        stale = await s.get(OutboundCall, dialing[0].id)
        assert stale is not None
        stale.dialing_since = now - timedelta(hours=2)
    waiting = [r for r in rows if r.id not in {d.id for d in dialing}]
    assert await claim_slot(db, waiting[0], cap=3, now=now) is True
    assert await claim_slot(db, waiting[1], cap=3, now=now) is False


async def test_dial_jobs_over_the_cap_wait_and_place_no_call(db: Database, settings: Settings,
                                                             twilio: TwilioDouble) -> None:
    twilio.outbound_default = "busy"
    twilio.ring_seconds = 5.0  # the first calls stay on the line while the others are tried
    phones = ("+12125550301", "+12125550302", "+12125550303")
    business_id, customer_ids = await _business_with(db, cap=1, phones=phones)
    now = datetime.now(UTC)
    row_ids = [await _callback(db, business_id, c, p, at=now) for c, p in zip(customer_ids, phones, strict=True)]
    dialer = _dialer(db, settings, twilio, now)
    for row_id in row_ids:
        await _run_dial(dialer, db, row_id, now)
    assert len(twilio.created_calls) == 1
    async with db.session() as s:
        rows = {r.id: r for r in await s.scalars(select(OutboundCall))}
    assert rows[row_ids[0]].status == "dialing" and rows[row_ids[0]].call_sid is not None
    for waiting in row_ids[1:]:
        assert rows[waiting].status == "scheduled" and rows[waiting].scheduled_for == now + timedelta(seconds=30)


# -- the confirm tool: identity-bound like cancelling -----------------------------------------------------------
async def test_confirm_appointment_acts_only_for_the_vouched_number(db: Database) -> None:
    from app.db.models import Appointment
    from app.db.services import BusinessScope
    from app.tools import ToolContext, run_tool

    _owner, business = await create_owner(db, phone_number="+15550001000")
    scope = BusinessScope(db.session_maker, business.id)
    jane = await scope.save_customer("+12125550123", name="Jane")
    starts = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=7)
    while starts.weekday() > 4:
        starts += timedelta(days=1)
    appointment = await scope.book(jane.id, "Haircut", starts)

    def ctx(phone: str | None) -> ToolContext:
        return ToolContext(scope=scope, business=business, caller_phone=phone)

    args = {"appointment_id": str(appointment.id)}
    assert (await run_tool(ctx(None), "confirm_appointment", args))["error"]["code"] == "caller_not_verified"
    assert "error" in await run_tool(ctx("+13105551234"), "confirm_appointment", args)
    assert await run_tool(ctx("+12125550123"), "confirm_appointment", args) == {
        "confirmed": True, "appointment_id": str(appointment.id)}
    async with db.session() as s:
        row = await s.get(Appointment, appointment.id)
    assert row is not None and row.confirmation == "confirmed" and row.confirmation_at is not None
