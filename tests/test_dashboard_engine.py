"""Settings → Voice engine: the owner picks Realtime, GPT-Live or the service default; only their own business
changes, bad input is refused inline, and the settings page links the section."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.db.engine import Database
from app.db.models import Business, User
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner

HX = {"HX-Request": "true", "HX-Target": "engine-settings"}


@pytest.fixture
async def owners(settings: Settings, db: Database) -> AsyncIterator[
        tuple[AsyncTestClient[Litestar], tuple[User, Business], tuple[User, Business]]]:
    mine = await create_owner(db, name="Mine")
    theirs = await create_owner(db, name="Theirs", voice_engine="realtime")
    async with AsyncTestClient(create_app(replace(settings, voice_engine_default="live"))) as client:
        client.follow_redirects = False
        sign_in(client, settings, mine[0].id)
        yield client, mine, theirs


async def engine_of(db: Database, business: Business) -> str | None:
    async with db.session() as s:
        row = await s.get(Business, business.id)
        assert row is not None
        return row.voice_engine


async def test_owner_picks_live_then_back_to_the_default(owners: tuple, db: Database) -> None:
    client, (_user, mine), (_other, theirs) = owners
    settings_page = await client.get("/settings")
    assert settings_page.status_code == 200 and 'hx-get="/settings/engine"' in settings_page.text
    section = await client.get("/settings/engine", headers=HX)
    assert section.status_code == 200 and "<html" not in section.text
    assert 'value="default" checked' in section.text and "now GPT-Live" in section.text  # the operator's default
    token = await csrf_token(client, "/settings/engine")
    saved = await client.post("/settings/engine", data={"voice_engine": "realtime"},
                              headers={"x-csrftoken": token, **HX})
    assert saved.status_code == 200 and "Saved." in saved.text and 'value="realtime" checked' in saved.text
    assert await engine_of(db, mine) == "realtime"
    plain = await client.post("/settings/engine", data={"voice_engine": "default"}, headers={"x-csrftoken": token})
    assert plain.status_code == 303 and plain.headers["location"] == "/settings/engine?saved=1"
    assert await engine_of(db, mine) is None
    assert await engine_of(db, theirs) == "realtime"  # another business is never touched
    full = await client.get("/settings/engine?saved=1")
    assert "<html" in full.text and "Saved." in full.text


async def test_an_unknown_engine_is_refused_inline_and_nothing_changes(owners: tuple, db: Database) -> None:
    client, (_user, mine), _theirs = owners
    token = await csrf_token(client, "/settings/engine")
    refused = await client.post("/settings/engine", data={"voice_engine": "turbo"},
                                headers={"x-csrftoken": token, **HX})
    assert refused.status_code == 200 and "Choose one of the engines listed." in refused.text
    assert await engine_of(db, mine) is None


async def test_signed_out_visitors_are_sent_to_sign_in(settings: Settings) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        response = await client.get("/settings/engine")
        assert response.status_code in {302, 303, 401}
