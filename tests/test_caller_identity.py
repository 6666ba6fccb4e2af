"""Caller identity in the business tools: records are read or changed only for the number the line vouches for;
a caller without caller-ID can book something new (marked unverified) and leave a message, and what any tool
returns about a person is their name and their own appointments, never notes, email or anyone else's data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Appointment, Business, Customer, Message
from app.db.services import BusinessScope
from app.settings import Settings
from app.tools import ToolContext, run_tool
from app.tools.base import NOT_VERIFIED_MESSAGE
from tests.support.data import create_owner

TZ = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=TZ).astimezone(UTC)
JANE = "+15551234567"


def ctx(db: Database, business: Business, caller_phone: str | None = None) -> ToolContext:
    return ToolContext(scope=BusinessScope(db.session_maker, business.id), business=business,
                       caller_phone=caller_phone, now=lambda: NOW)


async def jane_with_a_booking(db: Database) -> tuple[Business, str]:
    _u, business = await create_owner(db)
    async with db.session() as s, s.begin():
        s.add(Customer(business_id=business.id, phone=JANE, name="Jane Doe", email="jane@example.org",
                       notes="VIP, allergic to peroxide"))
    booked = await run_tool(ctx(db, business, JANE), "book_appointment",
                            {"service": "Haircut", "start": "2026-03-02T10:00", "notes": "bring photos"})
    return business, booked["appointment"]["appointment_id"]


async def test_without_caller_id_every_identity_bound_tool_refuses_whatever_number_is_named(db: Database) -> None:
    business, appointment_id = await jane_with_a_booking(db)
    withheld = ctx(db, business)
    refusals = [
        await run_tool(withheld, "find_customer", {"phone": JANE}),
        await run_tool(withheld, "find_appointments", {"phone": JANE}),
        await run_tool(withheld, "cancel_appointment", {"appointment_id": appointment_id, "phone": JANE}),
        await run_tool(withheld, "reschedule_appointment",
                       {"appointment_id": appointment_id, "new_start": "2026-03-02T14:00", "phone": JANE}),
        await run_tool(withheld, "save_customer", {"phone": JANE, "name": "Mallory", "email": "m@evil.test"}),
    ]
    for refusal in refusals:
        assert refusal == {"error": {"code": "caller_not_verified", "message": NOT_VERIFIED_MESSAGE}}
    assert "take a message or put you through" in NOT_VERIFIED_MESSAGE
    async with db.session() as s:
        jane = await s.scalar(select(Customer).where(Customer.phone == JANE))
        appointment = await s.get(Appointment, UUID(appointment_id))
    assert jane is not None and (jane.name, jane.email) == ("Jane Doe", "jane@example.org")
    assert appointment is not None and appointment.status == "booked"
    assert appointment.starts_at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


async def test_without_caller_id_a_new_booking_and_a_message_still_work_and_are_unverified(db: Database) -> None:
    business, _appointment_id = await jane_with_a_booking(db)
    withheld = ctx(db, business)
    # A new customer: created unverified, the booking marked unverified.
    booked = await run_tool(withheld, "book_appointment", {
        "service": "Haircut", "start": "2026-03-02T11:00", "customer_name": "Ann Lee", "customer_phone": "555 222 3333",
    })
    assert booked["booked"] is True and "note" in booked
    # Naming an existing customer's number books, but changes nothing about them and tells nothing about them.
    as_jane = await run_tool(withheld, "book_appointment", {"service": "Haircut", "start": "2026-03-02T12:00",
                                                            "customer_name": "Not Jane", "customer_phone": JANE})
    assert as_jane["booked"] is True
    assert "Jane" not in json.dumps(as_jane) and "peroxide" not in json.dumps(as_jane)
    # Without a name the answer is the same whether or not the number is a customer (no oracle).
    unnamed_known = await run_tool(withheld, "book_appointment", {"service": "Haircut", "start": "2026-03-02T13:00",
                                                                  "customer_phone": JANE})
    unnamed_new = await run_tool(withheld, "book_appointment", {"service": "Haircut", "start": "2026-03-02T13:00",
                                                                "customer_phone": "5554445555"})
    assert unnamed_known == unnamed_new and unnamed_known["error"]["code"] == "invalid_arguments"
    message = await run_tool(withheld, "take_message", {"message": "Call me back", "phone": "555 222 3333"})
    assert message["saved"] is True
    async with db.session() as s:
        ann = await s.scalar(select(Customer).where(Customer.phone == "+15552223333"))
        jane = await s.scalar(select(Customer).where(Customer.phone == JANE))
        rows = {a.starts_at.hour: a for a in (await s.scalars(select(Appointment))).unique()}
        [msg] = list(await s.scalars(select(Message)))
    assert ann is not None and ann.name == "Ann Lee" and ann.phone_verified is False
    assert jane is not None and jane.name == "Jane Doe" and jane.phone_verified is True
    assert rows[15].caller_verified is True and rows[16].caller_verified is False
    assert rows[17].caller_verified is False and rows[17].customer_id == jane.id
    assert msg.caller_phone == "+15552223333"
    # Ann calling from her own number later confirms her record.
    await run_tool(ctx(db, business, "+15552223333"), "save_customer", {"name": "Ann Lee"})
    async with db.session() as s:
        ann = await s.scalar(select(Customer).where(Customer.phone == "+15552223333"))
    assert ann is not None and ann.phone_verified is True


async def test_a_known_caller_sees_only_their_name_and_own_appointments(db: Database) -> None:
    business, appointment_id = await jane_with_a_booking(db)
    await run_tool(ctx(db, business, "+15559998888"), "book_appointment",
                   {"service": "Colour", "start": "2026-03-03T10:00", "customer_name": "Other Person"})
    jane = ctx(db, business, JANE)
    outputs = [
        await run_tool(jane, "find_customer", {"phone": "+15559998888"}),
        await run_tool(jane, "find_appointments", {"phone": "+15559998888"}),
        await run_tool(jane, "save_customer", {"email": "new@example.org"}),
    ]
    found, appointments, saved = outputs
    assert found["found"] and found["name"] == "Jane Doe"
    assert [a["appointment_id"] for a in found["upcoming_appointments"]] == [appointment_id]
    assert [a["appointment_id"] for a in appointments["appointments"]] == [appointment_id]
    assert saved == {"saved": True, "name": "Jane Doe", "verified": True}
    text = json.dumps(outputs)
    for private in ("peroxide", "jane@example.org", "new@example.org", "bring photos", "Other Person", "Colour",
                    "+15559998888"):
        assert private not in text
    assert (await run_tool(jane, "cancel_appointment", {"appointment_id": appointment_id}))["cancelled"] is True


async def test_the_owner_sees_unverified_numbers_in_national_format(settings: Settings, db: Database) -> None:
    from litestar.testing import AsyncTestClient

    from app.main import create_app
    from tests.support.dashboard import sign_in

    user, business = await create_owner(db, name="London Cuts", timezone="Europe/London")
    london_now = datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("Europe/London")).astimezone(UTC)
    withheld = ToolContext(scope=BusinessScope(db.session_maker, business.id), business=business,
                           now=lambda: london_now)
    booked = await run_tool(withheld, "book_appointment", {"service": "Haircut", "start": "2026-03-04T10:00",
                                                           "customer_name": "Pat", "customer_phone": "020 7946 0958"})
    assert booked["booked"] is True
    async with db.session() as s:
        pat = await s.scalar(select(Customer).where(Customer.business_id == business.id))
    assert pat is not None and pat.phone == "+442079460958"
    async with AsyncTestClient(create_app(settings)) as client:
        sign_in(client, settings, user.id)
        appointments = (await client.get("/appointments")).text
        customers = (await client.get("/customers")).text
        detail = (await client.get(f"/customers/{pat.id}")).text
    assert "020 7946 0958" in appointments and "number not verified" in appointments
    assert "020 7946 0958" in customers and "not verified" in customers
    assert "020 7946 0958" in detail
