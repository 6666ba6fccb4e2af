"""Database look-ups for phone calls: the business a number belongs to, the session of a CallSid. The
Session/Call transitions (offering a call, a retried webhook, a call that never streamed) are in
app.voice.lifecycle."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Business, Session
from app.db.phone import PhoneError, normalize_phone
from app.voice.lifecycle import finalise_without_stream, offer_twilio_session

__all__ = ["FINAL_STATUSES", "business_for_number", "finalise_without_stream", "offer_twilio_session",
           "phone_or_none", "session_for_call_sid"]

log = logging.getLogger(__name__)

# Twilio's final CallStatus values; anything else (queued, ringing, in-progress) is progress, not an end.
FINAL_STATUSES = {"completed", "busy", "no-answer", "canceled", "failed"}


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


async def session_for_call_sid(db: Database, call_sid: str) -> Session | None:
    async with db.session() as s:
        return await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
