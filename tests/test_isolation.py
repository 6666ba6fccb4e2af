"""Two owners: every owner route, given the other owner's ids, answers 404 and changes nothing; lists,
searches and exports never include the other owner's rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Appointment, Billing, Business, Call, CallEvent, Customer, Session, SessionStatus
from app.db.services import BusinessScope
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, seed_call, sign_in
from tests.support.data import create_owner

THEIR_TEXT = ("bravo dental", "secret bravo", "summary bravo", "live bravo", "in progress bravo", "customer bravo")


async def _world(db: Database, settings: Settings, business: Business, tag: str) -> dict[str, UUID]:
    """One of everything for a business, with `tag` in every searchable text."""
    recording = settings.recordings_dir / str(business.id) / f"{tag}.wav"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(b"RIFF" + tag.encode())
    session, call = await seed_call(
        db, business.id, transcript=f"Caller: secret {tag} words", caller_phone="+15557770000",
        summary=f"summary {tag}", recording_path=str(recording),
        events=[("caller", f"live {tag} words", {})],
    )
    live_session, _live_call = await seed_call(
        db, business.id, transcript=f"Caller: live {tag}", status="in_progress",
        session_status=SessionStatus.ACTIVE.value, events=[("caller", f"in progress {tag}", {})],
    )
    scope = BusinessScope(db.session_maker, business.id)
    customer = await scope.save_customer("+15557770000", name=f"Customer {tag}")
    start = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=7)
    while start.weekday() > 4:
        start += timedelta(days=1)
    appointment = await scope.book(customer.id, "Haircut", start, call_id=call.id)
    async with db.session() as s, s.begin():
        s.add(Billing(business_id=business.id, period="2026-02", amount_cents=777, provider_reference=f"ref-{tag}"))
    return {"call": call.id, "session": session.id, "live_session": live_session.id, "customer": customer.id,
            "appointment": appointment.id}


async def _snapshot(db: Database, business_id: UUID) -> list[Any]:
    async with db.session() as s:
        out: list[Any] = []
        for model in (Business, Session, Call, CallEvent, Customer, Appointment, Billing):
            key = model.id if model is Business else model.business_id
            rows = await s.scalars(select(model).where(key == business_id).order_by(model.id))
            out.extend(
                (model.__tablename__, {c.name: getattr(r, c.name) for c in model.__table__.columns
                                       if c.name not in ("updated_at", "sa_orm_sentinel")})
                for r in rows.unique()
            )
        return out


async def test_isolation_matrix(settings: Settings, db: Database) -> None:
    user_a, business_a = await create_owner(db, name="Alpha Barbers", phone_number="+15550000001")
    _user_b, business_b = await create_owner(db, name="Bravo Dental", phone_number="+15550000002")
    await _world(db, settings, business_a, "alpha")
    theirs = await _world(db, settings, business_b, "bravo")
    before = await _snapshot(db, business_b.id)

    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        sign_in(client, settings, user_a.id)
        token = await csrf_token(client, "/settings")
        htmx = {"HX-Request": "true"}
        gets = [
            f"/calls/{theirs['call']}",
            f"/calls/{theirs['call']}/recording",
            f"/sessions/{theirs['session']}",
            f"/sessions/{theirs['session']}/live",
            f"/sessions/{theirs['live_session']}",
            f"/sessions/{theirs['live_session']}/live",
            f"/customers/{theirs['customer']}",
        ]
        for path in gets:
            for headers in ({}, htmx):
                response = await client.get(path, headers=headers)
                assert response.status_code == 404, (path, headers, response.status_code)
                for marker in THEIR_TEXT:
                    assert marker not in response.text.lower(), (path, marker)
        for headers in ({"x-csrftoken": token}, {"x-csrftoken": token, **htmx}):
            response = await client.post(f"/appointments/{theirs['appointment']}/cancel", headers=headers)
            assert response.status_code == 404
        # Settings have no id to swap, and typing the other business's number must not touch it.
        await client.post("/settings", headers={"x-csrftoken": token, **htmx}, data={
            "name": "Alpha", "timezone": "UTC", "phone_number": "+15550000002", "voice": "marin",
            "max_call_seconds": "600", "service_name": "Cut", "service_minutes": "30", "service_price": "10"})
        async with db.session() as s:
            assert (await s.get(Business, business_a.id)).phone_number == "+15550000001"  # type: ignore[union-attr]

        # Lists, searches, live panels, billing and exports show only the signed-in owner's rows.
        pages = {
            "/": "alpha", "/calls": "alpha", "/calls?q=secret": "alpha", "/calls?q=bravo": None,
            "/sessions": None, "/sessions/live": "alpha", "/appointments": "alpha", "/customers": "alpha",
            "/customers?q=customer": "alpha", "/billing": None, "/settings": "alpha",
        }
        for path, expected in pages.items():
            response = await client.get(path)
            assert response.status_code == 200, path
            text = response.text.lower()
            for marker in THEIR_TEXT:
                assert marker not in text, (path, marker)
            assert str(business_b.id) not in text, path
            for value in theirs.values():
                assert str(value) not in text, (path, value)
            if expected:
                assert expected in text, path
        billing = (await client.get("/billing")).text
        assert billing.count("7.77 USD") == 1
        for query in ("", "?q=secret", "?q=bravo", "?q=555777"):
            rows = list(csv.DictReader(io.StringIO((await client.get("/calls/export.csv" + query)).text)))
            ids = {r["call_id"] for r in rows}
            assert str(theirs["call"]) not in ids and all("bravo" not in (r["summary"] or "") for r in rows)
            assert (len(rows) == 0) == (query == "?q=bravo")

    assert await _snapshot(db, business_b.id) == before
