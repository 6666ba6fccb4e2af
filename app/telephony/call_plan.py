"""What a phone call's set-up reads before its greeting: the business, what is known of the caller, and the
opening of a call the business placed. Read once the voice webhook has answered (Twilio takes about a second to
open the stream), so a stream that lands in the same process finds it ready instead of reading it between
`start` and the greeting (issue 10); a stream that lands elsewhere reads it then."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.db.engine import Database
from app.db.models import Business, Session
from app.db.services import BusinessScope
from app.outbound.opening import Opening, outbound_opening
from app.voice.prompts import CallerContext
from app.voice.sessions import caller_context


@dataclass(frozen=True, slots=True)
class PhoneCallPlan:
    business: Business
    caller: CallerContext
    #: set on a call the business placed: who is calling and why (issue 16)
    opening: Opening | None


async def plan_phone_call(db: Database, session: Session, business: Business | None = None) -> PhoneCallPlan:
    if business is None:
        business = await BusinessScope(db.session_maker, session.business_id).business()
    caller, opening = await asyncio.gather(caller_context(db, business, session.caller_phone),
                                           outbound_opening(db, session))
    return PhoneCallPlan(business, caller, opening)
