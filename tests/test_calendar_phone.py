"""Google Calendar end to end: the real service (granian subprocess) between the Google Calendar, Twilio and
OpenAI doubles, each reached only through configuration. The owner connects Google through the browser flow;
changes in Google arrive as push notifications; phone callers book through the receptionist's tools."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.models import Appointment, BusyBlock, CalendarLink
from app.settings import load_settings
from tests.doubles.google_calendar import GoogleCalendarDouble
from tests.doubles.twilio_double import TwilioDouble, caller_audio
from tests.support.data import seed_owner
from tests.support.dates import local, next_saturday
from tests.support.phone_world import phone_service
from tests.support.server import RunningServer
from tests.support.waiting import wait_until
from tests.test_twilio_calls import DecidingOpenAIDouble, World, connect, finalised, hear_it_all, sent_at

NUMBER = "+15550004000"
OWNER_CAL = "owner@example.com"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class CalendarWorld:
    phone: World
    google: GoogleCalendarDouble
    business_id: UUID
    link_id: UUID

    def database(self) -> Database:
        return Database(load_settings(self.phone.env))


async def _seed(env: dict[str, str]) -> tuple[UUID, UUID]:
    user, business = await seed_owner(env, name="Sam's Salon", phone_number=NUMBER,
                                      greeting="Thanks for calling Sam's Salon.")
    return user.id, business.id


def _connect_google(server: RunningServer, env: dict[str, str], user_id: UUID, google: GoogleCalendarDouble) -> None:
    """The owner's browser: the consent round trip, then choosing the primary calendar."""
    cookie = SessionSigner(tuple(env["SESSION_SECRETS"].split(","))).sign(user_id)
    with httpx.Client(base_url=server.url, cookies={COOKIE_NAME: cookie}, timeout=20) as browser:
        done = browser.get("/settings/calendar/connect", follow_redirects=True)
        assert done.status_code == 200 and "Google account connected" in done.text, done.text[-2000:]
        token = _META.search(done.text).group(1)  # type: ignore[union-attr]
        account = re.search(r"/settings/calendar/accounts/([0-9a-f-]+)/calendars", done.text).group(1)  # type: ignore[union-attr]
        listing = browser.get(f"/settings/calendar/accounts/{account}/calendars", headers={"hx-request": "true"})
        assert OWNER_CAL in listing.text
        added = browser.post("/settings/calendar/links", headers={"x-csrftoken": token, "hx-request": "true"}, data={
            "account_id": account, "google_id": OWNER_CAL, "summary": "Sam", "access_role": "owner", "resource_id": ""})
        assert added.status_code == 200 and "connected" in added.text, added.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalendarWorld]:
    data_dir = tmp_path_factory.mktemp("calendar-e2e")
    with DecidingOpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, \
            GoogleCalendarDouble() as google, \
            phone_service(data_dir, openai, twilio, "calendar-server.log", CALENDAR_SYNC_SECONDS="3600",
                          **google.env()) as server:
        env = server.env
        user_id, business_id = asyncio.run(_seed(env))
        _connect_google(server, env, user_id, google)
        phone = World(server, openai, twilio, env, business_id, business_id, user_id, user_id)

        async def linked() -> UUID:
            db = Database(load_settings(env))
            try:
                async def ready() -> bool:
                    async with db.session() as s:
                        link = await s.scalar(select(CalendarLink))
                        return link is not None and link.last_synced_at is not None
                await wait_until(ready, timeout=20)
                async with db.session() as s:
                    return (await s.scalar(select(CalendarLink))).id  # type: ignore[union-attr]
            finally:
                await db.dispose()

        link_id = asyncio.run(linked())
        assert google.live_channels(OWNER_CAL), "the service watches the calendar for changes"
        yield CalendarWorld(phone, google, business_id, link_id)


@pytest.fixture
def cw(world: CalendarWorld) -> Iterator[CalendarWorld]:
    world.phone.openai.reset()
    world.phone.openai.decide = None
    world.phone.twilio.reset()
    world.google.down = False
    yield world


def tool_outputs(openai: Any, name: str) -> list[dict[str, Any]]:
    """What the service answered the supervisor model for each call of tool `name`."""
    calls: dict[str, str] = {}
    outputs: list[dict[str, Any]] = []
    for body in openai.response_requests:
        for item in body.get("input", []):
            if item.get("type") == "function_call":
                calls[item["call_id"]] = item["name"]
            elif item.get("type") == "function_call_output" and calls.get(item["call_id"]) == name:
                outputs.append(json.loads(item["output"]))
    return outputs


