"""Google Calendar through the app (in process) against the Google Calendar double: the grant, the sync both
ways, 410 resync, free/busy-only calendars, conflicts, Google down, revoke."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.calendar.crypto import TokenCipher
from app.calendar.runtime import CalendarRuntime
from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.models import Appointment, BusyBlock, CalendarAccount, CalendarLink, Job
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings, migrated_database
from tests.doubles.google_calendar import GoogleCalendarDouble
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner
from tests.support.dates import local, next_saturday
from tests.support.waiting import wait_until

OWNER_CAL = "owner@example.com"


@pytest.fixture
def google() -> Iterator[GoogleCalendarDouble]:
    with GoogleCalendarDouble(page_size=2) as double:
        yield double


@pytest.fixture
def gsettings(data_dir: Path, google: GoogleCalendarDouble) -> Settings:
    # Push notifications go nowhere here (port 9, discard): these tests drive syncs themselves.
    return make_settings(data_dir, CALENDAR_SYNC_SECONDS="3600", PUBLIC_BASE_URL="http://127.0.0.1:9",
                         **google.env())


@pytest.fixture
async def gdb(gsettings: Settings) -> AsyncIterator[Database]:
    async with migrated_database(gsettings) as database:
        yield database


@pytest.fixture
async def app_client(gsettings: Settings, gdb: Database) -> AsyncIterator[tuple[AsyncTestClient[Litestar], Any]]:
    user, business = await create_owner(gdb)
    app = create_app(gsettings)
    async with AsyncTestClient(app=app) as client:
        sign_in(client, gsettings, user.id)
        yield client, business


def runtime(client: AsyncTestClient[Litestar]) -> CalendarRuntime:
    return client.app.state["calendar"]


async def connect_google(client: AsyncTestClient[Litestar], google: GoogleCalendarDouble) -> None:
    start = await client.get("/settings/calendar/connect", follow_redirects=False)
    assert start.status_code in (302, 303), start.text
    authorize = urlsplit(start.headers["location"])
    query = parse_qs(authorize.query)
    assert query["code_challenge_method"] == ["S256"] and query["access_type"] == ["offline"]
    assert query["include_granted_scopes"] == ["true"]
    assert set(query["scope"][0].split()) == {
        "https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar.freebusy",
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    }
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(start.headers["location"], follow_redirects=False)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["location"])
    done = await client.get(back.path + "?" + back.query, follow_redirects=False)
    assert done.status_code in (302, 303) and "done=connected" in done.headers["location"], done.headers


async def link_calendar(client: AsyncTestClient[Litestar], gdb: Database, google_id: str = OWNER_CAL,
                        access_role: str = "owner", resource_id: str = "") -> CalendarLink:
    async with gdb.session() as s:
        account = await s.scalar(select(CalendarAccount))
    assert account is not None
    token = await csrf_token(client, "/settings/calendar")
    page = await client.get(f"/settings/calendar/accounts/{account.id}/calendars", headers={"hx-request": "true"})
    assert google_id in page.text
    response = await client.post("/settings/calendar/links", data={
        "account_id": str(account.id), "google_id": google_id, "summary": google_id, "access_role": access_role,
        "resource_id": resource_id,
    }, headers={"x-csrftoken": token, "hx-request": "true"})
    assert response.status_code == 200 and "connected" in response.text, response.text
    async with gdb.session() as s:
        link = await s.scalar(select(CalendarLink).where(CalendarLink.google_id == google_id))
    assert link is not None
    return link


async def jobs_done(gdb: Database) -> bool:
    async with gdb.session() as s:
        return not list(await s.scalars(select(Job).where(Job.kind.like("calendar.%"),
                                                          Job.status.in_(("pending", "running")))))


async def linked(client: AsyncTestClient[Litestar], google: GoogleCalendarDouble, gdb: Database) -> CalendarLink:
    """Google connected, the owner's calendar linked and its first sync done."""
    await connect_google(client, google)
    link = await link_calendar(client, gdb)
    await wait_until(lambda: jobs_done(gdb))
    return link


