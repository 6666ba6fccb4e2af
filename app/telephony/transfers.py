"""Where a call may be put through to: the business's transfer number, only while today's rules allow it.

Every path that dials out for a business (the receptionist's transfer, keypad 0, GPT-Live's call control, the
fallback forward when the AI can't answer) asks `usable_transfer_number`, so a number saved before the rules,
or an operator narrowing TRANSFER_ALLOW_*, never dials out by any of them."""

from __future__ import annotations

import logging

from app.db.models import Business
from app.db.phone import business_region, transfer_error
from app.settings import Settings

log = logging.getLogger(__name__)


def usable_transfer_number(business: Business, settings: Settings) -> str | None:
    """The business's transfer number if calls may go there under today's rules; None otherwise."""
    number = business.transfer_number
    if not number:
        return None
    problem = transfer_error(number, business_region(business.phone_number, business.timezone),
                             allowed_regions=settings.transfer_allow_countries,
                             allow_international=settings.transfer_allow_international)
    if problem:
        log.warning("business %s: transfers are off, its transfer number is refused: %s", business.id, problem)
        return None
    return number
