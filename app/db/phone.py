"""Phone numbers, through `phonenumbers`: stored in E.164, parsed in the business's region, shown nationally.

Invariant: every number the database holds is E.164 (`+442079460958`), whatever the owner or a caller typed,
so a caller's `From` matches the customer row they created by voice. A number written without its country
code is read in the business's region: the country of its phone number, else the country of its timezone
(`Europe/London` -> GB), else the US. Storing and matching need only a *possible* number (right length for
its country), because made-up test numbers such as +1 555 are possible but not valid; a number calls may be
sent to (a transfer) must be *valid* and of a type that costs nothing unusual to dial (see `transfer_error`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
from babel import Locale
from babel.core import get_global
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

from app.i18n.text import tr

DEFAULT_REGION = "US"

# Twilio sends these pseudo-numbers as `From` when the caller withheld their number (the digits spell
# ANONYMOUS, RESTRICTED, UNAVAILABLE, BLOCKED on a keypad); they identify nobody.
WITHHELD_NUMBERS = frozenset({"+266696687", "+7378742833", "+86282452253", "+8656696", "+2562533"})

# What a transfer may dial: ordinary lines. Premium-rate, shared-cost, personal-number and pager ranges are
# what toll fraud uses to turn the service's Twilio account into someone's revenue.
TRANSFER_TYPES = frozenset({
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.VOIP,
    PhoneNumberType.UAN,
})
_TYPE_WORDS = {
    PhoneNumberType.PREMIUM_RATE: tr("a premium-rate number"),
    PhoneNumberType.SHARED_COST: tr("a shared-cost number"),
    PhoneNumberType.PERSONAL_NUMBER: tr("a personal (follow-me) number"),
    PhoneNumberType.PAGER: tr("a pager number"),
}


_ENGLISH = Locale("en")


class PhoneError(ValueError):
    pass


class ShortCode(PhoneError):
    """A short code (118 118, 911): dialable, but not a phone number anyone can be called back on."""


@lru_cache(maxsize=512)
def timezone_region(timezone: str | None) -> str | None:
    """The ISO country of an IANA timezone (`Europe/Paris` -> FR); None for UTC and the like."""
    if not timezone:
        return None
    territory = get_global("zone_territories").get(timezone)
    return territory if territory and len(territory) == 2 and territory != "001" else None


def number_region(number: str | None) -> str | None:
    """The ISO country of an E.164 number; for a possible but unassigned one (+1 555…), its calling code's
    main country."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region and region != "001":
        return region
    main = phonenumbers.region_code_for_country_code(parsed.country_code)
    return main if main != "ZZ" else None


def business_region(phone_number: str | None, timezone: str | None) -> str:
    """Where a business's numbers are read when typed without a country code."""
    return number_region(phone_number) or timezone_region(timezone) or DEFAULT_REGION


def _parse(raw: str, region: str | None) -> PhoneNumber:
    text = (raw or "").strip()
    if text.startswith("00"):  # the international prefix most of the world dials
        text = "+" + text[2:]
    try:
        return phonenumbers.parse(text, region or DEFAULT_REGION)
    except NumberParseException:
        raise PhoneError(tr("%(number)s is not a phone number", number=repr(raw))) from None


def normalize_phone(raw: str, region: str | None = DEFAULT_REGION) -> str:
    """The E.164 form of a number typed or spoken in `region`: '020 7946 0958' in GB -> '+442079460958',
    '(555) 123-4567' in US -> '+15551234567'; a leading + or 00 makes the region irrelevant."""
    parsed = _parse(raw, region)
    complete = phonenumbers.is_possible_number_with_reason(parsed) == phonenumbers.ValidationResult.IS_POSSIBLE
    # A trunk 0 the parser had to keep (a number too short once it is stripped) means digits are missing,
    # except where a leading 0 is part of the number itself (Italy) - and then the number is valid.
    if not complete and phonenumbers.is_valid_short_number(parsed):
        raise ShortCode(tr("%(number)s is a short code, not a phone number", number=repr(raw)))
    if not complete or (parsed.italian_leading_zero and not phonenumbers.is_valid_number(parsed)):
        raise PhoneError(tr("%(number)s is not a complete phone number; include the area code", number=repr(raw)))
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    if not value.startswith("+"):
        return False
    try:
        return normalize_phone(value, None) == value
    except PhoneError:
        return False


def vouched_number(raw: str | None) -> str | None:
    """A caller-ID the line vouches for: a real number in E.164, not 'anonymous', a SIP or client address, or
    one of Twilio's withheld-number stand-ins. None means nobody is identified."""
    text = (raw or "").strip()
    if not text.startswith("+") or not text[1:].isdigit():
        return None
    if text in WITHHELD_NUMBERS or not is_e164(text):
        return None
    return text


def national_format(number: str | None, region: str | None = None) -> str:
    """How the owner reads a stored number: nationally when it is in the business's own country
    ('020 7946 0958'), internationally otherwise ('+33 6 12 34 56 78')."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return number
    if region and number_region(number) == region:
        return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def transfer_error(
    number: str, home_region: str, *, allowed_regions: Iterable[str] = (), allow_international: bool = False
) -> str | None:
    """Why calls may not be transferred to `number` (E.164), or None when they may.

    Valid, an ordinary line (no premium-rate, shared-cost or short code), and in the business's own country
    unless the operator allowed more (TRANSFER_ALLOW_COUNTRIES / TRANSFER_ALLOW_INTERNATIONAL)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return tr("This is not a phone number.")
    if phonenumbers.is_valid_short_number(parsed) or len(str(parsed.national_number)) < 6:
        return tr("Short codes can't take transfers; use a full phone number.")
    if not phonenumbers.is_valid_number(parsed):
        return tr("This number doesn't exist in its country's numbering plan; check it.")
    kind = phonenumbers.number_type(parsed)
    if kind not in TRANSFER_TYPES:
        what = _TYPE_WORDS.get(kind, tr("this kind of number"))
        return tr("Calls can't be transferred to %(what)s; use a landline or mobile.", what=what)
    region = phonenumbers.region_code_for_number(parsed)
    allowed = {home_region, *(r.upper() for r in allowed_regions)}
    if not allow_international and region not in allowed:
        return tr("Transfers can only go to numbers in %(allowed)s; this number is in %(country)s.",
                  allowed=_country_list(allowed), country=_country_name(region))
    return None


def _country_name(region: str | None) -> str:
    if not region:
        return "no country"
    return _ENGLISH.territories.get(region, region)


def _country_list(regions: Iterable[str]) -> str:
    names = sorted(_country_name(r) for r in regions)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
