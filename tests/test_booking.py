"""Booking, cancelling and rescheduling through the service layer, on every database engine."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from app.db.engine import Database
from app.db.hours import zone
from app.db.models import Appointment, AppointmentStatus
from app.db.services import BusinessScope, NotFound, NotYourAppointment, OutsideHours, ServiceError, SlotTaken
from tests.support.data import create_owner

NY = zone("America/New_York")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday
WED = date(2026, 6, 3)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


async def test_twenty_concurrent_bookings_of_one_slot_exactly_one_wins(any_db: Database) -> None:
    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    customers = [await scope.save_customer(f"+1555000{i:04d}", name=f"Caller {i}") for i in range(20)]

    async def attempt(customer_id: object) -> str:
        try:
            await scope.book(customer_id, "Haircut", at(WED, 10), now=NOW)  # type: ignore[arg-type]
            return "booked"
        except SlotTaken:
            return "taken"

    outcomes = await asyncio.gather(*(attempt(c.id) for c in customers))
    assert sorted(outcomes) == ["booked"] + ["taken"] * 19
    # Overlapping (not identical) starts are refused too, and the calendar holds exactly one booking.
    with pytest.raises(SlotTaken):
        await scope.book(customers[0].id, "Colour", at(WED, 9, 15), now=NOW)
    upcoming = await scope.list_appointments(upcoming=True, now=NOW)
    assert len(upcoming) == 1 and upcoming[0].starts_at == at(WED, 10).astimezone(UTC)


async def test_concurrent_overlapping_bookings_with_different_starts(any_db: Database) -> None:
    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    customer = await scope.save_customer("+15550001111")
    starts = [at(WED, 10, m) for m in (0, 15, 30, 45)] + [at(WED, 11, 0)]  # Colour is 90 min: all overlap

    async def attempt(start: datetime) -> bool:
        try:
            await scope.book(customer.id, "Colour", start, now=NOW)
            return True
        except SlotTaken:
            return False

    assert sum(await asyncio.gather(*(attempt(s) for s in starts))) == 1


async def test_concurrent_first_saves_of_one_customer_agree_on_one_row(any_db: Database) -> None:
    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    saved = await asyncio.gather(*(scope.save_customer("+15557770000", name=f"Jo {i}") for i in range(10)))
    assert len({c.id for c in saved}) == 1
    assert (await scope.customer_by_phone("+15557770000")) is not None


async def test_availability_excludes_booked_and_is_local(any_db: Database) -> None:
    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    customer = await scope.save_customer("(555) 222-3333", name="Jane")
    assert customer.phone == "+15552223333"
    service, before = await scope.availability("haircut", WED, now=NOW)
    assert service["name"] == "Haircut" and before[0] == at(WED, 9) and before[-1] == at(WED, 16, 30)
    await scope.book(customer.id, "Haircut", at(WED, 9), now=NOW)
    _, after = await scope.availability("Haircut", WED, now=NOW)
    assert at(WED, 9) not in after and at(WED, 9, 15) not in after and at(WED, 9, 30) in after
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(hours=-4) for s in after)


async def test_booking_rules(any_db: Database) -> None:
    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    customer = await scope.save_customer("+15553334444")
    with pytest.raises(OutsideHours):
        await scope.book(customer.id, "Haircut", at(WED, 16, 45), now=NOW)  # runs past 17:00
    with pytest.raises(OutsideHours):
        await scope.book(customer.id, "Haircut", at(date(2026, 6, 7), 10), now=NOW)  # Sunday: closed
    with pytest.raises(ServiceError, match="already passed"):
        await scope.book(customer.id, "Haircut", at(date(2026, 5, 27), 10), now=NOW)
    with pytest.raises(ServiceError, match="services offered: Haircut, Colour"):
        await scope.book(customer.id, "Massage", at(WED, 10), now=NOW)


async def test_cancel_and_reschedule_only_by_the_owner_of_the_appointment(any_db: Database) -> None:
    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    jane = await scope.save_customer("+15554445555", name="Jane")
    await scope.save_customer("+15556667777", name="Mallory")
    appt = await scope.book(jane.id, "Haircut", at(WED, 10), now=NOW)

    with pytest.raises(NotYourAppointment):
        await scope.cancel(appt.id, "+15556667777")
    with pytest.raises(NotYourAppointment):
        await scope.reschedule(appt.id, "+15556667777", at(WED, 14), now=NOW)
    assert (await scope.get_appointment(appt.id)).status == AppointmentStatus.BOOKED

    moved = await scope.reschedule(appt.id, "555-444-5555", at(WED, 14), now=NOW)
    assert moved.starts_at == at(WED, 14).astimezone(UTC)
    assert [a.id for a in await scope.upcoming_for_phone("+15554445555", now=NOW)] == [appt.id]
    # The old time is free again; the new one is taken.
    other = await scope.save_customer("+15558889999")
    await scope.book(other.id, "Haircut", at(WED, 10), now=NOW)
    with pytest.raises(SlotTaken):
        await scope.book(other.id, "Haircut", at(WED, 14), now=NOW)

    cancelled = await scope.cancel(appt.id, "+15554445555")
    assert cancelled.status == AppointmentStatus.CANCELLED
    with pytest.raises(ServiceError, match="already cancelled"):
        await scope.cancel(appt.id, "+15554445555")
    # A cancelled slot can be booked again (the unique index only covers live bookings).
    await scope.book(other.id, "Haircut", at(WED, 14), now=NOW)


async def test_every_read_and_write_is_scoped_to_one_business(any_db: Database) -> None:
    _, a = await create_owner(any_db, name="A")
    _, b = await create_owner(any_db, name="B")
    scope_a = BusinessScope(any_db.session_maker, a.id)
    scope_b = BusinessScope(any_db.session_maker, b.id)
    jane_a = await scope_a.save_customer("+15551230000", name="Jane at A")
    jane_b = await scope_b.save_customer("+15551230000", name="Jane at B")  # same phone, other business: fine
    assert jane_a.id != jane_b.id
    appt = await scope_a.book(jane_a.id, "Haircut", at(WED, 10), now=NOW)

    # B's calendar is unaffected by A's booking, and B can't see or touch A's rows.
    await scope_b.book(jane_b.id, "Haircut", at(WED, 10), now=NOW)
    for call in (
        scope_b.get_appointment(appt.id),
        scope_b.cancel(appt.id, "+15551230000"),
        scope_b.cancel_by_owner(appt.id),
        scope_b.reschedule(appt.id, "+15551230000", at(WED, 15), now=NOW),
        scope_b.get_customer(jane_a.id),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await scope_b.book(jane_a.id, "Haircut", at(WED, 11), now=NOW)  # A's customer, B's scope
    assert (await scope_a.get_appointment(appt.id)).status == AppointmentStatus.BOOKED
    assert [x.customer.name for x in await scope_b.upcoming_for_phone("+15551230000", now=NOW)] == ["Jane at B"]


async def test_database_refuses_two_live_bookings_at_one_start(any_db: Database) -> None:
    """The partial unique index is the last guard under the serialised overlap check."""
    from sqlalchemy.exc import IntegrityError

    _, business = await create_owner(any_db)
    scope = BusinessScope(any_db.session_maker, business.id)
    customer = await scope.save_customer("+15550009999")
    start = at(WED, 10).astimezone(UTC)
    with pytest.raises(IntegrityError):
        async with any_db.session() as s, s.begin():
            for _ in range(2):
                s.add(Appointment(business_id=business.id, customer_id=customer.id, service="Haircut",
                                  starts_at=start, ends_at=start + timedelta(minutes=30)))
                await s.flush()
