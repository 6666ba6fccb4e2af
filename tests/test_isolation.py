"""Every route in `app.routes`, enumerated (never a hand-made list, so a route is covered the day it is
added): without a signed-in owner, each one not on `app.auth.access.PUBLIC_PATHS` refuses; signed in as one
owner and given the other owner's ids, each answers 404 or shows nothing of theirs, and changes nothing of
theirs; lists, searches, exports and the activity page never include the other owner's rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app import audit
from app.auth.access import is_public
from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.models import (
    Appointment,
    AuditEntry,
    Billing,
    BookingRules,
    Business,
    BusyBlock,
    CalendarAccount,
    CalendarConflict,
    CalendarLink,
    Call,
    CallEvent,
    Closure,
    Customer,
    Message,
    Notification,
    NotificationSettings,
    OutboundCall,
    OutboundSettings,
    Resource,
    Session,
    SessionStatus,
)
from app.db.services import BusinessScope
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, seed_call, sign_in
from tests.support.data import create_owner

THEIR_TEXT = ("staff bravo", "closed bravo", "block bravo", "conflict bravo", "bravo@example.com",  # issue 15
              "bravo dental", "secret bravo", "summary bravo", "live bravo", "in progress bravo", "customer bravo",
              "bravo-audit",
              "message bravo", "bravo-notify@example.com", "notice bravo")  # issue 9


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
    await audit.record(db, "settings.changed", business_id=business.id, detail={"fields": [f"{tag}-audit"]})
    voicemail = settings.recordings_dir / str(business.id) / f"voicemail-{tag}.wav"
    voicemail.write_bytes(b"RIFF" + tag.encode())
    async with db.session() as s, s.begin():  # a voicemail (issue 11), with its audio
        message = Message(business_id=business.id, call_id=call.id, body=f"voicemail {tag}", audio_path=str(voicemail),
                          recording_sid=f"RE{tag}", transcript_status="done")
        s.add(message)
        await s.flush()
    async with db.session() as s, s.begin():  # issue 9: a taken message, notification settings, a notification
        s.add(Message(business_id=business.id, call_id=call.id, customer_id=customer.id, body=f"message {tag}",
                      caller_name=f"Caller {tag}", caller_phone="+15557770000", urgency="urgent"))
        s.add(NotificationSettings(business_id=business.id, email_to=f"{tag}-notify@example.com"))
        s.add(Notification(business_id=business.id, key=f"follow_up:{tag}:email", event="follow_up",
                           channel="email", recipient=f"{tag}-notify@example.com", call_id=call.id,
                           subject=f"notice {tag}", body=f"notice {tag}", last_error=f"notice {tag}"))
    # Issue 15: one of each calendar row.
    calendar = CalendarScope(db.session_maker, business.id)
    resource = await calendar.save_resource(None, name=f"Staff {tag}", kind="person", services=[], weekly_hours=None)
    closure = await calendar.add_closure(start.date() + timedelta(days=1), [], note=f"closed {tag}")
    block = await calendar.block_time(start + timedelta(hours=1), start + timedelta(hours=2), note=f"block {tag}")
    async with db.session() as s, s.begin():
        account = CalendarAccount(business_id=business.id, email=f"{tag}@example.com", refresh_token_encrypted="x")
        s.add(account)
        await s.flush()
        link = CalendarLink(business_id=business.id, account_id=account.id, google_id=f"{tag}@example.com")
        conflict = CalendarConflict(business_id=business.id, appointment_id=appointment.id, block_id=block.id,
                                    reason=f"conflict {tag}")
        s.add_all([link, conflict])
    async with db.session() as s, s.begin():  # issue 16: a scheduled callback and calling-out settings
        outbound = OutboundCall(business_id=business.id, kind="callback", to_phone="+15557770000",
                                customer_id=customer.id, purpose=f"callback {tag}", scheduled_for=start)
        s.add_all([outbound, OutboundSettings(business_id=business.id, owner_phone="+12125550100")])
        await s.flush()
    return {"outbound": outbound.id, "call": call.id, "session": session.id, "live_session": live_session.id,
            "customer": customer.id,
            "appointment": appointment.id, "message": message.id, "resource": resource.id, "closure": closure.id,
            "block": block.id, "account": account.id, "link": link.id, "conflict": conflict.id}


_DELIVERY = ("status", "attempts", "sent_at", "provider_id", "subject", "body")


async def _snapshot(db: Database, business_id: UUID) -> list[Any]:
    async with db.session() as s:
        out: list[Any] = []
        for model in (Business, Session, Call, CallEvent, Customer, Appointment, Billing, AuditEntry, Resource,
                      Closure, BusyBlock, BookingRules, CalendarAccount, CalendarLink, CalendarConflict,
                      Message, Notification, NotificationSettings, OutboundCall, OutboundSettings):
            key = model.id if model is Business else model.business_id
            rows = await s.scalars(select(model).where(key == business_id).order_by(model.id))
            out.extend(
                (model.__tablename__, {c.name: getattr(r, c.name) for c in model.__table__.columns
                                       # last_error: the calendar's background sync notes its unusable token
                                       if c.name not in ("updated_at", "sa_orm_sentinel", "last_error")
                                       # issue 9: the app's own job worker sends the outbox meanwhile
                                       and not (model is Notification and c.name in _DELIVERY)})
                for r in rows.unique()
            )
        return out


# Each path parameter of any route, filled with the OTHER owner's id (or a harmless value). A new route with
# a parameter not listed here fails the matrix until it is added: coverage by construction.
def _fill(path: str, theirs: dict[str, UUID]) -> str:
    values = {
        "call_id": theirs["call"], "session_id": theirs["live_session"], "appointment_id": theirs["appointment"],
        "customer_id": theirs["customer"], "file_path": "app.css", "message_id": theirs["message"],
        # issue 15
        "resource_id": theirs.get("resource"), "closure_id": theirs.get("closure"), "block_id": theirs.get("block"),
        "account_id": theirs.get("account"), "link_id": theirs.get("link"), "conflict_id": theirs.get("conflict"),
        # issue 16
        "row_id": theirs.get("outbound"),
    }
    out = path
    for name in re.findall(r"{(\w+)(?::\w+)?}", path):
        assert name in values, f"route {path}: add a value for {{{name}}} to tests/test_isolation.py"
        out = re.sub(r"{" + name + r"(?::\w+)?}", str(values[name]), out)
    return out


def _routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path template) for every HTTP handler, ("WS", template) for every WebSocket."""
    out: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            out.append(("WS", route.path))
        elif isinstance(route, HTTPRoute):
            out.extend((method, route.path) for method in sorted(route.methods - {"OPTIONS", "HEAD"}))
        else:  # an ASGI mount would bypass handler guards: none are allowed
            raise AssertionError(f"unexpected route kind {type(route).__name__} at {route.path}")
    # Sign-out last: it ends the session the matrix runs in.
    return sorted(out, key=lambda r: (r[1] == "/auth/logout", r[1], r[0]))


