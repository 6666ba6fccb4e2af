"""The browser test call stands in for a caller the owner picks on /test: one of their customers, a new number,
or a withheld one; the session carries that number, which the tools then vouch for like a phone line's `From`."""

from __future__ import annotations

from uuid import UUID

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Customer, Session
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner


async def session_phone(db: Database, session_id: str) -> str | None:
    async with db.session() as s:
        row = await s.scalar(select(Session).where(Session.id == UUID(session_id)))
        assert row is not None and row.channel == "browser"
        return row.caller_phone


async def test_the_owner_picks_who_the_test_caller_is(settings: Settings, db: Database) -> None:
    user, business = await create_owner(db, timezone="Europe/London")
    _other_user, other = await create_owner(db, name="Elsewhere")
    async with db.session() as s, s.begin():
        jane = Customer(business_id=business.id, name="Jane Doe", phone="+442079460958")
        stranger = Customer(business_id=other.id, name="Not Yours", phone="+442079460959")
        s.add_all([jane, stranger])
    async with AsyncTestClient(create_app(settings)) as client:
        sign_in(client, settings, user.id)
        page = await client.get("/test")
        assert f'value="customer:{jane.id}"' in page.text and "Jane Doe (020 7946 0958)" in page.text
        assert "Not Yours" not in page.text
        token = await csrf_token(client, "/test")
        headers = {"x-csrftoken": token}

        async def start(body: object) -> tuple[int, dict[str, str]]:
            response = await client.post("/api/sessions", json=body, headers=headers)
            return response.status_code, response.json()

        status, body = await start({"caller": f"customer:{jane.id}"})
        assert status == 201 and await session_phone(db, body["session_id"]) == "+442079460958"
        status, body = await start({"caller": "new", "phone": "07700 900123"})  # read in the business's region
        assert status == 201 and await session_phone(db, body["session_id"]) == "+447700900123"
        for withheld in ({"caller": "withheld"}, {}):
            status, body = await start(withheld)
            assert status == 201 and await session_phone(db, body["session_id"]) is None
        status, body = await start({"caller": f"customer:{stranger.id}"})
        assert status == 400 and "isn't one of yours" in body["error"], body
        status, body = await start({"caller": "new", "phone": "12"})
        assert status == 400 and "new caller's number" in body["error"], body
        status, body = await start({"caller": "new"})
        assert status == 400 and "Type the new caller's phone number" in body["error"], body
        empty = await client.post("/api/sessions", headers=headers)  # no body at all: a withheld caller
        assert empty.status_code == 201 and await session_phone(db, empty.json()["session_id"]) is None
