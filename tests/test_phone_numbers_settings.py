"""Settings -> Phone number, over the Twilio double's IncomingPhoneNumbers API: an owner can only take one of the
service account's numbers, picking it sets its webhooks on Twilio, releasing clears them, two businesses never
hold one number, and buying exists only when the operator allows it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import AuditEntry, Business
from app.main import create_app
from app.settings import Settings
from app.telephony.numbers import TwilioNumbers
from tests.conftest import make_settings, migrated_database
from tests.doubles.twilio_double import TwilioDouble
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner

PUBLIC = "https://receptionist.example.com"
HX = {"HX-Request": "true", "HX-Target": "phone-number"}


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        yield double


def twilio_settings(data_dir: Path, twilio: TwilioDouble, **env: str) -> Settings:
    return make_settings(data_dir, TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                         TWILIO_API_BASE_URL=twilio.api_base_url, PUBLIC_BASE_URL=PUBLIC, **env)


@pytest.fixture
async def phone_db(data_dir: Path, twilio: TwilioDouble) -> AsyncIterator[tuple[Settings, Database]]:
    twilio.reset()
    settings = twilio_settings(data_dir, twilio)
    async with migrated_database(settings) as database:
        yield settings, database


async def client_for(settings: Settings, user_id: object) -> AsyncTestClient[Litestar]:
    client = AsyncTestClient(create_app(settings), base_url="https://testserver.local")
    await client.__aenter__()
    sign_in(client, settings, user_id)  # type: ignore[arg-type]
    return client


async def holder_of(db: Database, business_id: object) -> Business:
    async with db.session() as s:
        row = await s.scalar(select(Business).where(Business.id == business_id))
        assert row is not None
        return row


async def test_sdk_lists_every_page_of_the_account_numbers(phone_db: tuple[Settings, Database],
                                                           twilio: TwilioDouble) -> None:
    settings, _db = phone_db
    owned = [twilio.numbers.own(f"+1555010{k:04d}") for k in range(7)]
    twilio.numbers.own_elsewhere("+15550109999")
    numbers = TwilioNumbers(settings)
    numbers_listed = await numbers._call("list", numbers._client.incoming_phone_numbers.list_async(page_size=3))
    assert [n.sid for n in numbers_listed] == [n.sid for n in owned]  # three pages, followed by the SDK
    assert [n.phone_number for n in await numbers.list()] == [n.phone_number for n in owned]


async def test_picking_a_number_sets_its_webhooks_and_releasing_clears_them(
    phone_db: tuple[Settings, Database], twilio: TwilioDouble
) -> None:
    settings, db = phone_db
    user, business = await create_owner(db)
    number = twilio.numbers.own("+15550123001", "Front desk")
    client = await client_for(settings, user.id)
    try:
        section = await client.get("/settings/number", headers=HX)
        assert section.status_code == 200 and number.sid in section.text and "(555) 012-3001" in section.text
        assert 'hx-get="/settings/number"' in (await client.get("/settings")).text  # the page pulls it in
        token = await csrf_token(client, "/settings")
        picked = await client.post("/settings/number", data={"number_sid": number.sid},
                                   headers={"x-csrftoken": token, **HX})
        assert picked.status_code == 200 and "is yours" in picked.text and 'id="webhook-status"' in picked.text
        assert "Connected:" in picked.text
        assert (number.voice_url, number.fields["voice_method"]) == (PUBLIC + "/twilio/voice", "POST")
        assert (number.status_callback, number.fields["status_callback_method"]) == (PUBLIC + "/twilio/status",
                                                                                    "POST")
        row = await holder_of(db, business.id)
        assert (row.phone_number, row.phone_number_sid) == ("+15550123001", number.sid)

        released = await client.post("/settings/number/release", headers={"x-csrftoken": token, **HX})
        assert "Number released" in released.text
        assert (number.voice_url, number.status_callback) == ("", "")
        row = await holder_of(db, business.id)
        assert (row.phone_number, row.phone_number_sid) == (None, None)
        async with db.session() as s:
            entries = list(await s.scalars(select(AuditEntry).where(AuditEntry.business_id == business.id)
                                           .order_by(AuditEntry.created_at)))
        assert [(e.action, e.actor_user_id) for e in entries] == [("number.assigned", user.id),
                                                                  ("number.released", user.id)]
        assert entries[0].detail["after"] == "+15550123001" and entries[0].detail["webhooks_set"] is True
        assert "Phone number assigned" in (await client.get("/audit")).text
    finally:
        await client.__aexit__(None, None, None)


async def test_a_number_outside_the_account_or_held_by_another_business_is_refused(
    phone_db: tuple[Settings, Database], twilio: TwilioDouble
) -> None:
    settings, db = phone_db
    user, business = await create_owner(db)
    other_user, other = await create_owner(db, name="Bo's Barbers")
    elsewhere = twilio.numbers.own_elsewhere("+15550124001")
    shared = twilio.numbers.own("+15550124002")
    mine = await client_for(settings, user.id)
    theirs = await client_for(settings, other_user.id)
    try:
        token = await csrf_token(mine, "/settings")
        for sid in (elsewhere.sid, "PN" + "0" * 32, "not-a-sid", ""):
            refused = await mine.post("/settings/number", data={"number_sid": sid},
                                      headers={"x-csrftoken": token, **HX})
            assert refused.status_code == 200 and "not one of this service&#39;s Twilio numbers" in refused.text, sid
        assert (await holder_of(db, business.id)).phone_number is None
        assert elsewhere.voice_url == "" and not [u for u in twilio.numbers.updates if u.sid == elsewhere.sid]

        other_token = await csrf_token(theirs, "/settings")
        ok = await theirs.post("/settings/number", data={"number_sid": shared.sid},
                               headers={"x-csrftoken": other_token, **HX})
        assert "is yours" in ok.text
        updates_before = len(twilio.numbers.updates)
        taken = await mine.post("/settings/number", data={"number_sid": shared.sid},
                                headers={"x-csrftoken": token, **HX})
        assert "Another business already uses that number" in taken.text
        assert len(twilio.numbers.updates) == updates_before  # its webhooks were not touched
        assert (await holder_of(db, business.id)).phone_number is None
        assert (await holder_of(db, other.id)).phone_number_sid == shared.sid
        # The taken number isn't even offered to the first owner.
        assert shared.sid not in (await mine.get("/settings/number", headers=HX)).text
        # A plain form post (no htmx) gets the full page and an error status.
        plain = await mine.post("/settings/number", data={"number_sid": elsewhere.sid, "_csrf_token": token})
        assert plain.status_code == 422 and "<html" in plain.text
    finally:
        await mine.__aexit__(None, None, None)
        await theirs.__aexit__(None, None, None)


async def test_switching_numbers_clears_the_old_one_and_a_webhook_failure_is_shown(
    phone_db: tuple[Settings, Database], twilio: TwilioDouble
) -> None:
    settings, db = phone_db
    user, business = await create_owner(db)
    first, second = twilio.numbers.own("+15550125001"), twilio.numbers.own("+15550125002")
    client = await client_for(settings, user.id)
    try:
        token = await csrf_token(client, "/settings")
        await client.post("/settings/number", data={"number_sid": first.sid}, headers={"x-csrftoken": token, **HX})
        twilio.numbers.failures.append(500)
        failed = await client.post("/settings/number", data={"number_sid": second.sid},
                                   headers={"x-csrftoken": token, **HX})
        assert "didn&#39;t take the call settings" in failed.text and "Not connected" in failed.text
        assert (await holder_of(db, business.id)).phone_number_sid == second.sid
        assert first.voice_url == "" and second.voice_url == ""  # the old one was cleared all the same
        again = await client.post("/settings/number", data={"number_sid": second.sid},
                                  headers={"x-csrftoken": token, **HX})
        assert "Connected:" in again.text and second.voice_url == PUBLIC + "/twilio/voice"
    finally:
        await client.__aexit__(None, None, None)


async def test_buying_a_number_only_when_the_operator_allows_it(data_dir: Path, twilio: TwilioDouble) -> None:
    twilio.reset()
    twilio.numbers.offer("+14155550101", locality="San Francisco")
    twilio.numbers.offer("+12125550102", locality="New York")
    for allowed in (False, True):
        env = {"TWILIO_ALLOW_PURCHASE": "true"} if allowed else {}
        settings = twilio_settings(data_dir / str(allowed), twilio, **env)
        async with migrated_database(settings) as db:
            user, business = await create_owner(db)
            client = await client_for(settings, user.id)
            try:
                token = await csrf_token(client, "/settings")
                section = await client.get("/settings/number", headers=HX)
                search = await client.post("/settings/number/search", data={"country": "US", "area_code": "415"},
                                           headers={"x-csrftoken": token, **HX})
                if not allowed:
                    assert "Buy a new local number" not in section.text
                    assert "turned off" in search.text
                    bought = await client.post("/settings/number/buy", data={"phone_number": "+14155550101"},
                                               headers={"x-csrftoken": token, **HX})
                    assert "turned off" in bought.text and not twilio.numbers.owned
                    continue
                assert "Buy a new local number" in section.text
                assert "+14155550101" in search.text and "+12125550102" not in search.text
                gone = await client.post("/settings/number/buy", data={"phone_number": "+13105550000"},
                                         headers={"x-csrftoken": token, **HX})
                assert "could not sell that number" in gone.text and "21422" in gone.text
                bought = await client.post("/settings/number/buy", data={"phone_number": "+14155550101"},
                                           headers={"x-csrftoken": token, **HX})
                assert "is yours" in bought.text
                number = twilio.numbers.by_number("+14155550101")
                assert number is not None and number.voice_url == PUBLIC + "/twilio/voice"
                assert number.status_callback == PUBLIC + "/twilio/status"
                assert (await holder_of(db, business.id)).phone_number_sid == number.sid
            finally:
                await client.__aexit__(None, None, None)


async def test_without_twilio_settings_says_how_to_connect_it(settings: Settings, db: Database) -> None:
    user, _business = await create_owner(db)
    client = await client_for(settings, user.id)
    try:
        section = await client.get("/settings/number")
        assert section.status_code == 200 and "TWILIO_ACCOUNT_SID" in section.text
        assert "test call from your browser" in section.text
        token = await csrf_token(client, "/settings")
        refused = await client.post("/settings/number", data={"number_sid": "PN" + "1" * 32},
                                    headers={"x-csrftoken": token, **HX})
        assert "isn&#39;t connected" in refused.text
    finally:
        await client.__aexit__(None, None, None)
