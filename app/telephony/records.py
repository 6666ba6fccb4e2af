"""Database work for phone calls that the call engine doesn't do: finding the business a number belongs to,
re-answering a retried webhook, and closing the record of a call that never got its media stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.db.models import Business, Call, CallStatus, Channel, Customer, Session, SessionStatus
from app.db.phone import PhoneError, normalize_phone
from app.inbox.outcomes import enqueue_settle
from app.voice.sessions import open_session
from app.voice.tokens import TokenIssuer

log = logging.getLogger(__name__)

# Twilio's final CallStatus values; anything else (queued, ringing, in-progress) is progress, not an end.
FINAL_STATUSES = {"completed", "busy", "no-answer", "canceled", "failed"}
_DESCRIPTIONS = {
    "completed": "the caller hung up before the call was connected",
    "busy": "the line was busy",
    "no-answer": "the call was not answered",
    "canceled": "the caller hung up while the call was ringing",
    "failed": "Twilio could not connect the call",
}


def phone_or_none(raw: str | None) -> str | None:
    """Twilio's `From` may be a number, 'anonymous', a SIP or client address: keep only real numbers."""
    if not raw:
        return None
    try:
        return normalize_phone(raw)
    except PhoneError:
        return None


async def business_for_number(db: Database, called: str | None) -> Business | None:
    number = phone_or_none(called)
    if number is None:
        return None
    async with db.session() as s:
        return await s.scalar(select(Business).where(Business.phone_number == number))


async def offer_twilio_session(
    db: Database, issuer: TokenIssuer, business: Business, *, call_sid: str, caller_phone: str | None
) -> tuple[Session, str] | None:
    """The Session for this CallSid and a fresh connect token; None when the call already has a stream.

    Twilio retries a voice webhook that timed out, with the same CallSid. The retry gets a new token for
    the same session (the old one stops working), as long as no stream has claimed it yet."""
    try:
        return await open_session(db, issuer, business, Channel.TWILIO.value, caller_phone=caller_phone,
                                  call_sid=call_sid)
    except IntegrityError:
        pass
    nonce = issuer.new_nonce()
    async with db.session() as s, s.begin():
        session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
        if session is None or session.business_id != business.id:
            return None
        result = await s.execute(
            update(Session)
            .where(Session.id == session.id, Session.token_used_at.is_(None), Session.ended_at.is_(None))
            .values(token_nonce=nonce)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
    log.info("voice webhook retried for call %s: new token for session %s", call_sid, session.id)
    return session, issuer.sign(session.id, nonce)


async def session_for_call_sid(db: Database, call_sid: str) -> Session | None:
    async with db.session() as s:
        return await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))


async def finalise_without_stream(
    db: Database, call_sid: str, twilio_status: str, duration_seconds: float | None = None
) -> tuple[UUID, UUID] | None:
    """Close the record of a call that ended before (or without) its media stream; returns the Session id
    and the new Call id, or None when there was nothing left to close.

    Claiming the connect token in the same statement means a stream that shows up late is refused, and a
    call whose stream already connected is left to its bridge: exactly one of them finalises it."""
    now = datetime.now(UTC)
    description = _DESCRIPTIONS.get(twilio_status, f"the call ended ({twilio_status})")
    status = CallStatus.ABANDONED if twilio_status in {"completed", "canceled"} else CallStatus.FAILED
    async with db.session() as s, s.begin():
        session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
        if session is None:
            return None
        result = await s.execute(
            update(Session)
            .where(Session.id == session.id, Session.token_used_at.is_(None), Session.ended_at.is_(None))
            .values(
                token_used_at=now,
                ended_at=now,
                status=SessionStatus.COMPLETED.value if status is CallStatus.ABANDONED else SessionStatus.FAILED.value,
                failure_reason=None if status is CallStatus.ABANDONED else description,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        customer_id = None
        if session.caller_phone:
            customer_id = await s.scalar(
                select(Customer.id).where(Customer.business_id == session.business_id,
                                          Customer.phone == session.caller_phone)
            )
        duration = max(0.0, duration_seconds or 0.0)
        call = Call(
            session_id=session.id,
            business_id=session.business_id,
            channel=Channel.TWILIO.value,
            caller_phone=session.caller_phone,
            customer_id=customer_id,
            status=status.value,
            started_at=session.created_at or now,
            ended_at=now,
            duration_seconds=duration,
            end_reason=f"twilio_{twilio_status.replace('-', '_')}",
            transcript="",
        )
        if duration and session.created_at:
            call.started_at = max(session.created_at, now - timedelta(seconds=duration))
        s.add(call)
        await s.flush()
        await enqueue_settle(s, call.id)  # issue 9: outcomes and owner notifications, with the ending
        return session.id, call.id