async def phone_call(cw: CalendarWorld, caller: str, steps: list[tuple[str, dict[str, Any]]], answer: str) -> UUID:
    """A caller rings, asks, the supervisor runs `steps` (tool, arguments) and answers; returns the call id."""
    w = cw.phone
    w.openai.realtime.say("Hello, Sam's Salon.")
    w.openai.realtime.caller("I'd like a haircut on Saturday morning, please.")
    w.openai.realtime.tool("getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "haircut saturday"},
                           say_first="One moment.")
    w.openai.realtime.say_from_tool_output()
    script = w.openai.responses.for_model("gpt-4.1")
    for name, arguments in steps:
        script = script.function_call(name, arguments)
    script.text(answer)
    call, stream, log = await connect(w, NUMBER, caller)
    await sent_at(log, "response.done")
    await stream.wait_for(lambda: len(stream.marks_returned) >= 1 and not stream.playing, timeout=10)
    await stream.speak(caller_audio("book"))
    await sent_at(log, "response.done", count=3, timeout=20)
    await hear_it_all(stream, log)
    await stream.hang_up()
    _session, row, _events = await finalised(w, call.sid, timeout=15)
    return row.id


async def blocks(cw: CalendarWorld) -> set[str]:
    db = cw.database()
    try:
        async with db.session() as s:
            rows = await s.scalars(select(BusyBlock).where(BusyBlock.link_id == cw.link_id))
            return {b.external_id or "" for b in rows}
    finally:
        await db.dispose()


async def test_private_event_moves_the_offer_and_the_phone_booking_reaches_google(cw: CalendarWorld) -> None:
    sat = next_saturday()
    private = cw.google.add_event(OWNER_CAL, local(sat, 10), local(sat, 10, 30), summary="Dentist")
    # The push notification makes the service sync; the block arrives without any periodic pass.
    await wait_until(lambda: _has(cw, private["id"]), timeout=15)
    assert any(n["X-Goog-Resource-State"] == "exists" for n in cw.google.notifications)

    day = sat.isoformat()
    call_id = await phone_call(cw, "+15557001001", [
        ("check_availability", {"service": "Haircut", "date": day}),
        ("book_appointment", {"service": "Haircut", "start": f"{day}T10:30", "customer_name": "Ann Lee"}),
    ], "You're booked for half past ten.")
    offered = tool_outputs(cw.phone.openai, "check_availability")[0]
    assert offered["free_starts"][0].startswith(f"{day}T10:30"), offered
    assert tool_outputs(cw.phone.openai, "book_appointment")[0]["booked"] is True

    def written() -> list[dict[str, Any]]:
        return [e for e in cw.google.live_events(OWNER_CAL) if "Ann Lee" in e.get("summary", "")]

    await wait_until(lambda: bool(written()), timeout=15)
    event = written()[0]
    assert f"{cw.phone.server.url}/calls/{call_id}" in event["description"]
    assert "+15557001001" in event["description"] and "Haircut" in event["description"]
    assert event["start"]["dateTime"].startswith(f"{day}T10:30")

    # Deleted in Google: after the push, 10:00 is free again.
    cw.google.delete_event(OWNER_CAL, private["id"])
    await wait_until(lambda: _gone(cw, private["id"]), timeout=15)
    db = cw.database()
    try:
        _svc, slots = await CalendarScope(db.session_maker, cw.business_id).availability("Haircut", sat)
    finally:
        await db.dispose()
    assert slots[0].strftime("%H:%M") == "10:00"


async def _has(cw: CalendarWorld, event_id: str) -> bool:
    return event_id in await blocks(cw)


async def _gone(cw: CalendarWorld, event_id: str) -> bool:
    return event_id not in await blocks(cw)


async def test_google_down_during_a_phone_booking(cw: CalendarWorld) -> None:
    sat = next_saturday()
    day = sat.isoformat()
    cw.google.down = True
    call_id = await phone_call(cw, "+15557001002", [
        ("book_appointment", {"service": "Haircut", "start": f"{day}T12:00", "customer_name": "Bo Diaz"}),
    ], "Booked for noon.")
    assert tool_outputs(cw.phone.openai, "book_appointment")[0]["booked"] is True
    db = cw.database()
    try:
        async with db.session() as s:
            row = await s.scalar(select(Appointment).where(Appointment.call_id == call_id))
        assert row is not None and row.status == "booked" and row.google_event_id is None
        await asyncio.sleep(2)
        assert not any("Bo Diaz" in e.get("summary", "") for e in cw.google.live_events(OWNER_CAL))
        cw.google.down = False
        await wait_until(lambda: any("Bo Diaz" in e.get("summary", "") for e in cw.google.live_events(OWNER_CAL)),
                         timeout=30)
    finally:
        await db.dispose()

