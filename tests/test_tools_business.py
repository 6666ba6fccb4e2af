"""Business tools: each call is scoped to the call's business and, for appointments, to the caller's phone;
refusals come back as structured errors; times are the business's local time with an offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Appointment, Business, Customer, Message
from app.db.services import BusinessScope
from app.tools import TOOLS, ToolContext, run_tool, tool_schemas
from tests.support.data import create_owner

TZ = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=TZ).astimezone(UTC)  # a Monday, before opening


def ctx_for(db: Database, business: Business, caller_phone: str | None = None) -> ToolContext:
    return ToolContext(scope=BusinessScope(db.session_maker, business.id), business=business,
                       caller_phone=caller_phone, now=lambda: NOW)


async def two_businesses(db: Database) -> tuple[Business, Business]:
    _u1, a = await create_owner(db, name="Alpha Cuts")
    _u2, b = await create_owner(db, name="Beta Beauty")
    return a, b


async def book(ctx: ToolContext, start: str = "2026-03-02T10:00", **extra: Any) -> dict[str, Any]:
    args = {"service": "Haircut", "start": start, "customer_name": "Jane Doe", **extra}
    return await run_tool(ctx, "book_appointment", args)


def test_tool_names_are_the_contract() -> None:
    assert set(TOOLS) == {
        "get_business_info", "check_availability", "book_appointment", "find_appointments", "cancel_appointment",
        "reschedule_appointment", "find_customer", "save_customer", "take_message",
        "confirm_appointment",  # issue 16: the customer confirms (on a confirmation call), identity-bound
    }
    for schema in tool_schemas():
        assert schema["type"] == "function" and schema["parameters"]["type"] == "object"
        json.dumps(schema)


async def test_business_info_and_availability_in_local_time(db: Database) -> None:
    a, _b = await two_businesses(db)
    ctx = ctx_for(db, a)
    info = await run_tool(ctx, "get_business_info", {})
    assert info["name"] == "Alpha Cuts" and "Monday 09:00-17:00" in info["hours"]
    assert info["now"] == "2026-03-02T08:00-05:00"
    free = await run_tool(ctx, "check_availability", json.dumps({"service": "haircut", "date": "2026-03-02"}))
    assert free["service"] == "Haircut" and free["free_starts"][0] == "2026-03-02T09:00-05:00"


async def test_booking_writes_only_to_the_calls_business(db: Database) -> None:
    a, b = await two_businesses(db)
    result = await book(ctx_for(db, a), customer_phone="555-123-4567")
    assert result["booked"] is True and result["appointment"]["start"] == "2026-03-02T10:00-05:00"
    async with db.session() as s:
        rows = list(await s.scalars(select(Appointment)))
        customers = list(await s.scalars(select(Customer)))
    assert [r.business_id for r in rows] == [a.id] and [c.business_id for c in customers] == [a.id]
    # The other business's calendar is untouched and still free at that time.
    free = await run_tool(ctx_for(db, b), "check_availability", {"service": "Haircut", "date": "2026-03-02"})
    assert "2026-03-02T10:00-05:00" in free["free_starts"]


async def test_another_business_appointment_cannot_be_touched(db: Database) -> None:
    a, b = await two_businesses(db)
    booked = await book(ctx_for(db, a, "+15551234567"))
    appointment_id = booked["appointment"]["appointment_id"]
    # Same caller phone, other business: not found, in every tool.
    other = ctx_for(db, b, "+15551234567")
    assert (await run_tool(other, "cancel_appointment", {"appointment_id": appointment_id}))["error"]["code"] == (
        "not_found"
    )
    moved = await run_tool(other, "reschedule_appointment",
                           {"appointment_id": appointment_id, "new_start": "2026-03-02T11:00"})
    assert moved["error"]["code"] == "not_found"
    assert (await run_tool(other, "find_appointments", {}))["appointments"] == []
    assert (await run_tool(other, "find_customer", {}))["found"] is False


async def test_only_the_callers_own_appointments(db: Database) -> None:
    a, _b = await two_businesses(db)
    jane = await book(ctx_for(db, a, "+15551234567"))
    appointment_id = jane["appointment"]["appointment_id"]
    # Another caller on the phone line: the line's number wins over any number the model passes.
    mallory = ctx_for(db, a, "+15559876543")
    refused = await run_tool(mallory, "cancel_appointment", {"appointment_id": appointment_id,
                                                             "phone": "+15551234567"})
    assert refused == {"error": {"code": "not_your_appointment",
                                 "message": "that appointment belongs to a different caller"}}
    assert (await run_tool(mallory, "find_appointments", {"phone": "+15551234567"}))["appointments"] == []
    # Jane herself can find, move and cancel it.
    own = ctx_for(db, a, "+15551234567")
    found = await run_tool(own, "find_appointments", {})
    assert [x["appointment_id"] for x in found["appointments"]] == [appointment_id]
    moved = await run_tool(own, "reschedule_appointment", {"appointment_id": appointment_id,
                                                           "new_start": "2026-03-02T14:00-05:00"})
    assert moved["appointment"]["start"] == "2026-03-02T14:00-05:00"
    assert (await run_tool(own, "cancel_appointment", {"appointment_id": appointment_id}))["cancelled"] is True


async def test_structured_errors_for_bad_requests(db: Database) -> None:
    a, _b = await two_businesses(db)
    browser = ctx_for(db, a)  # no caller phone on a browser call
    assert (await book(browser))["error"]["code"] == "invalid_arguments"  # phone needed
    assert "phone" in (await book(browser))["error"]["message"]
    assert (await book(browser, start="2026-03-02T18:00", customer_phone="5551234567"))["error"]["code"] == (
        "outside_hours"
    )
    await book(browser, customer_phone="5551234567")
    assert (await book(browser, customer_phone="5550000000"))["error"]["code"] == "slot_taken"
    assert (await book(browser, start="next tuesday", customer_phone="5551234567"))["error"]["code"] == (
        "invalid_arguments"
    )
    assert (await run_tool(browser, "book_appointment", "{not json"))["error"]["code"] == "invalid_arguments"
    assert (await run_tool(browser, "nope", {}))["error"]["code"] == "unknown_tool"
    assert (await run_tool(browser, "check_availability", {"service": "Massage", "date": "2026-03-02"}))[
        "error"]["code"] == "invalid"
    assert (await run_tool(browser, "cancel_appointment", {"appointment_id": "x", "phone": "5551234567"}))[
        "error"]["code"] == "caller_not_verified"
    assert (await run_tool(ctx_for(db, a, "+15551234567"), "cancel_appointment", {"appointment_id": "x"}))[
        "error"]["code"] == "invalid_arguments"


async def test_customers_and_messages(db: Database) -> None:
    a, b = await two_businesses(db)
    ctx = ctx_for(db, a)
    saved = await run_tool(ctx, "save_customer", {"phone": "(555) 123-4567", "name": "Jane", "email": "j@x.org"})
    assert saved == {"saved": True, "name": "Jane", "verified": False}
    found = await run_tool(ctx_for(db, a, "+15551234567"), "find_customer", {})
    assert found == {"found": True, "name": "Jane", "upcoming_appointments": []}
    msg = await run_tool(ctx, "take_message", {"message": "Please call me back about colour.", "name": "Jane",
                                               "phone": "5551234567"})
    assert msg["saved"] is True
    assert (await run_tool(ctx, "take_message", {"message": "  "}))["error"]["code"] == "invalid_arguments"
    async with db.session() as s:
        messages = list(await s.scalars(select(Message)))
        other_customers = await s.scalar(select(func.count()).select_from(Customer)
                                         .where(Customer.business_id == b.id))
    assert [(m.business_id, m.caller_phone) for m in messages] == [(a.id, "+15551234567")]
    assert other_customers == 0


async def test_availability_respects_now(db: Database) -> None:
    a, _b = await two_businesses(db)
    ctx = ToolContext(scope=BusinessScope(db.session_maker, a.id), business=a,
                      now=lambda: datetime(2026, 3, 2, 16, 10, tzinfo=TZ).astimezone(UTC))
    free = await run_tool(ctx, "check_availability", {"service": "Haircut", "date": "2026-03-02"})
    assert free["free_starts"] == ["2026-03-02T16:15-05:00", "2026-03-02T16:30-05:00"]
    past = await book(ctx, start="2026-03-02T10:00", customer_phone="5551234567")
    assert past == {"error": {"code": "invalid", "message": "that time has already passed"}}
