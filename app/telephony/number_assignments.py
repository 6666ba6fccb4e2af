"""Which business holds which of the account's numbers: the one way a number is taken or given back.

Invariant: a business's `phone_number` is set only here, and only to a number Twilio lists in the service's
own account (checked by fetching its sid under the account); two businesses never hold one number (a unique
column, checked first for a clear message and again by the database for races). The database claim comes
first, then the webhooks are set; whether Twilio took them is reported, never assumed. Used by the Settings
section (app.dashboard.number_settings) and the operator CLI (app.cli).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.db.models import Business
from app.db.phone import PhoneError, normalize_phone
from app.i18n.text import tr
from app.telephony.numbers import AccountNumber, NumberNotInAccount, TwilioNumbers, TwilioRefused
from app.telephony.rest import TwilioUnavailable

log = logging.getLogger(__name__)

NOT_IN_ACCOUNT = tr("That number is not one of this service's Twilio numbers, so it can't be used here. Pick one "
                    "from the list, or ask the operator to add it to the account.")
TAKEN = tr("Another business already uses that number. Pick a different one.")


class AssignmentRefused(Exception):
    """The owner (or operator) can't take this number; `message` says why in their words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Assignment:
    number: AccountNumber
    #: None when Twilio took the webhooks; otherwise what went wrong (the number is held all the same)
    webhook_error: str | None = None


async def holders(db: Database) -> dict[str, tuple[UUID, str]]:
    """Phone number -> (business id, business name) for every business holding one."""
    async with db.session() as s:
        rows = (await s.execute(select(Business.phone_number, Business.id, Business.name)
                                .where(Business.phone_number.is_not(None)))).all()
    return {number: (business_id, name) for number, business_id, name in rows}


async def assign(db: Database, numbers: TwilioNumbers, business_id: UUID, sid: str) -> Assignment:
    """Give the business the account's number `sid` and point its webhooks here."""
    try:
        number = await numbers.fetch(sid.strip())
    except NumberNotInAccount:
        raise AssignmentRefused(NOT_IN_ACCOUNT) from None
    return await _take(db, numbers, business_id, number)


async def assign_by_phone(db: Database, numbers: TwilioNumbers, business_id: UUID, phone: str) -> Assignment:
    """As `assign`, naming the number itself (the operator CLI): it must be in the account's list."""
    try:
        wanted = normalize_phone(phone, None)
    except PhoneError:
        raise AssignmentRefused(tr("%(number)s is not a phone number in international form (+15551234567)",
                                   number=repr(phone))) from None
    match = next((n for n in await numbers.list() if n.phone_number == wanted), None)
    if match is None:
        raise AssignmentRefused(NOT_IN_ACCOUNT)
    return await _take(db, numbers, business_id, match)


async def buy(db: Database, numbers: TwilioNumbers, business_id: UUID, phone: str) -> Assignment:
    """Buy an available number into the account and give it to the business (webhooks set by the purchase)."""
    try:
        wanted = normalize_phone(phone, None)
    except PhoneError:
        raise AssignmentRefused(tr("%(number)s is not a phone number", number=repr(phone))) from None
    try:
        number = await numbers.purchase(wanted)
    except TwilioRefused as exc:
        raise AssignmentRefused(tr("Twilio could not sell that number: %(why)s", why=exc.message)) from None
    return await _take(db, numbers, business_id, number, configure=False)


async def _take(
    db: Database, numbers: TwilioNumbers, business_id: UUID, number: AccountNumber, *, configure: bool = True
) -> Assignment:
    e164 = normalize_phone(number.phone_number, None)
    try:
        async with db.session() as s, s.begin():
            holder = await s.scalar(select(Business.id).where(
                or_(Business.phone_number == e164, Business.phone_number_sid == number.sid)))
            if holder is not None and holder != business_id:
                raise AssignmentRefused(TAKEN)
            business = await s.get(Business, business_id)
            if business is None:
                raise AssignmentRefused(tr("That business no longer exists."))
            previous = business.phone_number_sid
            business.phone_number, business.phone_number_sid = e164, number.sid
    except IntegrityError:
        raise AssignmentRefused(TAKEN) from None
    log.info("business %s now holds twilio number %s", business_id, number.sid)
    error = None
    if configure:
        try:
            number = await numbers.configure(number.sid)
        except (TwilioUnavailable, TwilioRefused) as exc:
            log.warning("webhooks of number %s not set: %s", number.sid, exc)
            error = str(exc)
    if previous and previous != number.sid:
        await _clear_quietly(numbers, previous)
    return Assignment(number, error)


async def _clear_quietly(numbers: TwilioNumbers, sid: str) -> str | None:
    try:
        await numbers.clear(sid)
    except NumberNotInAccount:
        return None  # gone from the account: nothing points here any more
    except (TwilioUnavailable, TwilioRefused) as exc:
        log.warning("webhooks of number %s not cleared: %s", sid, exc)
        return str(exc)
    return None


async def release(db: Database, numbers: TwilioNumbers | None, business_id: UUID) -> str | None:
    """The business gives its number back; its webhooks are cleared. Returns what went wrong clearing them
    (the number is released all the same: a call to it then hears that it isn't set up)."""
    async with db.session() as s, s.begin():
        business = await s.get(Business, business_id)
        if business is None or business.phone_number is None:
            return None
        sid = business.phone_number_sid
        business.phone_number, business.phone_number_sid = None, None
    log.info("business %s released its number %s", business_id, sid or "(typed in)")
    if sid is None or numbers is None:
        return None
    return await _clear_quietly(numbers, sid)