async def test_connect_sync_book_move_cancel_and_revoke(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
    gsettings: Settings,
) -> None:
    client, business = app_client
    await connect_google(client, google)
    async with gdb.session() as s:
        account = await s.scalar(select(CalendarAccount))
    assert account is not None and account.email == OWNER_CAL
    refresh = next(iter(google.refresh_tokens))
    assert refresh not in account.refresh_token_encrypted
    assert TokenCipher(gsettings).decrypt(account.refresh_token_encrypted) == refresh

    sat = next_saturday()
    # Three events before connecting (page size 2: the full sync pages), one of them transparent.
    google.add_event(OWNER_CAL, local(sat, 10), local(sat, 10, 30))
    google.add_event(OWNER_CAL, local(sat, 12), local(sat, 12, 30), transparency="transparent")
    google.add_event(OWNER_CAL, local(sat, 13), local(sat, 13, 15), summary="Dentist")
    link = await link_calendar(client, gdb)
    await wait_until(lambda: jobs_done(gdb))

    scope = CalendarScope(gdb.session_maker, business.id)
    _service, slots = await scope.availability("Haircut", sat)
    starts = [s.strftime("%H:%M") for s in slots]
    assert starts[0] == "10:30", "a private event at 10:00 moves the first offer to 10:30"
    assert "12:00" in starts, "a transparent (free) event does not block time"
    assert "13:00" not in starts and "12:45" not in starts and "13:15" in starts

    # A booking is written to Google as an event with the customer, phone and service.
    customer = await scope.save_customer("+15551112222", name="Ann Lee")
    appointment = await scope.book(customer.id, "Haircut", local(sat, 11), actor="caller")
    await wait_until(lambda: jobs_done(gdb))
    events = [e for e in google.live_events(OWNER_CAL) if "Ann Lee" in e.get("summary", "")]
    assert len(events) == 1
    event = events[0]
    assert "+15551112222" in event["description"] and "Haircut" in event["description"]
    assert event["start"]["dateTime"].startswith(f"{sat.isoformat()}T11:00")
    # Our own event coming back through sync does not block its own slot or raise a conflict.
    await runtime(client).sync.sync_link(link.id)
    assert not await scope.open_conflicts()

    # Move and cancel follow it to Google.
    await scope.reschedule(appointment.id, None, local(sat, 11, 30), actor="owner")
    await wait_until(lambda: jobs_done(gdb))
    moved = next(e for e in google.live_events(OWNER_CAL) if e["id"] == event["id"])
    assert moved["start"]["dateTime"].startswith(f"{sat.isoformat()}T11:30")
    await scope.cancel_by_owner(appointment.id)
    await wait_until(lambda: jobs_done(gdb))
    assert all(e["id"] != event["id"] for e in google.live_events(OWNER_CAL))

    # Revoking removes the grant here and at Google; its busy times stop blocking.
    token = await csrf_token(client, "/settings/calendar")
    response = await client.post(f"/settings/calendar/accounts/{account.id}/revoke",
                                 headers={"x-csrftoken": token, "hx-request": "true"})
    assert response.status_code == 200 and "Access revoked" in response.text
    assert refresh in google.revoked
    async with gdb.session() as s:
        assert await s.scalar(select(CalendarAccount)) is None
        assert not list(await s.scalars(select(BusyBlock)))
    _service, slots = await scope.availability("Haircut", sat)
    assert slots[0].strftime("%H:%M") == "10:00"


