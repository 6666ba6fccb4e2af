"""Helpers for dashboard tests: a signed-in in-process client, CSRF tokens, and calls written like the engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.engine import Database
from app.db.models import Call, CallEvent, CallStatus, Session, SessionStatus
from app.settings import Settings

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def sign_in(client: AsyncTestClient[Litestar], settings: Settings, user_id: UUID, *, epoch: int = 0) -> None:
    client.cookies.set(COOKIE_NAME, SessionSigner(settings.session_secrets).sign(user_id, epoch))


async def csrf_token(client: AsyncTestClient[Litestar], path: str = "/auth/login") -> str:
    response = await client.get(path)
    match = _META.search(response.text)
    assert match, f"no csrf meta tag on {path}: {response.status_code}"
    return match.group(1)


async def seed_call(
    db: Database,
    business_id: UUID,
    *,
    transcript: str = "Caller: I'd like a haircut tomorrow\nAgent: Sure, 10am works.",
    caller_phone: str | None = "+15551230001",
    status: str = CallStatus.COMPLETED.value,
    started_at: datetime | None = None,
    session_status: str = SessionStatus.COMPLETED.value,
    events: list[tuple[str, str, dict[str, Any]]] | None = None,
    **fields: Any,
) -> tuple[Session, Call]:
    """A Session + Call (+ CallEvents) as the call engine writes them at the end of a call."""
    started = started_at or datetime.now(UTC) - timedelta(minutes=5)
    async with db.session() as s, s.begin():
        session = Session(business_id=business_id, channel="twilio" if caller_phone else "browser",
                          status=session_status, caller_phone=caller_phone, started_at=started)
        s.add(session)
        await s.flush()
        call = Call(
            session_id=session.id, business_id=business_id, channel=session.channel, caller_phone=caller_phone,
            status=status, started_at=started, transcript=transcript,
            ended_at=None if status == CallStatus.IN_PROGRESS.value else started + timedelta(seconds=95),
            duration_seconds=fields.pop("duration_seconds", 95.0), cost_usd=fields.pop("cost_usd", 0.42),
            input_tokens=fields.pop("input_tokens", 1200), output_tokens=fields.pop("output_tokens", 800),
            **fields,
        )
        s.add(call)
        await s.flush()
        for index, (kind, text, data) in enumerate(events or []):
            s.add(CallEvent(call_id=call.id, business_id=business_id, sequence=index + 1,
                            offset_ms=index * 1500, kind=kind, text=text, data=data))
    return session, call


async def add_event(db: Database, call: Call, sequence: int, kind: str, text: str, data: dict[str, Any] | None = None
                    ) -> None:
    async with db.session() as s, s.begin():
        s.add(CallEvent(call_id=call.id, business_id=call.business_id, sequence=sequence,
                        offset_ms=sequence * 1000, kind=kind, text=text, data=data or {}))
