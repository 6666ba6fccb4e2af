"""Sessions and their Call rows. The transitions themselves live in app.voice.lifecycle; this module keeps
what a call needs to know about its caller, and the earlier names of those transitions."""

from __future__ import annotations

from app.db.engine import Database
from app.db.hours import zone
from app.db.models import Business
from app.db.services import BusinessScope
from app.i18n.dates import spoken_datetime
from app.i18n.languages import match, offered
from app.voice.lifecycle import (
    STALE_AFTER,
    UNCLAIMED_AFTER,
    fail_unstarted,
    fail_unstarted_session,
)
from app.voice.lifecycle import close_unclaimed as close_unclaimed_sessions
from app.voice.lifecycle import offer_session as open_session
from app.voice.lifecycle import reap_stale_calls as finalise_stale_calls
from app.voice.prompts import CallerContext

__all__ = ["STALE_AFTER", "UNCLAIMED_AFTER", "caller_context", "close_unclaimed_sessions", "fail_unstarted",
           "fail_unstarted_session", "finalise_stale_calls", "open_session"]


async def caller_context(db: Database, business: Business, caller_phone: str | None) -> CallerContext:
    if not caller_phone:
        return CallerContext()
    scope = BusinessScope(db.session_maker, business.id)
    customer = await scope.customer_by_phone(caller_phone)
    if customer is None:
        return CallerContext(phone=caller_phone)
    tz = zone(business.timezone)
    # Worded in the language the customer last spoke (issue 16), else the business's primary one.
    language = match(offered(business.languages), customer.language) or offered(business.languages)[0]
    upcoming = [
        f"{a.service} on {a.starts_at.astimezone(tz):%Y-%m-%d %H:%M} ({spoken_datetime(a.starts_at, language, tz)}, "
        f"id {a.id})"
        for a in await scope.upcoming_for_phone(caller_phone)
    ]
    return CallerContext(phone=caller_phone, name=customer.name or None, upcoming=upcoming[:5],
                         language=customer.language)