def _refused(response: Any) -> bool:
    location = response.headers.get("location", "")
    return response.status_code == 401 or (response.status_code in (302, 303) and location.startswith("/auth/login"))


async def test_every_route_needs_an_owner_unless_it_is_public(settings: Settings, db: Database) -> None:
    user, _business = await create_owner(db, name="Alpha Barbers")
    theirs = {k: UUID(int=i + 1) for i, k in enumerate(("call", "live_session", "appointment", "customer", "message",
                                                        "resource", "closure", "block", "account", "link",
                                                        "conflict"))}
    app = create_app(settings)
    routes = _routes(app)
    templates = {path for _m, path in routes}
    assert {"/", "/calls", "/settings", "/audit", "/api/sessions", "/test"} <= templates
    public = {t for t in templates if is_public(t)}
    assert public >= {"/health", "/auth/login", "/twilio/voice", "/twilio/media", "/twilio/status",
                      "/static/{file_path:path}", "/ws/calls/{session_id:uuid}"}
    # A signed-out browser, and one holding a cookie revoked by signing out (its epoch is behind).
    revoked = SessionSigner(settings.session_secrets).sign(user.id, epoch=0)
    async with db.session() as s, s.begin():
        (await s.get(type(user), user.id)).session_epoch = 1  # type: ignore[union-attr]
    for cookie in (None, revoked):
        async with AsyncTestClient(app) as client:
            client.follow_redirects = False
            token = await csrf_token(client)
            if cookie:
                client.cookies.set(COOKIE_NAME, cookie)
            checked = 0
            for method, template in routes:
                if is_public(template):
                    continue
                path = _fill(template, theirs)
                if method == "WS":
                    with pytest.raises(Exception):  # noqa: B017 - refused before accept, however it surfaces
                        async with await client.websocket_connect(path) as ws:
                            await ws.receive_text()
                    checked += 1
                    continue
                response = await client.request(method, path, headers={"x-csrftoken": token})
                assert _refused(response), (method, template, response.status_code, response.text[:200])
                assert "alpha" not in response.text.lower()
                checked += 1
            assert checked >= 20


