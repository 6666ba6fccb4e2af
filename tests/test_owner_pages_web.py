"""The owner pages as the web sees them: the public landing page, test calls kept out of the numbers, SQL day
buckets on DST days, compression, cache headers, ETag/304, the favicon, and the settings webhook hint."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.dashboard.common import local_day_bounds
from app.db.engine import Database
from app.db.owner_queries import OwnerScope
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import seed_call, sign_in
from tests.support.data import create_owner, earlier_today


@pytest.fixture
async def visitor(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        yield client


async def test_a_visitor_sees_the_landing_page_with_pricing_a_sample_call_and_sign_in(
    visitor: AsyncTestClient[Litestar],
) -> None:
    response = await visitor.get("/")
    assert response.status_code == 200
    text = response.text
    assert "Every call answered" in text and 'href="/auth/login"' in text
    assert "/static/sample-call.mp3?v=" in text and "illustration" in text
    assert "a minute" in text and "gpt-realtime" in text  # priced from the configured model
    assert "Sign out" not in text


async def test_test_calls_are_left_out_of_the_overview_unless_asked(settings: Settings, db: Database) -> None:
    user, business = await create_owner(db, timezone="UTC")
    await seed_call(db, business.id, started_at=earlier_today(5), cost_usd=1.0)
    await seed_call(db, business.id, started_at=earlier_today(4), caller_phone=None, cost_usd=2.0)
    async with AsyncTestClient(create_app(settings)) as client:
        sign_in(client, settings, user.id)

        def today(text: str) -> list[str]:
            block = text.split("<h2>Today</h2>")[1].split("</section>")[0]
            return re.findall(r'<div class="value">([^<]+)</div>', block)

        phone_only = (await client.get("/")).text
        assert today(phone_only)[0] == "1" and today(phone_only)[2] == "$1.00"
        assert "1 test call this month not counted" in phone_only and 'href="/?tests=1"' in phone_only
        everything = (await client.get("/?tests=1")).text
        assert today(everything)[0] == "2" and today(everything)[2] == "$3.00"
        assert "Including browser test calls" in everything


async def test_day_buckets_follow_the_business_timezone_across_a_dst_change(db: Database) -> None:
    _user, business = await create_owner(db, timezone="America/New_York")
    tz = ZoneInfo("America/New_York")
    days = [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]  # the 8th is 23 hours long
    for local in ("2026-03-07 23:59", "2026-03-08 00:01", "2026-03-08 23:30", "2026-03-09 00:30"):
        stamp = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=tz).astimezone(UTC)
        await seed_call(db, business.id, started_at=stamp)
    await seed_call(db, business.id, started_at=datetime(2026, 3, 8, 12, tzinfo=tz), caller_phone=None)
    scope = OwnerScope(db.session_maker, business.id)
    bounds = [local_day_bounds(d, tz) for d in days]
    assert await scope.daily_call_counts(bounds, include_tests=False) == [1, 2, 1]
    assert await scope.daily_call_counts(bounds, include_tests=True) == [1, 3, 1]


async def test_static_files_are_versioned_compressed_and_cached(visitor: AsyncTestClient[Litestar]) -> None:
    page = (await visitor.get("/auth/login")).text
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page)
    assert css, "stylesheet URL carries its content hash"
    versioned = await visitor.get(css.group(1), headers={"Accept-Encoding": "br, gzip"})
    assert versioned.status_code == 200
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert versioned.headers["content-encoding"] == "br"
    htmx = await visitor.get("/static/htmx.min.js", headers={"Accept-Encoding": "gzip"})
    assert htmx.headers["content-encoding"] == "gzip" and htmx.headers["cache-control"] == "public, no-cache"
    assert int(htmx.headers.get("content-length", len(htmx.content))) < 52_000
    again = await visitor.get("/static/htmx.min.js", headers={"Accept-Encoding": "gzip",
                                                              "If-None-Match": htmx.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    stale = await visitor.get("/static/app.css?v=000000000000")
    assert stale.headers["cache-control"] == "public, no-cache"  # a wrong version is never cached for long


async def test_pages_answer_304_when_unchanged_and_favicon_exists(visitor: AsyncTestClient[Litestar]) -> None:
    first = await visitor.get("/")
    assert first.headers["cache-control"] == "private, no-cache" and first.headers["etag"]
    second = await visitor.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 304
    icon = await visitor.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert (await visitor.get("/static/manifest.webmanifest")).status_code == 200


async def test_settings_show_the_public_webhook_address_even_once_twilio_is_configured(
    settings: Settings, db: Database
) -> None:
    user, _business = await create_owner(db)
    configured = replace(settings, public_base_url="https://receptionist.example.com",
                         twilio_account_sid="AC" + "0" * 32, twilio_auth_token="secret")
    async with AsyncTestClient(create_app(configured)) as client:
        sign_in(client, configured, user.id)
        text = (await client.get("/settings")).text
    assert "https://receptionist.example.com/twilio/voice" in text
    assert "https://receptionist.example.com/twilio/status" in text
    assert "only reachable from this machine" not in text
    async with AsyncTestClient(create_app(settings)) as client:
        sign_in(client, settings, user.id)
        local = (await client.get("/settings")).text
    assert "only reachable from this machine" in local and "PUBLIC_BASE_URL" in local
