"""The owner's inbox pages in-process: messages (states, search, who handled it), the nav count, the attention
list, outcomes on the calls list/CSV/call page, customer pages, and Settings → Notifications with its test
buttons (through a real SMTP server)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.db.engine import Database
from app.db.models import Business, Call, User
from app.db.services import BusinessScope
from app.inbox.outcomes import settle_call
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings, migrated_database
from tests.doubles.smtp_server import SmtpServer
from tests.support.dashboard import csrf_token, seed_call, sign_in
from tests.support.data import create_owner
from tests.support.waiting import wait_until

HX = {"HX-Request": "true"}


@dataclass
class Ctx:
    client: AsyncTestClient[Litestar]
    db: Database
    settings: Settings
    user: User
    business: Business
    smtp: SmtpServer

    async def post(self, path: str, data: dict[str, str] | None = None, *, htmx: bool = True) -> Any:
        token = await csrf_token(self.client, "/messages")
        return await self.client.post(path, data={"_csrf_token": token, **(data or {})},
                                      headers={**(HX if htmx else {}), "x-csrftoken": token})


@pytest.fixture
async def ctx(data_dir: Any) -> AsyncIterator[Ctx]:
    with SmtpServer() as smtp:
        settings = make_settings(data_dir, SMTP_URL=smtp.url, SMTP_FROM="desk@salon.example")
        async with migrated_database(settings) as db:
            user, business = await create_owner(db, timezone="UTC", email="sam@salon.example")
            async with AsyncTestClient(create_app(settings)) as client:
                client.follow_redirects = False
                sign_in(client, settings, user.id)
                yield Ctx(client, db, settings, user, business, smtp)


async def message_call(ctx: Ctx, *, name: str, phone: str, body: str, urgency: str = "normal",
                       business: Business | None = None, **call: Any) -> Call:
    business = business or ctx.business
    _session, row = await seed_call(ctx.db, business.id, caller_phone=phone, **call)
    await BusinessScope(ctx.db.session_maker, business.id).take_message(
        body, caller_name=name, caller_phone=phone, call_id=row.id, urgency=urgency)
    async with ctx.db.session() as s, s.begin():
        await settle_call(s, row.id)
    return row


def unread_count(html: str) -> int:
    match = re.search(r'<span class="count"[^>]*>(\d+)</span>', html)
    return int(match.group(1)) if match else 0


async def test_messages_page_marks_handled_and_unread_and_the_nav_count_follows(ctx: Ctx) -> None:
    first = await message_call(ctx, name="Ann Lee", phone="+15553334444", body="Please call about my refund.")
    await message_call(ctx, name="Bo Chan", phone="+15553335555", body="Is parking free?", urgency="urgent")
    other_user, other = await create_owner(ctx.db, name="Bo's Barbers", email="bo@barbers.example")
    theirs = await message_call(ctx, name="Secret Bravo", phone="+15553336666", body="bravo secret", business=other)

    page = (await ctx.client.get("/messages")).text
    assert 'id="nav-unread" hx-get="/messages/count"' in page
    assert "Ann Lee" in page and 'href="tel:+15553334444"' in page and f'href="/calls/{first.id}"' in page
    assert "Please call about my refund." in page and "urgent" in page and "Secret Bravo" not in page
    assert page.index("Bo Chan") < page.index("Ann Lee")  # urgent first
    assert unread_count((await ctx.client.get("/messages/count")).text) == 2

    message_id = re.search(r'id="message-([0-9a-f-]+)"[^>]*data-state="unread"', page[page.index("Ann Lee") - 900:])
    assert message_id
    done = await ctx.post(f"/messages/{message_id.group(1)}/handled")
    assert done.status_code == 200 and done.headers["HX-Trigger"] == "inbox-changed"
    assert 'data-state="handled"' in done.text and "Handled by Owner sam" in done.text and "Mark unread" in done.text
    assert unread_count((await ctx.client.get("/messages/count")).text) == 1
    unread = (await ctx.client.get("/messages")).text
    assert "Ann Lee" not in unread and "Bo Chan" in unread
    handled = (await ctx.client.get("/messages", params={"state": "handled"})).text
    assert "Ann Lee" in handled and "Bo Chan" not in handled
    again = await ctx.post(f"/messages/{message_id.group(1)}/unread")
    assert 'data-state="unread"' in again.text and "Mark handled" in again.text
    assert unread_count((await ctx.client.get("/messages/count")).text) == 2

    # Search by words, name or number; htmx gets only the results.
    found = await ctx.client.get("/messages", params={"state": "all", "q": "parking"},
                                 headers={**HX, "HX-Target": "messages-results"})
    assert found.text.startswith('<section id="messages-results">') and "Bo Chan" in found.text
    assert "Ann Lee" not in found.text
    assert "Ann Lee" in (await ctx.client.get("/messages", params={"state": "all", "q": "3334444"})).text
    assert "No messages match" in (await ctx.client.get("/messages", params={"q": "zzz"})).text
    # Another owner's message is a 404 and stays unread; a bad id too.
    async with ctx.db.session() as s:
        from sqlalchemy import select

        from app.db.models import Message
        their_message = await s.scalar(select(Message).where(Message.call_id == theirs.id))
    assert their_message is not None
    assert (await ctx.post(f"/messages/{their_message.id}/handled")).status_code == 404
    assert (await ctx.post("/messages/not-an-id/handled")).status_code == 404
    async with ctx.db.session() as s:
        assert (await s.get(Message, their_message.id)).handled_at is None  # type: ignore[union-attr]
    assert other_user.id != ctx.user.id
    # Without htmx (no JavaScript) the form posts and comes back to the list.
    plain = await ctx.post(f"/messages/{message_id.group(1)}/handled", htmx=False)
    assert plain.status_code == 303


async def test_overview_lists_what_needs_attention_first(ctx: Ctx) -> None:
    await message_call(ctx, name="Ann Lee", phone="+15553334444", body="Call me back please.")
    now = datetime.now(UTC)
    _s, failed = await seed_call(ctx.db, ctx.business.id, status="failed", end_reason="realtime_closed",
                                 started_at=now - timedelta(minutes=3))
    _s, transfer = await seed_call(ctx.db, ctx.business.id, started_at=now - timedelta(minutes=2),
                                   events=[("tool_call", "transfer_to_human", {"name": "transfer_to_human"})])
    async with ctx.db.session() as s, s.begin():
        await settle_call(s, failed.id)
        await settle_call(s, transfer.id)
    scope = BusinessScope(ctx.db.session_maker, ctx.business.id)
    customer = await scope.save_customer("+15553337777", name="Cy")
    start = (now + timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)
    while start.weekday() >= 5:
        start += timedelta(days=1)
    booked = await scope.book(customer.id, "Haircut", start)
    await scope.cancel_by_owner(booked.id)
    text = (await ctx.client.get("/")).text
    section = text[text.index('id="attention"'):text.index("</section>", text.index('id="attention"'))]
    assert "1 unread message" in section and "Call me back please." in section
    assert "Calls that failed or were cut off today" in section and f"/calls/{failed.id}" in section
    assert "the receptionist&#39;s connection dropped" in section
    assert "Transfers that did not go through today" in section and f"/calls/{transfer.id}" in section
    assert "New bookings today" in section and "Cancellations today" in section and "Cy" in section
    assert "realtime_closed" not in text


async def test_outcomes_on_the_calls_list_csv_and_call_page_in_plain_words(ctx: Ctx) -> None:
    row = await message_call(ctx, name="Ann Lee", phone="+15553334444", body="Refund please.",
                             end_reason="caller_hung_up",
                             events=[("tool_call", "", {"name": "getNextResponseFromSupervisor", "arguments": {}}),
                                     ("tool_result", "", {"name": "take_message", "result": {"saved": True}}),
                                     ("system", "call ended: caller_hung_up", {"reason": "caller_hung_up"})])
    _s, plain = await seed_call(ctx.db, ctx.business.id, caller_phone="+15553339999")
    async with ctx.db.session() as s, s.begin():
        await settle_call(s, plain.id)
    listing = (await ctx.client.get("/calls")).text
    assert 'data-outcome="message_taken"' in listing and "Message taken" in listing and "Follow up" in listing
    only = (await ctx.client.get("/calls", params={"follow_up": "1"})).text
    assert f"/calls/{row.id}" in only and f"/calls/{plain.id}" not in only
    by_outcome = (await ctx.client.get("/calls", params={"outcome": "message_taken"})).text
    assert f"/calls/{row.id}" in by_outcome and f"/calls/{plain.id}" not in by_outcome
    assert "unknown outcome" in (await ctx.client.get("/calls", params={"outcome": "nonsense"})).text
    exported = list(csv.DictReader(io.StringIO((await ctx.client.get("/calls/export.csv",
                                                                      params={"follow_up": "1"})).text)))
    assert [(r["outcomes"], r["needs_follow_up"], r["end_reason"]) for r in exported] == [
        ("Message taken", "yes", "the caller hung up")]
    detail = (await ctx.client.get(f"/calls/{row.id}")).text
    assert "Needs follow-up" in detail and "Messages left on this call" in detail and "Refund please." in detail
    assert 'id="notifications"' in detail and "sam@salon.example" in detail
    assert "Call ended: the caller hung up" in detail and "Looked it up" in detail
    # Engine names appear only inside the raw-data <details>, never in the visible text.
    visible = re.sub(r"<details.*?</details>", "", detail, flags=re.S)
    for internal in ("caller_hung_up", "getNextResponseFromSupervisor", "take_message", "prices_as_of"):
        assert internal not in visible, internal
    async with ctx.db.session() as s:
        linked = await s.get(Call, row.id)
    assert linked is not None and linked.customer_id is not None
    customer_page = (await ctx.client.get(f"/customers/{linked.customer_id}")).text
    assert "Refund please." in customer_page and f"/calls/{row.id}" in customer_page


async def test_notification_settings_save_validate_and_test_each_channel(ctx: Ctx) -> None:
    section = (await ctx.client.get("/settings/notifications", headers=HX)).text
    assert section.startswith('<section class="card" id="notification-settings">')
    assert 'hx-get="/settings/notifications"' in (await ctx.client.get("/settings")).text
    bad = await ctx.post("/settings/notifications", {"sms_enabled": "on", "sms_to": "12", "digest_time": "7pm"})
    assert bad.status_code == 200 and "field-error" in bad.text and "use a time like 18:00" in bad.text
    assert 'value="7pm"' in bad.text  # what was typed is kept
    saved = await ctx.post("/settings/notifications", {
        "email_enabled": "on", "email_to": "frontdesk@salon.example", "on_follow_up": "on", "digest_enabled": "on",
        "digest_time": "19:30", "confirmations_enabled": "on"})
    assert "Notification settings saved." in saved.text and 'value="frontdesk@salon.example"' in saved.text
    prefs = await _prefs(ctx)
    assert prefs.email_to == "frontdesk@salon.example" and prefs.digest_time == "19:30" and not prefs.on_bookings
    async with ctx.db.session() as s:
        from sqlalchemy import select

        from app.db.models import Job
        digest = await s.scalar(select(Job).where(Job.kind == "digest"))
    assert digest is not None and digest.payload["at"] == "19:30"

    tested = await ctx.post("/settings/notifications/test", {"channel": "email"})
    assert "Test email sent to frontdesk@salon.example: the mail server accepted it." in tested.text
    assert [m["To"] for m in ctx.smtp.messages] == ["frontdesk@salon.example"]
    ctx.smtp.stop()
    started = time.monotonic()
    down = await ctx.post("/settings/notifications/test", {"channel": "email"})
    assert "is not sent yet; it will be retried" in down.text and "could not reach the mail server" in down.text
    assert time.monotonic() - started < 10
    texts = await ctx.post("/settings/notifications/test", {"channel": "sms"})
    assert "No address to send to" in texts.text


async def _prefs(ctx: Ctx) -> Any:
    from app.db.inbox import InboxScope

    return await InboxScope(ctx.db.session_maker, ctx.business.id).preferences()


async def test_texts_to_callers_digests_and_every_notification_show_their_delivery_state(ctx: Ctx) -> None:
    from sqlalchemy import select, update

    from app.db.models import Job, Notification

    saved = await ctx.post("/settings/notifications", {
        "email_enabled": "on", "on_bookings": "on", "digest_enabled": "on", "digest_time": "18:00",
        "confirmations_enabled": "on", "reminders_enabled": "on", "reminder_time": "18:00"})
    assert 'href="/notifications"' in saved.text  # the settings lead to the list of what was sent
    async with ctx.db.session() as s, s.begin():
        await s.execute(update(Business).where(Business.id == ctx.business.id).values(phone_number="+15550009999"))
    # A phone booking from the caller's own line: the caller's confirmation text (texting isn't set up on this
    # server, so it fails, with why), the owner's email (sent), and tomorrow's reminder waiting for its time.
    _session, call = await seed_call(ctx.db, ctx.business.id, caller_phone="+15551230001")
    scope = BusinessScope(ctx.db.session_maker, ctx.business.id)
    customer = await scope.save_customer("+15551230001", name="Ann Lee")
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    appointment = await scope.book(customer.id, "Haircut", datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
                                   call_id=call.id)

    async def settled() -> bool:
        async with ctx.db.session() as s:
            rows = list(await s.scalars(select(Notification).where(Notification.appointment_id == appointment.id)))
        return len(rows) == 2 and all(n.status != "pending" for n in rows)

    await wait_until(settled)
    rows = (await ctx.client.get("/appointments")).text
    assert 'data-event="confirm_booked" data-status="failed"' in rows and "texting is not set up" in rows
    assert 'data-event="reminder" data-status="scheduled"' in rows and "Reminder text: due" in rows
    detail = (await ctx.client.get(f"/calendar/appointments/{appointment.id}")).text
    assert "Confirmation to the caller by text to +15551230001" in detail and "not sent" in detail
    assert "New booking by email to sam@salon.example" in detail and 'data-status="sent"' in detail

    # The daily digest, when its time comes, goes out by email and is listed with its state.
    async with ctx.db.session() as s, s.begin():
        await s.execute(update(Job).where(Job.kind == "digest").values(run_after=datetime.now(UTC)))

    async def digest_sent() -> bool:
        async with ctx.db.session() as s:
            n = await s.scalar(select(Notification).where(Notification.event == "digest"))
        return n is not None and n.status == "sent"

    await wait_until(digest_sent)
    outbox = (await ctx.client.get("/notifications")).text
    assert re.search(r'data-event="digest" data-status="sent"[^>]*>\s*<td>', outbox)
    assert "Daily digest for " in outbox and "by email" in outbox
    assert 'data-event="confirm_booked" data-status="failed"' in outbox and "texting is not set up" in outbox
    problems = (await ctx.client.get("/notifications?state=problems")).text
    assert 'data-event="confirm_booked"' in problems and 'data-event="digest"' not in problems
    assert "None in this state." in (await ctx.client.get("/notifications?state=waiting")).text

    # Another business's notifications are never listed here.
    from app.inbox.outbox import add_notification

    _other_user, other = await create_owner(ctx.db, email="other@shop.example", name="Other Shop")
    async with ctx.db.session() as s, s.begin():
        await add_notification(s, business_id=other.id, key=f"digest:{other.id}:x:email", event="digest",
                               channel="email", recipient="other@shop.example", details={"day": "2026-01-01"})
    assert "other@shop.example" not in (await ctx.client.get("/notifications")).text
