"""Owner pages with data written the way the call engine writes it: overview, calls, detail, CSV, audio,
sessions (live), appointments, customers, billing, and the empty states a new owner sees."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Appointment, Billing, Business, Call, Session, SessionStatus, User
from app.db.services import BusinessScope
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import add_event, csrf_token, seed_call, sign_in
from tests.support.data import create_owner, earlier_today


@dataclass
class Ctx:
    client: AsyncTestClient[Litestar]
    db: Database
    settings: Settings
    user: User
    business: Business


@pytest.fixture
async def ctx(settings: Settings, db: Database) -> AsyncIterator[Ctx]:
    user, business = await create_owner(db, timezone="UTC")
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        sign_in(client, settings, user.id)
        yield Ctx(client, db, settings, user, business)


TOOL_EVENTS = [
    ("caller", "Hi, can I book a haircut for tomorrow?", {}),
    ("agent", "Let me check that for you.", {}),
    ("tool_call", "", {"name": "check_availability", "arguments": {"service": "Haircut", "date": "2026-03-03"}}),
    ("tool_result", "", {"name": "check_availability", "result": {"slots": ["10:00", "10:30"]}}),
    ("tool_call", "", {"name": "book_appointment", "arguments": {"start": "bogus"}}),
    ("tool_result", "", {"name": "book_appointment", "error": {"code": "slot_taken", "message": "taken"}}),
    ("agent", "You're booked for 10am.", {}),
]


# A call's row in the calls list: its first cell links to the call.
ROW = '<td data-label="When"><a href="/calls/'


async def test_empty_states_guide_a_new_owner(ctx: Ctx) -> None:
    for path in ("/", "/calls"):
        text = (await ctx.client.get(path)).text
        assert "Place a test call" in text and 'href="/test"' in text, path
        assert "Connect a Twilio number" in text, path
    assert "Place a test call" in (await ctx.client.get("/sessions")).text
    assert "place a test call" in (await ctx.client.get("/appointments")).text
    assert "No customers yet" in (await ctx.client.get("/customers")).text
    billing = (await ctx.client.get("/billing")).text
    assert "No invoices yet" in billing and "Upgrade" not in billing


async def test_overview_counts_today_and_month_and_draws_the_chart(ctx: Ctx) -> None:
    now = datetime.now(UTC)
    await seed_call(ctx.db, ctx.business.id, started_at=earlier_today(1), duration_seconds=120, cost_usd=0.5)
    await seed_call(ctx.db, ctx.business.id, started_at=earlier_today(2), duration_seconds=60, cost_usd=0.25)
    await seed_call(ctx.db, ctx.business.id, started_at=now - timedelta(days=40), cost_usd=9.0)  # outside both
    _other_user, other = await create_owner(ctx.db)
    await seed_call(ctx.db, other.id, started_at=now, cost_usd=100.0)  # another business: never counted
    response = await ctx.client.get("/")
    assert response.status_code == 200
    text = response.text
    today = text.split("<h2>Today</h2>")[1].split("</section>")[0]
    values = re.findall(r'<div class="value">([^<]+)</div>', today)
    assert values == ["2", "3.0", "$0.75", "0"]
    assert "<svg" in text and 'class="bar"' in text and "Calls per day" in text
    assert re.search(r"<title>[^<]*: 2 calls</title>", text)
    assert "$100" not in text


async def test_calls_list_filters_search_and_pages(ctx: Ctx) -> None:
    base = datetime(2026, 3, 1, 15, tzinfo=UTC)
    for i in range(30):
        await seed_call(ctx.db, ctx.business.id, started_at=base + timedelta(hours=i), caller_phone=f"+1555000{i:04d}",
                        transcript=f"Caller: call number {i}\nAgent: ok", status="completed" if i % 3 else "failed")
    await seed_call(ctx.db, ctx.business.id, started_at=base - timedelta(days=3), caller_phone="+15559998888",
                    transcript="Caller: Do you do balayage 100% natural?\nAgent: We do.")
    first = (await ctx.client.get("/calls")).text
    assert first.count('<tr>\n        ' + ROW) == 25
    assert "+15550000029" in first and "Older" in first  # newest first
    second = (await ctx.client.get("/calls?page=2")).text
    assert second.count(ROW) == 6 and "Newer" in second and "Older" not in second
    failed = (await ctx.client.get("/calls", params={"status": "failed"})).text
    assert failed.count(ROW) == 10
    day = (await ctx.client.get("/calls", params={"from": "2026-02-26", "to": "2026-02-26"})).text
    assert day.count(ROW) == 1 and "+15559998888" in day
    found = await ctx.client.get("/calls", params={"q": "balayage natural"}, headers={
        "HX-Request": "true", "HX-Target": "calls-results"})
    assert found.text.startswith('\n<section id="calls-results"') or 'id="calls-results"' in found.text[:200]
    assert "<html" not in found.text and found.text.count(ROW) == 1
    # LIKE wildcards in the search are literal characters.
    assert (await ctx.client.get("/calls", params={"q": "100%"})).text.count(ROW) == 1
    assert (await ctx.client.get("/calls", params={"q": "_"})).text.count(ROW) == 0
    by_number = (await ctx.client.get("/calls", params={"q": "555 999 8888"})).text
    assert by_number.count(ROW) == 1
    nothing = (await ctx.client.get("/calls", params={"q": "zebra"})).text
    assert "No calls match" in nothing
    bad = await ctx.client.get("/calls", params={"from": "yesterday", "status": "weird", "page": "x"})
    assert bad.status_code == 200 and "use a date like" in bad.text and "unknown status" in bad.text


async def test_csv_export_follows_the_filters_and_neutralises_formulas(ctx: Ctx) -> None:
    await seed_call(ctx.db, ctx.business.id, transcript="Caller: haircut please", summary="=HYPERLINK(\"x\")")
    await seed_call(ctx.db, ctx.business.id, transcript="Caller: colour please", status="failed")
    response = await ctx.client.get("/calls/export.csv", params={"q": "haircut"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["summary"].startswith("'=") and rows[0]["caller_phone"] == "+15551230001"
    assert rows[0]["cost_usd"] == "0.420000"
    everything = list(csv.DictReader(io.StringIO((await ctx.client.get("/calls/export.csv")).text)))
    assert len(everything) == 2


async def test_csv_export_streams_every_row_in_batches(ctx: Ctx) -> None:
    from app.dashboard import calls as calls_module

    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(7):
        await seed_call(
            ctx.db, ctx.business.id, started_at=base + timedelta(minutes=i % 3), caller_phone=f"+1555111{i:04d}"
        )
    original = calls_module.CSV_BATCH
    calls_module.CSV_BATCH = 2  # several keyset pages, with ties on started_at between pages
    try:
        rows = list(csv.DictReader(io.StringIO((await ctx.client.get("/calls/export.csv")).text)))
    finally:
        calls_module.CSV_BATCH = original
    assert sorted(r["caller_phone"] for r in rows) == [f"+1555111{i:04d}" for i in range(7)]
    assert len({r["call_id"] for r in rows}) == 7


async def test_call_detail_shows_conversation_tools_timings_cost_summary_and_audio(ctx: Ctx) -> None:
    recording = ctx.settings.recordings_dir / str(ctx.business.id) / "call.wav"
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"RIFF....WAVEfmt fake-audio")
    _session, call = await seed_call(
        ctx.db, ctx.business.id, events=TOOL_EVENTS, summary="Booked a haircut for tomorrow at 10.",
        latencies=[{"turn": 1, "response_ms": 640, "supervisor_ms": 1200}, {"turn": 2, "response_ms": 410}],
        usage={"realtime": {"input_tokens": 1000}}, recording_path=str(recording), end_reason="goodbye",
    )
    text = (await ctx.client.get(f"/calls/{call.id}")).text
    assert "Hi, can I book a haircut for tomorrow?" in text and "You&#39;re booked for 10am." in text
    assert text.index("Let me check") < text.index("check_availability") < text.index("booked for 10am")
    assert "<details class=\"tool tool_call\"" in text and '"service": "Haircut"' in text
    # Plain words in view, the tool's own name and raw result one click away (issue 9).
    assert "Booking: did not work" in text and "slot_taken" in text and "<code>book_appointment</code>" in text
    assert "00:01" in text  # event offsets as mm:ss
    assert "640 ms" in text and "1200 ms" in text and "410 ms" in text
    assert "$0.42" in text and "1,200" in text
    assert "Booked a haircut for tomorrow at 10." in text
    assert f'src="/calls/{call.id}/recording"' in text
    audio = await ctx.client.get(f"/calls/{call.id}/recording")
    assert audio.status_code == 200 and audio.content == recording.read_bytes()
    assert audio.headers["accept-ranges"] == "bytes" and audio.headers["content-disposition"].startswith("inline")
    # Seeking: the player asks for byte ranges and gets exactly those bytes.
    whole = recording.read_bytes()
    for header, status, body, content_range in (
        ("bytes=4-7", 206, whole[4:8], f"bytes 4-7/{len(whole)}"),
        ("bytes=10-", 206, whole[10:], f"bytes 10-{len(whole) - 1}/{len(whole)}"),
        ("bytes=-5", 206, whole[-5:], f"bytes {len(whole) - 5}-{len(whole) - 1}/{len(whole)}"),
        ("bytes=0-99999", 206, whole, f"bytes 0-{len(whole) - 1}/{len(whole)}"),
    ):
        part = await ctx.client.get(f"/calls/{call.id}/recording", headers={"Range": header})
        assert (part.status_code, part.content, part.headers["content-range"]) == (status, body, content_range)
    beyond = await ctx.client.get(f"/calls/{call.id}/recording", headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole)}"
    saved = await ctx.client.get(f"/calls/{call.id}/recording?download=1")
    assert saved.headers["content-disposition"].startswith("attachment; filename=\"call-")
    assert f'href="/calls/{call.id}/recording?download=1"' in text
    assert audio.headers["content-type"].startswith("audio/wav")


async def test_recording_outside_the_recordings_dir_or_missing_is_404(ctx: Ctx, tmp_path: Path) -> None:
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"not yours")
    _s, escaped = await seed_call(ctx.db, ctx.business.id, recording_path=str(outside))
    _s, missing = await seed_call(ctx.db, ctx.business.id,
                                  recording_path=str(ctx.settings.recordings_dir / "gone.wav"))
    _s, none = await seed_call(ctx.db, ctx.business.id)
    for call in (escaped, missing, none):
        assert (await ctx.client.get(f"/calls/{call.id}/recording")).status_code == 404
    assert (await ctx.client.get("/calls/not-a-uuid")).status_code == 404


async def test_live_session_view_updates_and_stops_polling_when_done(ctx: Ctx) -> None:
    session, call = await seed_call(ctx.db, ctx.business.id, status="in_progress",
                                    session_status=SessionStatus.ACTIVE.value, events=TOOL_EVENTS[:1])
    page = (await ctx.client.get(f"/sessions/{session.id}")).text
    assert f'hx-get="/sessions/{session.id}/live"' in page and 'data-poll-ms="1000"' in page
    assert "book a haircut" in page
    await add_event(ctx.db, call, 2, "agent", "Sure — what time suits you?")
    live = (await ctx.client.get(f"/sessions/{session.id}/live", headers={"HX-Request": "true"})).text
    assert "what time suits you?" in live and 'data-poll-ms="1000"' in live and "<html" not in live
    listing = (await ctx.client.get("/sessions/live")).text
    assert "what time suits you?" in listing and str(session.id) in listing and 'data-poll-ms="1000"' in listing
    assert f'<details class="live-session" id="live-{session.id}">' in listing  # rows the page keeps open
    async with ctx.db.session() as s, s.begin():
        row = await s.get(Session, session.id)
        call_row = await s.get(Call, call.id)
        assert row is not None and call_row is not None
        row.status, call_row.status = SessionStatus.COMPLETED.value, "abandoned"
    done = (await ctx.client.get(f"/sessions/{session.id}/live")).text
    # Polling stops; the session shows its call's outcome in the same words as the call page.
    assert "data-poll-ms" not in done and "Hung up early" in done and "See the call’s record" in done
    idle = (await ctx.client.get("/sessions/live")).text
    assert "No calls right now" in idle and 'data-poll-ms="15000"' in idle
    assert "Hung up early" in (await ctx.client.get("/sessions")).text
    assert str(session.id) in (await ctx.client.get("/sessions")).text


async def test_appointments_list_and_cancel(ctx: Ctx) -> None:
    scope = BusinessScope(ctx.db.session_maker, ctx.business.id)
    customer = await scope.save_customer("+15552223333", name="Dana")
    _s, call = await seed_call(ctx.db, ctx.business.id)
    start = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(days=7)
    while start.weekday() > 4:
        start += timedelta(days=1)
    appointment = await scope.book(customer.id, "Haircut", start, call_id=call.id)
    page = (await ctx.client.get("/appointments")).text
    assert "Dana" in page and f'href="/calls/{call.id}"' in page and f"/appointments/{appointment.id}/cancel" in page
    token = await csrf_token(ctx.client, "/appointments")
    response = await ctx.client.post(f"/appointments/{appointment.id}/cancel",
                                     headers={"x-csrftoken": token, "HX-Request": "true"})
    assert response.status_code == 200 and "cancelled" in response.text and "<html" not in response.text
    async with ctx.db.session() as s:
        assert (await s.get(Appointment, appointment.id)).status == "cancelled"  # type: ignore[union-attr]
    customer_page = (await ctx.client.get(f"/customers/{customer.id}")).text
    assert "Dana" in customer_page and "Haircut" in customer_page and f"/calls/{call.id}" not in customer_page
    assert "Dana" in (await ctx.client.get("/customers", params={"q": "dan"})).text


async def test_billing_current_period_per_call_and_past_periods(ctx: Ctx) -> None:
    now = datetime.now(UTC)
    await seed_call(ctx.db, ctx.business.id, started_at=earlier_today(3), duration_seconds=90,
                    billable_seconds=90.0, cost_usd=0.30, input_tokens=1000, output_tokens=500)
    await seed_call(ctx.db, ctx.business.id, started_at=earlier_today(9), duration_seconds=30,
                    billable_seconds=30.0, cost_usd=0.20, input_tokens=10, output_tokens=5)
    await seed_call(ctx.db, ctx.business.id, started_at=earlier_today(12), caller_phone=None,
                    duration_seconds=300, cost_usd=0.0, input_tokens=0, output_tokens=0)  # a browser test call
    await seed_call(ctx.db, ctx.business.id, started_at=now - timedelta(days=70), cost_usd=5.0)
    async with ctx.db.session() as s, s.begin():
        s.add(Billing(business_id=ctx.business.id, period="2026-01", amount_cents=1234, status="paid"))
    text = (await ctx.client.get("/billing")).text
    assert '<div class="value" id="period-cost">$0.50</div>' in text
    assert "1,515" in text  # tokens
    # Trial minutes: every started minute (90 s → 2, 30 s → 1); the test call isn't billed.
    assert '<strong id="minutes-used">3.0</strong> of <span id="minutes-included">30</span>' in text
    assert 'aria-valuenow="10"' in text
    assert text.count("<tr><td data-label=\"Call\"><a href=\"/calls/") == 3
    assert "2026-01" in text and "12.34 USD" in text and "Free trial" in text


async def test_checkout_button_only_when_plans_are_configured(data_dir: Path, db: Database) -> None:
    from tests.conftest import make_settings

    user, _business = await create_owner(db)
    settings = make_settings(data_dir, POLAR_ACCESS_TOKEN="polar_test_token", POLAR_PLANS=(
        '[{"key": "starter", "name": "Starter", "product_id": "prod_1", "included_minutes": 300}]'))
    async with AsyncTestClient(create_app(settings)) as client:
        sign_in(client, settings, user.id)
        text = (await client.get("/billing")).text
    assert 'action="/billing/checkout"' in text and "Upgrade to Starter" in text and 'value="starter"' in text


async def test_pages_are_readable_html_with_nav(ctx: Ctx) -> None:
    for path in ("/", "/calls", "/sessions", "/appointments", "/customers", "/billing", "/settings"):
        response = await ctx.client.get(path)
        assert response.status_code == 200, path
        assert 'name="viewport"' in response.text and 'href="/test"' in response.text
        assert response.headers["content-type"].startswith("text/html")
    async with ctx.db.session() as s:
        assert (await s.scalar(select(Business).where(Business.id == ctx.business.id))) is not None


async def test_dashboard_queries_work_on_every_database_mode(any_db: Database, db_mode_settings: Settings) -> None:
    """Search (LIKE with escapes), keyset CSV paging, aggregates and live sessions on SQLite and libSQL."""
    from app.dashboard import calls as calls_module

    user, business = await create_owner(any_db, timezone="UTC")
    now = datetime.now(UTC)
    for i in range(3):
        await seed_call(any_db, business.id, started_at=now - timedelta(minutes=i), caller_phone=f"+1555444{i:04d}",
                        transcript=f"Caller: 50% off trims number {i}", events=TOOL_EVENTS[:2])
    session, _call = await seed_call(any_db, business.id, status="in_progress",
                                     session_status=SessionStatus.ACTIVE.value, events=TOOL_EVENTS[:1])
    async with AsyncTestClient(create_app(db_mode_settings)) as client:
        sign_in(client, db_mode_settings, user.id)
        assert (await client.get("/calls", params={"q": "50% TRIMS"})).text.count(ROW) == 3
        assert (await client.get("/calls", params={"q": "5_%"})).text.count(ROW) == 0
        original = calls_module.CSV_BATCH
        calls_module.CSV_BATCH = 2
        try:
            rows = list(csv.DictReader(io.StringIO((await client.get("/calls/export.csv")).text)))
        finally:
            calls_module.CSV_BATCH = original
        assert len({r["call_id"] for r in rows}) == 4
        assert '<div class="value">4</div>' in (await client.get("/")).text
        assert "$1.68" in (await client.get("/billing")).text
        assert "book a haircut" in (await client.get(f"/sessions/{session.id}/live")).text
