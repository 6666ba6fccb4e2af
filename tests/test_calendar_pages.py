"""The owner's calendar pages, in process: views, manual booking, move, cancel, block, closures, staff and
rooms, rules, customers; bad input keeps what was typed; another business's ids are 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.hours import zone
from app.db.models import Appointment, BusyBlock, Closure, Customer, Resource
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner

NY = zone("America/New_York")


def next_wednesday() -> date:
    day = date.today() + timedelta(days=2)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day


@pytest.fixture
async def owner_client(settings: Settings, db: Database) -> AsyncIterator[tuple[AsyncTestClient[Litestar], Any, str]]:
    user, business = await create_owner(db)
    async with AsyncTestClient(app=create_app(settings)) as client:
        sign_in(client, settings, user.id)
        token = await csrf_token(client, "/calendar")
        yield client, business, token


async def post(client: AsyncTestClient[Litestar], token: str, path: str, data: dict[str, Any]) -> Any:
    return await client.post(path, data=data, headers={"x-csrftoken": token, "hx-request": "true"})


async def test_manual_booking_move_cancel_and_views(owner_client: Any, db: Database) -> None:
    client, _business, token = owner_client
    wed = next_wednesday()
    # A new customer booked by the owner.
    r = await post(client, token, "/calendar/appointments", {
        "customer_id": "", "new_name": "Ann Lee", "new_phone": "(555) 222-0000", "service": "Haircut",
        "date": wed.isoformat(), "time": "10:00"})
    assert r.status_code == 200 and r.headers.get("hx-redirect", "").startswith("/calendar?view=day"), r.text
    async with db.session() as s:
        appt = await s.scalar(select(Appointment))
        customer = await s.scalar(select(Customer))
    assert appt is not None and customer is not None and customer.phone == "+15552220000"
    assert appt.starts_at == datetime(wed.year, wed.month, wed.day, 10, tzinfo=NY).astimezone(UTC)

    # The same slot again: refused with the form kept.
    r = await post(client, token, "/calendar/appointments", {
        "customer_id": str(customer.id), "service": "Haircut", "date": wed.isoformat(), "time": "10:15",
        "notes": "keep me"})
    assert r.status_code == 200 and "already booked" in r.text and "keep me" in r.text

    week = await client.get(f"/calendar?date={wed.isoformat()}")
    assert week.status_code == 200 and "Ann Lee" in week.text and "Week of" in week.text
    day = await client.get(f"/calendar?view=day&date={wed.isoformat()}", headers={"hx-request": "true",
                                                                                   "hx-target": "calendar-view"})
    assert "Ann Lee" in day.text and "<html" not in day.text

    detail = await client.get(f"/calendar/appointments/{appt.id}")
    assert "Move" in detail.text and "in the dashboard" in detail.text
    r = await post(client, token, f"/calendar/appointments/{appt.id}/move", {"date": wed.isoformat(), "time": "16:45"})
    assert "not open for the whole" in r.text  # runs past 17:00
    r = await post(client, token, f"/calendar/appointments/{appt.id}/move", {"date": wed.isoformat(), "time": "14:00"})
    assert r.headers.get("hx-redirect"), r.text
    async with db.session() as s:
        moved = await s.get(Appointment, appt.id)
    assert moved is not None and moved.starts_at.astimezone(NY).hour == 14
    r = await post(client, token, f"/calendar/appointments/{appt.id}/cancel", {})
    async with db.session() as s:
        assert (await s.get(Appointment, appt.id)).status == "cancelled"  # type: ignore[union-attr]


async def test_block_time_closures_resources_rules(owner_client: Any, db: Database) -> None:
    client, business, token = owner_client
    wed = next_wednesday()
    scope = CalendarScope(db.session_maker, business.id)

    r = await post(client, token, "/calendar/blocks", {"date": wed.isoformat(), "start": "12:00", "end": "13:00",
                                                       "note": "Lunch"})
    assert r.headers.get("hx-redirect")
    _s, slots = await scope.availability("Haircut", wed)
    assert not any(s.hour == 12 for s in slots) and any(s.hour == 13 for s in slots)
    page = await client.get(f"/calendar?view=day&date={wed.isoformat()}")
    assert "Lunch" in page.text

    r = await post(client, token, "/calendar/closures", {"day": wed.isoformat(), "closed": "on",
                                                         "note": "Staff training"})
    assert r.headers.get("hx-redirect"), r.text
    assert (await scope.availability("Haircut", wed))[1] == []
    r = await post(client, token, "/calendar/closures", {"day": "24-12", "closed": "on"})
    assert "YYYY-MM-DD" in r.text
    r = await post(client, token, "/calendar/closures", {"day": wed.isoformat(), "closed": "off", "hours": "25:00-3"})
    assert "HH:MM" in r.text

    r = await post(client, token, "/calendar/resources", {"name": "Maria", "kind": "person", "services": "Haircut",
                                                          "active": "on", "position": "1"})
    assert r.headers.get("hx-redirect"), r.text
    r = await post(client, token, "/calendar/resources", {"name": "Maria", "kind": "person"})
    assert "already a staff member" in r.text
    r = await post(client, token, "/calendar/resources", {"name": "Room 1", "kind": "room", "own_hours": "on",
                                                          "hours_mon": "9-5"})
    assert "09:00-17:00" in r.text or "HH:MM" in r.text
    async with db.session() as s:
        maria = await s.scalar(select(Resource).where(Resource.name == "Maria"))
    assert maria is not None and maria.services == ["Haircut"] and maria.weekly_hours is None

    r = await post(client, token, "/calendar/rules", {"buffer_before": "5", "buffer_after": "10", "min_notice": "60",
                                                      "max_days_ahead": "30", "svc_before_Colour": "0",
                                                      "svc_after_Colour": "20"})
    assert r.headers.get("hx-redirect"), r.text
    rules = await scope.rules()
    assert (rules.buffer_before_minutes, rules.buffer_after_minutes, rules.min_notice_minutes,
            rules.max_days_ahead, rules.service_buffers) == (5, 10, 60, 30, {"Colour": [0, 20]})
    r = await post(client, token, "/calendar/rules", {"buffer_before": "lots"})
    assert "whole number" in r.text
    setup = await client.get("/calendar/setup")
    assert "Maria" in setup.text and "Staff training" in setup.text


async def test_customers_new_and_edit(owner_client: Any, db: Database) -> None:
    client, _business, token = owner_client
    assert "New customer" in (await client.get("/customers/new")).text
    r = await client.post("/customers/new", data={"name": "Jo", "phone": "nonsense"},
                          headers={"x-csrftoken": token})
    assert r.status_code == 200 and "Jo" in r.text
    r = await client.post("/customers/new", data={"name": "Jo", "phone": "+1 555 010 2000", "email": "jo@example.com"},
                          headers={"x-csrftoken": token}, follow_redirects=False)
    assert r.status_code == 303
    async with db.session() as s:
        jo = await s.scalar(select(Customer).where(Customer.name == "Jo"))
    assert jo is not None and jo.phone == "+15550102000"
    r = await client.post(f"/customers/{jo.id}/edit", data={"name": "Jo Bloggs", "phone": jo.phone, "notes": "VIP"},
                          headers={"x-csrftoken": token}, follow_redirects=False)
    assert r.status_code == 303
    async with db.session() as s:
        assert (await s.get(Customer, jo.id)).notes == "VIP"  # type: ignore[union-attr]


async def test_another_business_rows_are_not_found(owner_client: Any, db: Database) -> None:
    client, _business, token = owner_client
    _other_user, other = await create_owner(db, name="Other")
    scope = CalendarScope(db.session_maker, other.id)
    customer = await scope.save_customer("+15559990000", name="Theirs")
    wed = next_wednesday()
    appt = await scope.book(customer.id, "Haircut", datetime(wed.year, wed.month, wed.day, 10, tzinfo=NY))
    block = await scope.block_time(datetime(wed.year, wed.month, wed.day, 12, tzinfo=NY),
                                   datetime(wed.year, wed.month, wed.day, 13, tzinfo=NY))
    closure = await scope.add_closure(wed, [])
    for path in (f"/calendar/appointments/{appt.id}", f"/customers/{customer.id}/edit"):
        assert (await client.get(path)).status_code == 404
    for path in (f"/calendar/appointments/{appt.id}/cancel", f"/calendar/appointments/{appt.id}/move",
                 f"/calendar/blocks/{block.id}/delete", f"/calendar/closures/{closure.id}/delete"):
        assert (await post(client, token, path, {"date": wed.isoformat(), "time": "11:00"})).status_code == 404
    async with db.session() as s:
        assert (await s.get(Appointment, appt.id)).status == "booked"  # type: ignore[union-attr]
        assert await s.get(BusyBlock, block.id) is not None
        assert await s.get(Closure, closure.id) is not None
