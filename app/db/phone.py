"""Phone numbers are stored in E.164 so a caller's `From` matches the customer row they created by voice."""

from __future__ import annotations

import re

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class PhoneError(ValueError):
    pass


def normalize_phone(raw: str, default_country_code: str = "1") -> str:
    """'+1 (555) 123-4567', '555-123-4567', '15551234567' -> '+15551234567'."""
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        candidate = "+" + digits
    elif text.startswith("00"):
        candidate = "+" + digits[2:]
    elif default_country_code == "1" and len(digits) == 10:
        candidate = "+1" + digits
    elif default_country_code == "1" and len(digits) == 11 and digits.startswith("1"):
        candidate = "+" + digits
    else:
        candidate = "+" + default_country_code + digits.lstrip("0")
    if not _E164.match(candidate):
        raise PhoneError(f"{raw!r} is not a phone number in international form (like +15551234567)")
    return candidate


def is_e164(value: str) -> bool:
    return bool(_E164.match(value))
