"""Calls the AI does not answer because the business's plan says so (issue 13): forward, else a message.

`fallback_twiml` is the one place that words the TwiML for such a call; point it at the shared fallback module
(forward/voicemail, issue 11) when that lands. The call is still recorded (a Session and a Call with
`end_reason` saying why), so the owner sees on the calls and billing pages what happened; it bills nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.db.models import Business, Call, CallStatus, Channel, Session, SessionStatus
from app.telephony import twiml

log = logging.getLogger(__name__)

LIMIT_APOLOGY = ("Sorry, no one can take your call right now. Please call back later, or reach us another way. "
                 "Goodbye.")


def fallback_twiml(business: Business, reason: str) -> str:
    """Forward to the owner's transfer number when there is one, else apologise and hang up."""
    if business.transfer_number:
        return twiml.dial(business.transfer_number, caller_id=business.phone_number)
    return twiml.say_and_hang_up(LIMIT_APOLOGY)


async def answer_without_ai(db: Database, business: Business, *, call_sid: str, caller_phone: str | None,
                            reason: str) -> str:
    """Record the call as handled without the AI and return the TwiML that handles it."""
    forwarded = bool(business.transfer_number)
    now = datetime.now(UTC)
    try:
        async with db.session() as s, s.begin():
            session = Session(business_id=business.id, channel=Channel.TWILIO.value,
                              status=SessionStatus.COMPLETED.value, caller_phone=caller_phone,
                              twilio_call_sid=call_sid, token_used_at=now, started_at=now, ended_at=now)
            s.add(session)
            await s.flush()
            s.add(Call(session_id=session.id, business_id=business.id, channel=Channel.TWILIO.value,
                       caller_phone=caller_phone,
                       status=(CallStatus.TRANSFERRED if forwarded else CallStatus.ABANDONED).value,
                       started_at=now, ended_at=now, duration_seconds=0.0,
                       end_reason=f"{reason}_{'forwarded' if forwarded else 'not_answered'}"))
    except IntegrityError:
        # Twilio retried the webhook (same CallSid): the call is already recorded; answer the same way.
        log.info("call %s: plan-limit webhook repeated", call_sid)
    log.info("call %s for business %s not answered by the AI (%s): %s", call_sid, business.id, reason,
             "forwarded" if forwarded else "apology")
    return fallback_twiml(business, reason)