async def test_incremental_sync_deletion_410_and_conflicts(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    await connect_google(client, google)
    sat = next_saturday()
    private = google.add_event(OWNER_CAL, local(sat, 10), local(sat, 11))
    link = await link_calendar(client, gdb)
    await wait_until(lambda: jobs_done(gdb))
    sync = runtime(client).sync
    scope = CalendarScope(gdb.session_maker, business.id)
    assert (await scope.availability("Haircut", sat))[1][0].strftime("%H:%M") == "11:00"

    # Deleted in Google: an incremental sync (with the stored token) frees the slot.
    async with gdb.session() as s:
        token_before = (await s.get(CalendarLink, link.id)).sync_token  # type: ignore[union-attr]
    assert token_before
    google.delete_event(OWNER_CAL, private["id"])
    await sync.sync_link(link.id)
    assert (await scope.availability("Haircut", sat))[1][0].strftime("%H:%M") == "10:00"

    # A booking made locally, then an event created in Google over it: a conflict for the owner.
    customer = await scope.save_customer("+15553334444", name="Bo")
    appointment = await scope.book(customer.id, "Haircut", local(sat, 12))
    google.add_event(OWNER_CAL, local(sat, 12, 15), local(sat, 13))
    await sync.sync_link(link.id)
    conflicts = await scope.open_conflicts()
    assert [(c.reason, a.id) for c, a in conflicts] == [("a busy event in Google Calendar overlaps it", appointment.id)]
    page = await client.get("/calendar")
    assert "overlaps it" in page.text

    # The sync token expires (410 Gone): the next sync starts over in full and still sees everything.
    google.invalidate_sync_tokens(OWNER_CAL)
    extra = google.add_event(OWNER_CAL, local(sat, 9), local(sat, 9, 30))
    await sync.sync_link(link.id)
    async with gdb.session() as s:
        blocks = {b.external_id for b in await s.scalars(select(BusyBlock).where(BusyBlock.link_id == link.id))}
    assert extra["id"] in blocks and private["id"] not in blocks and len(blocks) == 2
    assert ("GET", f"/calendar/v3/calendars/{OWNER_CAL}/events") in google.requests


async def test_free_busy_only_calendar_blocks_through_freebusy(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    google.add_calendar("shared@example.com", "Maria's calendar", access_role="freeBusyReader")
    await connect_google(client, google)
    sat = next_saturday()
    google.add_event("shared@example.com", local(sat, 10), local(sat, 10, 45))
    await link_calendar(client, gdb, "shared@example.com", "freeBusyReader")
    await wait_until(lambda: jobs_done(gdb))
    scope = CalendarScope(gdb.session_maker, business.id)
    assert (await scope.availability("Haircut", sat))[1][0].strftime("%H:%M") == "10:45"
    assert ("POST", "/calendar/v3/freeBusy") in google.requests


async def test_google_down_books_locally_and_syncs_on_recovery(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    await linked(client, google, gdb)
    google.down = True
    google.expire_access_tokens()
    scope = CalendarScope(gdb.session_maker, business.id)
    customer = await scope.save_customer("+15556667777", name="Cy")
    sat = next_saturday()
    appointment = await scope.book(customer.id, "Haircut", local(sat, 13))
    assert appointment.status == "booked"

    async def failed_once() -> bool:
        async with gdb.session() as s:
            job = await s.scalar(select(Job).where(Job.kind == "calendar.push"))
            return job is not None and job.attempts >= 1 and job.status == "pending"

    await wait_until(failed_once)
    assert not any("Cy" in e.get("summary", "") for e in google.live_events(OWNER_CAL))
    google.down = False
    await wait_until(lambda: any("Cy" in e.get("summary", "") for e in google.live_events(OWNER_CAL)), timeout=15)
    await wait_until(lambda: jobs_done(gdb))
    async with gdb.session() as s:
        row = await s.get(Appointment, appointment.id)
    assert row is not None and row.google_event_id


async def test_push_notification_headers_are_checked(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, _business = app_client
    await connect_google(client, google)
    link = await link_calendar(client, gdb)
    async with gdb.session() as s, s.begin():
        row = await s.get(CalendarLink, link.id)
        assert row is not None
        row.channel_id, row.channel_token, row.channel_resource_id = "chan-1", "secret-token", "res-1"
    headers = {"X-Goog-Channel-ID": "chan-1", "X-Goog-Resource-ID": "res-1", "X-Goog-Resource-State": "exists",
               "X-Goog-Message-Number": "2"}
    assert (await client.post("/google/calendar/notify", headers=headers)).status_code == 403
    bad = {**headers, "X-Goog-Channel-Token": "wrong"}
    assert (await client.post("/google/calendar/notify", headers=bad)).status_code == 403
    good = {**headers, "X-Goog-Channel-Token": "secret-token"}
    assert (await client.post("/google/calendar/notify", headers=good)).status_code == 200
    unknown = {**good, "X-Goog-Channel-ID": "old-channel"}
    assert (await client.post("/google/calendar/notify", headers=unknown)).status_code == 200
    assert (await client.post("/google/calendar/notify")).status_code == 400


async def test_a_refused_or_unverifiable_grant_stores_nothing(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, _business = app_client
    # No flow cookie / wrong state.
    response = await client.get("/settings/calendar/callback?code=x&state=y", follow_redirects=False)
    assert "error=" in response.headers["location"]
    start = await client.get("/settings/calendar/connect", follow_redirects=False)
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(start.headers["location"], follow_redirects=False)
    back = urlsplit(consent.headers["location"])
    forged = back.query.replace("state=", "state=forged")
    response = await client.get(back.path + "?" + forged, follow_redirects=False)
    assert "error=" in response.headers["location"]
    async with gdb.session() as s:
        assert await s.scalar(select(CalendarAccount)) is None
    _ = UTC


async def test_watch_channels_are_renewed_before_expiry_and_the_periodic_pass_catches_lost_pushes(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    link = await linked(client, google, gdb)
    first = google.live_channels(OWNER_CAL)
    assert len(first) == 1 and first[0].address == "http://127.0.0.1:9/google/calendar/notify" and first[0].token
    sync = runtime(client).sync

    await sync.renew_channels()  # a week left: nothing to do
    assert [c.id for c in google.live_channels(OWNER_CAL)] == [first[0].id]
    async with gdb.session() as s, s.begin():
        row = await s.get(CalendarLink, link.id)
        assert row is not None
        row.channel_expires_at = datetime.now(UTC) + timedelta(hours=1)
    await sync.renew_channels()
    live = google.live_channels(OWNER_CAL)
    assert len(live) == 1 and live[0].id != first[0].id and google.channels[first[0].id].stopped
    async with gdb.session() as s:
        row = await s.get(CalendarLink, link.id)
    assert row is not None and row.channel_id == live[0].id and row.channel_resource_id == live[0].resource_id

    # A change whose push never arrived (the address is unreachable here) is picked up by the periodic pass.
    sat = next_saturday()
    missed = google.add_event(OWNER_CAL, local(sat, 11), local(sat, 12))
    await sync.periodic()
    runtime(client).wake()
    await wait_until(lambda: jobs_done(gdb))
    async with gdb.session() as s:
        ids = {b.external_id for b in await s.scalars(select(BusyBlock).where(BusyBlock.link_id == link.id))}
    assert missed["id"] in ids
    scope = CalendarScope(gdb.session_maker, business.id)
    starts = [s.strftime("%H:%M") for s in (await scope.availability("Haircut", sat))[1]]
    assert "11:00" not in starts and "12:00" in starts


async def test_a_booking_event_moved_or_deleted_in_google_is_a_conflict_not_a_silent_change(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    link = await linked(client, google, gdb)
    scope = CalendarScope(gdb.session_maker, business.id)
    sat = next_saturday()
    customer = await scope.save_customer("+15558889999", name="Dee")
    appointment = await scope.book(customer.id, "Haircut", local(sat, 11))
    await wait_until(lambda: jobs_done(gdb))
    async with gdb.session() as s:
        event_id = (await s.get(Appointment, appointment.id)).google_event_id  # type: ignore[union-attr]
    assert event_id
    sync = runtime(client).sync
    google.move_event(OWNER_CAL, event_id, local(sat, 13), local(sat, 13, 30))
    await sync.sync_link(link.id)
    assert [c.reason for c, _a in await scope.open_conflicts()] == ["its event was moved in Google Calendar"]
    # The booking itself is unchanged: the owner decides.
    assert (await scope.get_appointment(appointment.id)).starts_at == local(sat, 11).astimezone(UTC)
    google.delete_event(OWNER_CAL, event_id)
    await sync.sync_link(link.id)
    reasons = sorted(c.reason for c, _a in await scope.open_conflicts())
    assert reasons == ["its event was deleted in Google Calendar", "its event was moved in Google Calendar"]
    conflict = (await scope.open_conflicts())[0][0]
    token = await csrf_token(client, "/calendar")
    r = await client.post(f"/calendar/conflicts/{conflict.id}/resolve", headers={"x-csrftoken": token,
                                                                                   "hx-request": "true"})
    assert r.headers.get("hx-redirect") == "/calendar" and len(await scope.open_conflicts()) == 1


async def test_time_the_owner_blocks_is_written_to_google_and_removed_with_it(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    link = await linked(client, google, gdb)
    scope = CalendarScope(gdb.session_maker, business.id)
    sat = next_saturday()
    day_page = f"/calendar?view=day&date={sat.isoformat()}"

    # The owner blocks Saturday lunch in the dashboard: an opaque event in their Google calendar.
    token = await csrf_token(client, "/calendar")
    htmx = {"x-csrftoken": token, "hx-request": "true"}
    r = await client.post("/calendar/blocks", data={"date": sat.isoformat(), "start": "12:00", "end": "13:00",
                                                    "note": "Lunch"}, headers=htmx)
    assert r.status_code == 200 and r.headers.get("hx-redirect"), r.text
    await wait_until(lambda: jobs_done(gdb))
    events = [e for e in google.live_events(OWNER_CAL) if e.get("summary") == "Blocked: Lunch"]
    assert len(events) == 1
    event = events[0]
    assert event["start"]["dateTime"].startswith(f"{sat.isoformat()}T12:00")
    assert event["end"]["dateTime"].startswith(f"{sat.isoformat()}T13:00")
    async with gdb.session() as s:
        block = await s.scalar(select(BusyBlock).where(BusyBlock.source == "owner"))
    assert block is not None and block.google_event_id == event["id"] and block.google_link_id == link.id
    page = (await client.get(day_page)).text
    assert f'id="block-{block.id}"' in page and 'data-google="synced"' in page

    # Our own block event coming back through sync is not a second busy time and conflicts with nothing.
    await runtime(client).sync.sync_link(link.id)
    async with gdb.session() as s:
        assert not list(await s.scalars(select(BusyBlock).where(BusyBlock.source == "event")))
    starts = [s.strftime("%H:%M") for s in (await scope.availability("Haircut", sat))[1]]
    assert "12:00" not in starts and "12:30" not in starts and "13:00" in starts

    # Google down: the block stands locally, the owner sees the retry and why; on recovery it is written.
    google.down = True
    google.expire_access_tokens()
    token = await csrf_token(client, "/calendar")
    htmx = {"x-csrftoken": token, "hx-request": "true"}
    await client.post("/calendar/blocks", data={"date": sat.isoformat(), "start": "09:00", "end": "09:30",
                                                "note": "Blocked"}, headers=htmx)

    async def retrying() -> bool:
        return 'data-google="retrying"' in (await client.get(day_page)).text

    await wait_until(retrying, timeout=15)
    assert "09:00" not in [s.strftime("%H:%M") for s in (await scope.availability("Haircut", sat))[1]]
    google.down = False
    await wait_until(lambda: len([e for e in google.live_events(OWNER_CAL) if e.get("summary") == "Blocked"]) == 1,
                   timeout=20)
    await wait_until(lambda: jobs_done(gdb))
    page = (await client.get(day_page)).text
    assert page.count('data-google="synced"') == 2 and 'data-google="retrying"' not in page

    # Removing the block deletes its event; the slot is free again.
    token = await csrf_token(client, "/calendar")
    r = await client.post(f"/calendar/blocks/{block.id}/delete", headers={"x-csrftoken": token, "hx-request": "true"})
    assert r.status_code == 200
    await wait_until(lambda: jobs_done(gdb))
    assert all(e["id"] != event["id"] for e in google.live_events(OWNER_CAL))
    assert "12:00" in [s.strftime("%H:%M") for s in (await scope.availability("Haircut", sat))[1]]


async def test_a_block_removed_before_its_event_was_written_leaves_nothing_in_google(
    app_client: tuple[AsyncTestClient[Litestar], Any], google: GoogleCalendarDouble, gdb: Database,
) -> None:
    client, business = app_client
    await linked(client, google, gdb)
    google.down = True
    google.expire_access_tokens()
    scope = CalendarScope(gdb.session_maker, business.id)
    sat = next_saturday()
    block = await scope.block_time(local(sat, 15), local(sat, 16), note="Training")
    await scope.unblock(block.id)
    google.down = False
    await wait_until(lambda: jobs_done(gdb), timeout=20)
    assert not any("Training" in e.get("summary", "") for e in google.live_events(OWNER_CAL))
