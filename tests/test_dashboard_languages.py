"""Settings → Languages (issue 16): the owner sets a main language and others; bad choices are refused inline and
change nothing; only their own business changes; calls pages show each call's language."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import AuditEntry, Business, User
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, seed_call, sign_in
from tests.support.data import create_owner

HX = {"HX-Request": "true", "HX-Target": "language-settings"}


@pytest.fixture
async def owners(settings: Settings, db: Database) -> AsyncIterator[
        tuple[AsyncTestClient[Litestar], tuple[User, Business], tuple[User, Business]]]:
    mine = await create_owner(db, name="Mine")
    theirs = await create_owner(db, name="Theirs", languages=["fr-CA"])
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        sign_in(client, settings, mine[0].id)
        yield client, mine, theirs


async def languages_of(db: Database, business: Business) -> list[str]:
    async with db.session() as s:
        row = await s.get(Business, business.id)
        assert row is not None
        return list(row.languages)


async def test_owner_offers_spanish_beside_english_then_makes_it_the_main_language(owners: tuple, db: Database) -> None:
    client, (_user, mine), (_other, theirs) = owners
    settings_page = await client.get("/settings")
    assert settings_page.status_code == 200 and 'hx-get="/settings/languages"' in settings_page.text
    section = await client.get("/settings/languages", headers=HX)
    assert section.status_code == 200 and "<html" not in section.text
    assert '<option value="en-US" selected>' in section.text and "Spanish (Mexico) — español (México)" in section.text
    token = await csrf_token(client, "/settings/languages")
    saved = await client.post("/settings/languages", data={"primary": "en-US", "others": ["es-MX", "fr-FR"]},
                              headers={"x-csrftoken": token, **HX})
    assert saved.status_code == 200 and "Saved." in saved.text
    assert 'value="es-MX" checked' in saved.text and 'value="fr-FR" checked' in saved.text
    assert await languages_of(db, mine) == ["en-US", "es-MX", "fr-FR"]
    plain = await client.post("/settings/languages", data={"primary": "es-MX", "others": "en-US"},
                              headers={"x-csrftoken": token})
    assert plain.status_code == 303 and plain.headers["location"] == "/settings/languages?saved=1"
    assert await languages_of(db, mine) == ["es-MX", "en-US"]
    assert await languages_of(db, theirs) == ["fr-CA"]  # another business is never touched
    async with db.session() as s:
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.business_id == mine.id,
                                                            AuditEntry.action == "settings.changed"))).all()
    assert [e.detail for e in entries] == [{"languages": ["en-US", "es-MX", "fr-FR"]},
                                           {"languages": ["es-MX", "en-US"]}]


async def test_two_locales_of_one_language_or_an_unknown_one_are_refused(owners: tuple, db: Database) -> None:
    client, (_user, mine), _theirs = owners
    token = await csrf_token(client, "/settings/languages")
    refused = await client.post("/settings/languages", data={"primary": "es-MX", "others": ["es-ES"]},
                                headers={"x-csrftoken": token, **HX})
    assert refused.status_code == 200 and "are the same language" in refused.text and 'role="alert"' in refused.text
    assert '<option value="es-MX" selected>' in refused.text  # what was picked comes back as picked
    unknown = await client.post("/settings/languages", data={"primary": "klingon"},
                                headers={"x-csrftoken": token, **HX})
    assert unknown.status_code == 200 and "Pick the main language" in unknown.text
    assert await languages_of(db, mine) == ["en-US"]


async def test_calls_list_and_call_page_show_the_calls_language(owners: tuple, db: Database) -> None:
    client, (_user, mine), _theirs = owners
    _session, call = await seed_call(db, mine.id, language="es-MX",
                                     transcript="Caller: Hola, quisiera una cita.\nAgent: Claro.")
    listing = await client.get("/calls")
    assert listing.status_code == 200 and "Spanish (Mexico)" in listing.text
    page = await client.get(f"/calls/{call.id}")
    assert page.status_code == 200 and '<dd id="call-language">Spanish (Mexico)</dd>' in page.text
    assert "Hola, quisiera una cita." in page.text  # the transcript as spoken


async def test_signed_out_visitors_are_sent_to_sign_in(settings: Settings) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        response = await client.get("/settings/languages")
        assert response.status_code in {302, 303, 401}