async def test_isolation_matrix(settings: Settings, db: Database) -> None:
    user_a, business_a = await create_owner(db, name="Alpha Barbers", phone_number="+15550000001")
    _user_b, business_b = await create_owner(db, name="Bravo Dental", phone_number="+15550000002")
    await _world(db, settings, business_a, "alpha")
    theirs = await _world(db, settings, business_b, "bravo")
    before = await _snapshot(db, business_b.id)
    app = create_app(settings)

    async with AsyncTestClient(app) as client:
        client.follow_redirects = False
        sign_in(client, settings, user_a.id)
        token = await csrf_token(client, "/settings")
        htmx = {"HX-Request": "true"}
        for method, template in _routes(app):
            if method == "WS" or is_public(template):
                continue
            path = _fill(template, theirs)
            has_their_id = path != template or "{" in template
            for headers in ({"x-csrftoken": token}, {"x-csrftoken": token, **htmx}):
                response = await client.request(method, path, headers=headers)
                text = response.text.lower()
                for marker in THEIR_TEXT:
                    assert marker not in text, (method, template, marker)
                assert str(business_b.id) not in text, (method, template)
                if has_their_id and "{file_path" not in template:
                    assert response.status_code == 404, (method, template, headers, response.status_code)
                else:
                    assert response.status_code < 500, (method, template, response.status_code)
            if template == "/auth/logout":
                break
        assert await _snapshot(db, business_b.id) == before

    async with AsyncTestClient(app) as client:
        client.follow_redirects = False
        sign_in(client, settings, user_a.id, epoch=1)  # the matrix ended with a sign-out
        token = await csrf_token(client, "/settings")
        htmx = {"HX-Request": "true"}
        # Settings have no id to swap, and typing the other business's number must not touch it (numbers are
        # picked from the Twilio account: tests/test_phone_numbers_settings.py).
        await client.post("/settings", headers={"x-csrftoken": token, **htmx}, data={
            "name": "Alpha", "timezone": "UTC", "phone_number": "+15550000002", "voice": "marin",
            "max_call_minutes": "10", "service_name": "Cut", "service_minutes": "30", "service_price": "10"})
        async with db.session() as s:
            assert (await s.get(Business, business_a.id)).phone_number != "+15550000002"  # type: ignore[union-attr]
            assert (await s.get(Business, business_b.id)).phone_number == "+15550000002"  # type: ignore[union-attr]

        # Lists, searches, live panels, billing and exports show only the signed-in owner's rows.
        pages = {
            "/": "alpha", "/calls": "alpha", "/calls?q=secret": "alpha", "/calls?q=bravo": None,
            "/sessions": None, "/sessions/live": "alpha", "/appointments": "alpha", "/customers": "alpha",
            "/customers?q=customer": "alpha", "/billing": None, "/settings": "alpha",
            "/audit": "alpha-audit",
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


async def test_a_route_added_later_is_protected_without_asking(settings: Settings, db: Database) -> None:
    """Deny by default: a handler that asks for no owner at all is still refused to a signed-out browser,
    and the enumeration above picks it up (so the owner matrix covers it too)."""
    from litestar import get

    @get("/brand-new", sync_to_thread=False)
    def brand_new() -> str:
        return "private data"

    user, _business = await create_owner(db)
    app = create_app(settings)
    app.register(brand_new)
    assert ("GET", "/brand-new") in _routes(app)
    async with AsyncTestClient(app) as client:
        client.follow_redirects = False
        response = await client.get("/brand-new")
        assert _refused(response) and "private data" not in response.text
        sign_in(client, settings, user.id)
        assert (await client.get("/brand-new")).text == "private data"
