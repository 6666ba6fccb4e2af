"""The audit log: owner actions on the dashboard are recorded with who, what, when and the client address
the proxy middleware resolved; the owner reads them on /audit; the API refuses unknown actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app import audit
from app.db.engine import Database
from app.db.models import AuditEntry
from app.db.services import BusinessScope
from app.main import create_app
from tests.conftest import make_settings
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner
from tests.test_dashboard_settings import valid_form

CLIENT = "203.0.113.7"


async def _entries(db: Database) -> list[AuditEntry]:
    async with db.session() as s:
        return list(await s.scalars(select(AuditEntry).order_by(AuditEntry.created_at, AuditEntry.id)))


async def test_dashboard_actions_are_recorded_with_the_client_address(data_dir: Path, db: Database) -> None:
    # Behind a trusted proxy: the address recorded is the client's from X-Forwarded-For, not the proxy's.
    settings = make_settings(data_dir, FORWARDED_ALLOW_IPS="*")
    user, business = await create_owner(db, phone_number="+15550003000")
    scope = BusinessScope(db.session_maker, business.id)
    customer = await scope.save_customer("+15557770000", name="Pat")
    start = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=7)
    while start.weekday() > 4:
        start += timedelta(days=1)
    appointment = await scope.book(customer.id, "Haircut", start)

    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        client.headers["X-Forwarded-For"] = CLIENT
        sign_in(client, settings, user.id)
        token = await csrf_token(client, "/settings")
        headers = {"x-csrftoken": token, "HX-Request": "true"}
        saved = await client.post("/settings", headers=headers, data=valid_form(
            timezone="America/New_York", phone_number="+15550003001", transfer_number=""))
        assert saved.status_code == 200 and "Saved" in saved.text
        unchanged = await client.post("/settings", headers=headers, data=valid_form(
            timezone="America/New_York", phone_number="+15550003001", transfer_number=""))
        assert unchanged.status_code == 200
        assert (await client.post(f"/appointments/{appointment.id}/cancel", headers=headers)).status_code == 200
        assert (await client.get("/calls/export.csv?status=completed")).status_code == 200
        page = await client.get("/audit")

    entries = await _entries(db)
    assert [e.action for e in entries] == ["number.changed", "settings.changed", "appointment.cancelled",
                                           "calls.exported"]  # the unchanged save recorded nothing
    assert all(e.business_id == business.id and e.actor_user_id == user.id and e.client_ip == CLIENT
               for e in entries)
    number, changed, cancelled, exported = entries
    assert number.detail == {"before": "+15550003000", "after": "+15550003001"}
    assert "greeting" in changed.detail["fields"] and "phone_number" not in changed.detail["fields"]
    assert cancelled.detail["appointment"] == str(appointment.id) and cancelled.detail["service"] == "Haircut"
    assert exported.detail == {"filter": "status=completed"}
    assert page.status_code == 200
    for text in ("Changed the business phone number", "+15550003001", "Changed settings", "Cancelled an appointment",
                 "Exported calls as CSV", CLIENT, user.email):
        assert text in page.text, text


async def test_the_operator_records_through_the_same_api(db: Database) -> None:
    _user, business = await create_owner(db)
    entry = await audit.record(db, "number.assigned", business_id=business.id, actor_kind=audit.OPERATOR,
                               actor_label="operator CLI", detail={"number": "+15550004000"})
    assert entry.actor_user_id is None and entry.client_ip is None and entry.actor_label == "operator CLI"
    with pytest.raises(ValueError, match="unknown audit action"):
        await audit.record(db, "made.up", business_id=business.id)
    assert [e.action for e in await _entries(db)] == ["number.assigned"]
