"""Closures, buffers, booking rules and resources, through the service layer and the receptionist's tools:
DST and midnight edges, per-resource availability, "with Maria", and concurrent bookings across resources
on every database engine."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.hours import Interval, local_day, opening_intervals, zone
from app.db.services import BusinessScope, OutsideHours, ServiceError, SlotTaken
from app.tools import ToolContext, run_tool
from tests.support.data import WEEKDAY_HOURS, create_owner

NY = zone("America/New_York")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # Monday 07:00 in New York


def at(day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY, fold=fold)


def hhmm(slots: list[datetime]) -> list[str]:
    return [s.strftime("%H:%M") for s in slots]


def ctx_for(db: Database, business: Any, now: datetime = NOW, caller_phone: str | None = None) -> ToolContext:
    return ToolContext(scope=BusinessScope(db.session_maker, business.id), business=business,
                       caller_phone=caller_phone, now=lambda: now)


# -- closures and changed hours (pure) ---------------------------------------------------------------------
def test_changed_hours_on_the_spring_forward_day_count_real_minutes() -> None:
    day = date(2026, 3, 8)  # 02:00 -> 03:00 in New York
    opening = opening_intervals({}, NY, day, day, {day: [["01:00", "05:00"]]})
    assert opening == [Interval(at(day, 1).astimezone(UTC), at(day, 5).astimezone(UTC))]
    assert opening[0].end - opening[0].start == timedelta(hours=3)


def test_a_closed_day_clips_the_overnight_range_from_the_evening_before() -> None:
    fri, sat = date(2026, 3, 6), date(2026, 3, 7)
    hours = {"fri": [["20:00", "02:00"]], "sat": [["20:00", "02:00"]]}
    open_sat = opening_intervals(hours, NY, sat, sat)
    assert Interval(at(fri, 20).astimezone(UTC), at(sat, 2).astimezone(UTC)) in open_sat
    closed_sat = opening_intervals(hours, NY, sat, sat, {sat: []})
    # Friday's evening still opens, but stops at Saturday's midnight; Saturday's own evening is gone.
    assert closed_sat == [Interval(at(fri, 20).astimezone(UTC), at(sat, 0).astimezone(UTC))]


def test_a_closed_fall_back_day_is_25_hours_long() -> None:
    day = date(2026, 11, 1)
    whole = local_day(day, NY)
    assert whole.end - whole.start == timedelta(hours=25)
    assert opening_intervals({"sun": [["00:00", "24:00"]]}, NY, day, day, {day: []}) == []


# -- closures through the receptionist --------------------------------------------------------------------
async def test_closures_are_known_to_the_receptionist(db: Database) -> None:
    _u, business = await create_owner(db)
    scope = CalendarScope(db.session_maker, business.id)
    christmas_eve = date(2026, 12, 24)
    await scope.add_closure(christmas_eve, [], note="Christmas Eve")
    await scope.add_closure(date(2026, 12, 23), [["09:00", "12:00"]], note="half day")
    ctx = ctx_for(db, business, now=datetime(2026, 12, 1, 15, tzinfo=UTC))
    info = await run_tool(ctx, "get_business_info", {})
    assert "closed on Thursday 24 December 2026 (Christmas Eve)" in info["closures_and_changed_hours"]
    assert "open 09:00-12:00 on Wednesday 23 December 2026 (half day)" in info["closures_and_changed_hours"]
    result = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-12-24"})
    assert result["free_starts"] == [] and result["closures"] == ["closed on Thursday 24 December 2026 (Christmas Eve)"]
    half = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-12-23"})
    assert half["free_starts"][-1].startswith("2026-12-23T11:30")
    refused = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": "2026-12-24T10:00",
                                                       "customer_name": "Al", "customer_phone": "+15550001234"})
    assert refused["error"]["code"] == "outside_hours" and "Christmas Eve" in refused["error"]["message"]


# -- buffers ----------------------------------------------------------------------------------------------
async def test_buffers_keep_padding_around_bookings(db: Database) -> None:
    _u, business = await create_owner(db)
    scope = CalendarScope(db.session_maker, business.id)
    await scope.save_rules(before=10, after=15, min_notice=0, max_days_ahead=90, service_buffers={})
    wed = date(2026, 3, 4)
    customer = await scope.save_customer("+15550000001", name="A")
    await scope.book(customer.id, "Haircut", at(wed, 10), now=NOW)
    _s, slots = await scope.availability("Haircut", wed, now=NOW)
    starts = hhmm(slots)
    # The 09:00 opening: padding before may start at opening. Nothing may touch 09:50-10:45.
    assert starts[:3] == ["09:00", "09:15", "10:45"]
    with pytest.raises(SlotTaken):
        await scope.book(customer.id, "Haircut", at(wed, 10, 30), now=NOW)
    await scope.book(customer.id, "Haircut", at(wed, 10, 45), now=NOW)
    # A per-service override: Colour has no padding before but 30 after.
    await scope.save_rules(before=10, after=15, min_notice=0, max_days_ahead=90, service_buffers={"Colour": [0, 30]})
    colour = await scope.book(customer.id, "Colour", at(wed, 13), now=NOW)
    assert colour.busy_until == at(wed, 15).astimezone(UTC) and colour.busy_from == at(wed, 13).astimezone(UTC)


async def test_buffers_across_midnight_and_the_fall_back_hour(db: Database) -> None:
    night = {"sat": [["22:00", "03:00"]]}
    _u, business = await create_owner(db, weekly_hours=night)
    scope = CalendarScope(db.session_maker, business.id)
    await scope.save_rules(before=0, after=30, min_notice=0, max_days_ahead=400, service_buffers={})
    sat, sun = date(2026, 10, 31), date(2026, 11, 1)  # New York falls back at 02:00 on Sunday
    customer = await scope.save_customer("+15550000002", name="Night owl")
    # 23:45 Saturday: the 30 minutes run across midnight, and its padding to 00:45 Sunday.
    late = await scope.book(customer.id, "Haircut", at(sat, 23, 45), now=NOW)
    assert late.busy_until == at(sun, 0, 45).astimezone(UTC)
    _s, slots = await scope.availability("Haircut", sat, sun, now=NOW)
    real = [s.astimezone(UTC) for s in slots]
    # A start needs its own 30 minutes and 30 of padding clear of 23:45: 22:45 is the last before it.
    assert at(sat, 22, 45).astimezone(UTC) in real and at(sat, 23).astimezone(UTC) not in real
    assert at(sun, 0, 15).astimezone(UTC) not in real and at(sun, 0, 45).astimezone(UTC) in real
    # 01:00-03:00 local on the fall-back night is three real hours: both 01:30s are offered.
    first_130, second_130 = at(sun, 1, 30).astimezone(UTC), at(sun, 1, 30, fold=1).astimezone(UTC)
    assert second_130 - first_130 == timedelta(hours=1)
    assert first_130 in real and second_130 in real
    # The last start leaves 30 minutes before 03:00 standard time; padding may run past closing.
    assert max(real) == at(sun, 2, 30).astimezone(UTC)


# -- notice and horizon -----------------------------------------------------------------------------------
async def test_minimum_notice_and_horizon(db: Database) -> None:
    _u, business = await create_owner(db)
    scope = CalendarScope(db.session_maker, business.id)
    await scope.save_rules(before=0, after=0, min_notice=24 * 60, max_days_ahead=7, service_buffers={})
    ctx = ctx_for(db, business)
    tomorrow = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-03-03"})
    # Now is Monday 07:00 local: 24 hours' notice means Tuesday from 07:00, i.e. its 09:00 opening... but
    # Monday's own slots are all gone.
    assert tomorrow["free_starts"][0].startswith("2026-03-03T09:00")
    today = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-03-02"})
    assert today["free_starts"] == [] and today["earliest_bookable"].startswith("2026-03-03T07:00")
    far = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-03-12"})
    # Seven days on is 08:00 local: DST began in between.
    assert far["free_starts"] == [] and far["latest_bookable"].startswith("2026-03-09T08:00")
    refused = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": "2026-03-02T15:00",
                                                       "customer_name": "Al", "customer_phone": "+15550001234"})
    assert "notice" in refused["error"]["message"]
    customer = await scope.save_customer("+15550001234", name="Al")
    # The owner may book inside the notice period.
    await scope.book(customer.id, "Haircut", at(date(2026, 3, 2), 15), now=NOW, actor="owner")


# -- resources --------------------------------------------------------------------------------------------
async def staffed(db: Database) -> tuple[Any, CalendarScope]:
    _u, business = await create_owner(db)
    scope = CalendarScope(db.session_maker, business.id)
    await scope.save_resource(None, name="Maria Lopez", kind="person", services=["Haircut", "Colour"],
                              weekly_hours={"mon": [["12:00", "17:00"]], "wed": [["09:00", "13:00"]]}, position=0)
    await scope.save_resource(None, name="Lee", kind="person", services=["Haircut"], weekly_hours=None, position=1)
    return business, scope


async def test_the_caller_asks_for_a_named_staff_member(db: Database) -> None:
    business, scope = await staffed(db)
    ctx = ctx_for(db, business, caller_phone="+15557654321")
    info = await run_tool(ctx, "get_business_info", {})
    assert [s["name"] for s in info["staff"]] == ["Maria Lopez", "Lee"]
    wed = "2026-03-04"
    both = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": wed})
    assert both["staff_free"][f"{wed}T09:00-05:00"] == ["Maria Lopez", "Lee"]
    maria = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": wed, "staff": "Maria"})
    assert maria["free_starts"][-1] == f"{wed}T12:30-05:00"  # her Wednesday ends at 13:00
    booked = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": f"{wed}T10:00",
                                                      "customer_name": "Pat", "staff": "maria"})
    assert booked["appointment"]["with"] == "Maria Lopez"
    again = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": f"{wed}T10:00",
                                                     "customer_name": "Pat", "staff": "Maria"})
    assert again["error"]["code"] == "slot_taken" and "Maria Lopez" in again["error"]["message"]
    # Without a name the first free one takes it: Lee.
    first_free = await run_tool(ctx, "book_appointment", {"service": "Haircut", "start": f"{wed}T10:00",
                                                          "customer_name": "Pat"})
    assert first_free["appointment"]["with"] == "Lee"
    nobody = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": wed, "staff": "Bob"})
    assert nobody["error"]["code"] == "invalid" and "Maria Lopez, Lee" in nobody["error"]["message"]
    wrong = await run_tool(ctx, "check_availability", {"service": "Colour", "date": wed, "staff": "Lee"})
    assert "Lee does not do Colour" in wrong["error"]["message"]
    # A resource's own closure: Maria is off on Monday 9 March; Lee is not.
    maria_id = next(r.id for r in await scope.resources() if r.name.startswith("Maria"))
    await scope.add_closure(date(2026, 3, 9), [], note="holiday", resource_id=maria_id)
    off = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-03-09", "staff": "Maria"})
    assert off["free_starts"] == []
    lee = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-03-09"})
    assert lee["free_starts"] and {n for names in lee["staff_free"].values() for n in names} == {"Lee"}


async def test_twenty_concurrent_bookings_across_two_resources(any_db: Database) -> None:
    _u, business = await create_owner(any_db, weekly_hours=WEEKDAY_HOURS)
    scope = CalendarScope(any_db.session_maker, business.id)
    for i, name in enumerate(("Maria", "Lee")):
        await scope.save_resource(None, name=name, kind="person", services=[], weekly_hours=None, position=i)
    customers = [await scope.save_customer(f"+1555100{i:04d}", name=f"Caller {i}") for i in range(20)]
    wed = date(2026, 3, 4)

    async def attempt(i: int, customer_id: Any) -> str:
        # Half name someone, half take whoever is free.
        staff = ("Maria", "Lee", None, None)[i % 4]
        try:
            appointment = await scope.book(customer_id, "Haircut", at(wed, 10), now=NOW, resource=staff)
            return appointment.lane
        except SlotTaken:
            return "taken"

    outcomes = await asyncio.gather(*(attempt(i, c.id) for i, c in enumerate(customers)))
    lanes = {str(r.id) for r in await scope.resources()}
    assert sorted(o for o in outcomes if o != "taken") == sorted(lanes)
    assert outcomes.count("taken") == 18
    with pytest.raises(SlotTaken):
        await scope.book(customers[0].id, "Haircut", at(wed, 10, 15), now=NOW)
    with pytest.raises(OutsideHours):
        await scope.book(customers[0].id, "Haircut", at(wed, 16, 45), now=NOW)
    with pytest.raises(ServiceError):
        await scope.book(customers[0].id, "Haircut", at(wed, 11), now=NOW, resource="Nobody")
