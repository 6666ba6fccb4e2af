"""Onboarding creates the owner's business; Settings edits it; errors come back inline and lose nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.auth.users import user_for_email
from app.db.engine import Database
from app.db.models import Business, User
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner

HX = {"HX-Request": "true", "HX-Target": "business-form"}


def valid_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "name": "Bright Smiles Dental",
        "timezone": "Europe/London",
        "transfer_number": "020 7946 0999",
        "address": "1 High St",
        "greeting": "Bright Smiles, how can I help?",
        "instructions": "We don't take walk-ins.",
        "voice": "coral",
        "max_call_minutes": "15",
        "recording_enabled": "on",
        "recording_retention_days": "30 days",
        "hours_mon": "09:00-12:00, 13:00-17:30",
        "hours_tue": "9:00-17:00",
        "hours_wed": "", "hours_thu": "closed", "hours_fri": "22:00-02:00 overnight", "hours_sat": "", "hours_sun": "",
        "service_name": ["Check-up", "Cleaning", ""],
        "service_minutes": ["30", "45", ""],
        "service_price": ["60", "75.5", ""],
    }
    form.update(overrides)
    return form


@pytest.fixture
async def newcomer(settings: Settings, db: Database) -> AsyncIterator[tuple[AsyncTestClient[Litestar], User]]:
    user = await user_for_email(db, "new.owner@example.com")
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        sign_in(client, settings, user.id)
        yield client, user


async def _business(db: Database, user: User) -> Business | None:
    async with db.session() as s:
        return await s.scalar(select(Business).where(Business.owner_id == user.id))


async def test_first_sign_in_goes_to_onboarding_which_creates_the_business(
    newcomer: tuple[AsyncTestClient[Litestar], User], db: Database
) -> None:
    client, user = newcomer
    for path in ("/", "/calls", "/settings", "/billing"):
        assert (await client.get(path)).headers["location"] == "/onboarding", path
    page = await client.get("/onboarding")
    assert page.status_code == 200 and "Create my receptionist" in page.text
    token = await csrf_token(client, "/onboarding")
    response = await client.post("/onboarding", data=valid_form(), headers={"x-csrftoken": token, **HX})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/"
    business = await _business(db, user)
    assert business is not None
    # A London business's national number is stored in E.164; its own number is picked later, in Settings.
    assert (business.name, business.timezone, business.phone_number, business.transfer_number) == (
        "Bright Smiles Dental", "Europe/London", None, "+442079460999")
    assert business.weekly_hours == {
        "mon": [["09:00", "12:00"], ["13:00", "17:30"]], "tue": [["09:00", "17:00"]], "wed": [], "thu": [],
        "fri": [["22:00", "02:00"]], "sat": [], "sun": []}
    assert business.services == [{"name": "Check-up", "minutes": 30, "price": 60.0},
                                 {"name": "Cleaning", "minutes": 45, "price": 75.5}]
    assert (business.voice, business.max_call_seconds, business.recording_enabled) == ("coral", 900, True)
    assert business.recording_retention_days == 30
    # Onboarding is done: going back lands on settings, and the dashboard opens.
    assert (await client.get("/onboarding")).headers["location"] == "/settings"
    assert (await client.get("/")).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "Enter your business"),
        ({"timezone": "Mars/Olympus"}, "timezone", "No timezone called"),
        ({"timezone": ""}, "timezone", "Choose your timezone"),
        ({"recording_retention_days": "0"}, "recording_retention_days", "Keep recordings for 1 to 3650 days"),
        ({"transfer_number": "12ab"}, "transfer_number", "international format"),
        ({"transfer_number": "0906 123 4567"}, "transfer_number", "premium-rate number"),
        ({"transfer_number": "+1 212 555 0199"}, "transfer_number",
         "Transfers can only go to numbers in United Kingdom; this number is in United States"),
        ({"transfer_number": "118 118"}, "transfer_number", "Short codes"),
        ({"voice": "darth"}, "voice", "listed voices"),
        ({"max_call_minutes": "0"}, "max_call_minutes", "between 1 and 60 minutes"),
        ({"max_call_minutes": "2h"}, "max_call_minutes", "between 1 and 60 minutes"),
        ({"max_call_minutes": "soon"}, "max_call_minutes", "between 1 and 60 minutes"),
        ({"hours_wed": "nine to five"}, "hours_wed", "Wednesday: couldn&#39;t read the time"),
        ({"hours_wed": "25:00-26:00"}, "hours_wed", "Wednesday: &#39;25:00&#39; is not a time of day"),
        ({"hours_wed": "09:00-09:00"}, "hours_wed", "opens and closes at the same time"),
        ({"hours_wed": "09:00-13:00, 12:00-17:00"}, "hours_wed", "09:00-13:00 and 12:00-17:00 overlap"),
        ({"hours_wed": "17:00-09:00"}, "hours_wed", "closes before it opens"),
        ({"hours_fri": "22:00-02:00 overnight", "hours_sat": "1am-4am"}, "hours_sat",
         "opens before Friday&#39;s 22:00-02:00 overnight has closed"),
        ({"service_minutes": ["3", "45", ""]}, "service_1", "between 5 and 480 minutes"),
        ({"service_minutes": ["lots", "45", ""]}, "service_1", "Couldn&#39;t read &#39;lots&#39; as a length"),
        ({"service_price": ["-1", "75", ""]}, "service_1", "can&#39;t be negative"),
        ({"service_price": ["a lot", "75", ""]}, "service_1", "Couldn&#39;t read the price"),
        ({"service_name": ["", "Cleaning", ""]}, "service_1", "Give the service a name"),
        ({"service_name": ["Cleaning", "cleaning", ""]}, "service_2", "is listed twice"),
        ({"service_name": ["", "", ""], "service_minutes": ["", "", ""], "service_price": ["", "", ""]},
         "services", "at least one service"),
    ],
)
async def test_onboarding_validation_errors_inline_and_nothing_saved(
    newcomer: tuple[AsyncTestClient[Litestar], User], db: Database,
    overrides: dict[str, Any], field: str, message: str,
) -> None:
    client, user = newcomer
    token = await csrf_token(client, "/onboarding")
    response = await client.post("/onboarding", data=valid_form(**overrides), headers={"x-csrftoken": token, **HX})
    assert response.status_code == 200
    assert "HX-Redirect" not in response.headers
    assert "<html" not in response.text and 'id="business-form"' in response.text  # the partial, for htmx
    assert message in response.text
    # Listed beside the Save button, linked to its input.
    assert f'href="#{ {"services": "service_1"}.get(field, field)}' in response.text
    # What was typed is kept.
    assert 'value="1 High St"' in response.text and "We don&#39;t take walk-ins." in response.text
    assert await _business(db, user) is None


async def test_plain_form_post_without_htmx_still_works(
    newcomer: tuple[AsyncTestClient[Litestar], User], db: Database
) -> None:
    client, user = newcomer
    token = await csrf_token(client, "/onboarding")
    bad = await client.post("/onboarding", data=valid_form(name="", _csrf_token=token))
    assert bad.status_code == 200 and "<html" in bad.text and "Enter your business" in bad.text
    good = await client.post("/onboarding", data=valid_form(_csrf_token=token))
    assert good.status_code == 303 and good.headers["location"] == "/"
    assert await _business(db, user) is not None


async def test_a_typed_phone_number_is_ignored_numbers_come_from_the_account(
    newcomer: tuple[AsyncTestClient[Litestar], User], db: Database
) -> None:
    client, user = newcomer
    await create_owner(db, phone_number="+442079460958")
    token = await csrf_token(client, "/onboarding")
    response = await client.post("/onboarding", data=valid_form(phone_number="+442079460958"),
                                 headers={"x-csrftoken": token, **HX})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/"
    business = await _business(db, user)
    assert business is not None and business.phone_number is None


async def test_settings_edit_saves_and_reports_errors_inline(settings: Settings, db: Database) -> None:
    user, business = await create_owner(db, phone_number="+15550001111", transfer_number="+12125550199")
    await create_owner(db, phone_number="+15550002222")
    async with AsyncTestClient(create_app(settings)) as client:
        sign_in(client, settings, user.id)
        page = (await client.get("/settings")).text
        assert 'value="Sam&#39;s Salon"' in page and 'value="09:00-17:00"' in page and 'value="Haircut"' in page
        assert "(555) 000-1111" in page and 'value="(212) 555-0199"' in page  # national format for the owner
        token = await csrf_token(client, "/settings")
        # The business's number is American, so its numbers are read in the US whatever the timezone.
        same_as_line = await client.post("/settings", data=valid_form(transfer_number="555-000-1111"),
                                         headers={"x-csrftoken": token, **HX})
        assert "different number" in same_as_line.text
        typed = await client.post("/settings", data=valid_form(phone_number="+1 555 000 2222", name="Sam's Salon & Spa",
                                                               transfer_number="(212) 555-0100"),
                                  headers={"x-csrftoken": token, **HX})
        assert typed.status_code == 200 and "Saved." in typed.text and "Sam&#39;s Salon &amp; Spa" in typed.text
        async with db.session() as s:
            row = await s.get(Business, business.id)
            assert row is not None and row.name == "Sam's Salon & Spa" and row.phone_number == "+15550001111"
            assert row.transfer_number == "+12125550100"
            assert row.voice == "coral" and row.timezone == "Europe/London"
            assert await s.scalar(select(func.count(Business.id))) == 2
