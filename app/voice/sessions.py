"""Sessions and their Call rows: created when a call is offered, started when its socket is claimed.

`open_session` is the one way a call is offered, for the browser (`POST /api/sessions`) and Twilio
(`POST /twilio/voice`) alike; the returned token is what the caller's WebSocket must present.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update

from app.billing.metering import on_call_finalised
from app.billing.usage import billable_on_finalise
from app.db.engine import Database
from app.db.hours import zone
from app.db.models import Business, Call, CallStatus, Session, SessionStatus
from app.db.services import BusinessScope
from app.jobs import enqueue
from app.voice.prompts import CallerContext
from app.voice.recorder import HEARTBEAT_SECONDS, SUMMARY_JOB
from app.voice.tokens import TOKEN_MAX_AGE_SECONDS, TokenIssuer


async def open_session(
    db: Database,
    issuer: TokenIssuer,
    business: Business,
    channel: str,
    *,
    caller_phone: str | None = None,
    call_sid: str | None = None,
) -> tuple[Session, str]:
    nonce = issuer.new_nonce()
    async with db.session() as s, s.begin():
        session = Session(
            business_id=business.id,
            channel=channel,
            caller_phone=caller_phone,
            twilio_call_sid=call_sid,
            token_nonce=nonce,
        )
        s.add(session)
        await s.flush()
    return session, issuer.sign(session.id, nonce)


async def start_call(db: Database, session: Session) -> Call:
    """Mark the session active and create its Call row (the record every later write updates)."""
    now = datetime.now(UTC)
    scope = BusinessScope(db.session_maker, session.business_id)
    customer = await scope.customer_by_phone(session.caller_phone) if session.caller_phone else None
    async with db.session() as s, s.begin():
        await s.execute(
            update(Session)
            .where(Session.id == session.id)
            .values(status=SessionStatus.ACTIVE.value, started_at=now)
        )
        call = Call(
            session_id=session.id,
            business_id=session.business_id,
            channel=session.channel,
            caller_phone=session.caller_phone,
            customer_id=customer.id if customer else None,
            started_at=now,
        )
        s.add(call)
    return call


async def caller_context(db: Database, business: Business, caller_phone: str | None) -> CallerContext:
    if not caller_phone:
        return CallerContext()
    scope = BusinessScope(db.session_maker, business.id)
    customer = await scope.customer_by_phone(caller_phone)
    if customer is None:
        return CallerContext(phone=caller_phone)
    tz = zone(business.timezone)
    upcoming = [
        f"{a.service} on {a.starts_at.astimezone(tz):%A %Y-%m-%d at %H:%M} (id {a.id})"
        for a in await scope.upcoming_for_phone(caller_phone)
    ]
    return CallerContext(phone=caller_phone, name=customer.name or None, upcoming=upcoming[:5])


async def fail_unstarted_session(db: Database, session_id: UUID, reason: str) -> bool:
    """End a session that never got a working call (no Call row yet); True if this changed it."""
    async with db.session() as s, s.begin():
        result = await s.execute(
            update(Session)
            .where(Session.id == session_id, Session.ended_at.is_(None))
            .values(status=SessionStatus.FAILED.value, ended_at=datetime.now(UTC), failure_reason=reason)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


#: A live call writes at least every HEARTBEAT_SECONDS; this long without a write means its process is gone.
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)
#: A session nobody connected to, well after its connect token stopped working (a retried Twilio webhook
#: renews the token within seconds, so the margin covers it).
UNCLAIMED_AFTER = timedelta(seconds=TOKEN_MAX_AGE_SECONDS) + timedelta(minutes=10)


async def finalise_stale_calls(db: Database, *, now: datetime | None = None) -> int:
    """End calls left in progress by a process that died (a crash, a kill, a lost machine): no write for
    STALE_AFTER. Each ends at its last sign of life, once (same guard as the recorder), and gets its summary
    job. Returns how many were ended."""
    now = now or datetime.now(UTC)
    cutoff = now - STALE_AFTER
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Call.id, Call.session_id, Call.started_at, Call.updated_at)
                .where(Call.ended_at.is_(None), Call.updated_at < cutoff)
            )
        ).all()
    ended = 0
    for call_id, session_id, started_at, last_seen in rows:
        async with db.session() as s, s.begin():
            result = await s.execute(
                update(Call)
                .where(Call.id == call_id, Call.ended_at.is_(None), Call.updated_at < cutoff)
                .values(status=CallStatus.FAILED.value, end_reason="interrupted", ended_at=last_seen,
                        duration_seconds=round(max(0.0, (last_seen - started_at).total_seconds()), 3),
                        # Whether the caller spoke isn't known here: only the length decides (the 15 s rule).
                        billable_seconds=billable_on_finalise(max(0.0, (last_seen - started_at).total_seconds()),
                                                              caller_spoke=False),
                        updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            await s.execute(
                update(Session)
                .where(Session.id == session_id)
                .values(status=SessionStatus.FAILED.value, ended_at=last_seen,
                        failure_reason="the service stopped while the call was in progress")
            )
            await enqueue(s, SUMMARY_JOB, {"call_id": str(call_id)}, key=f"summary:{call_id}")
            await on_call_finalised(s, call_id)
            ended += 1
    return ended


async def close_unclaimed_sessions(db: Database, *, now: datetime | None = None) -> int:
    """Close sessions whose caller never connected (a test page shut before the call started, a Twilio
    call that never opened its stream and whose status callback was lost), so none shows as pending for
    ever. Claiming the token in the same statement keeps a late socket out. Returns how many were closed."""
    now = now or datetime.now(UTC)
    async with db.session() as s, s.begin():
        result = await s.execute(
            update(Session)
            .where(Session.ended_at.is_(None), Session.token_used_at.is_(None),
                   Session.created_at < now - UNCLAIMED_AFTER)
            .values(status=SessionStatus.FAILED.value, ended_at=now, token_used_at=now,
                    failure_reason="the caller never connected")
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
