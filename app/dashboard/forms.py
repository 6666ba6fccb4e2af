"""The business form (onboarding and settings): parse the posted fields, validate, and keep what was typed.

Validation returns every error at once, keyed by field name, so the form can show each one beside its
input; the typed values are kept so a mistake never loses the rest of the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.db.hours import WEEKDAY_NAMES, WEEKDAYS, HoursError, validate_weekly_hours, zone
from app.db.models import Business
from app.db.phone import (
    PhoneError,
    ShortCode,
    business_region,
    national_format,
    normalize_phone,
    transfer_error,
)

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
COMMON_TIMEZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "America/Toronto", "America/Vancouver", "America/Mexico_City",
    "America/Sao_Paulo", "Europe/London", "Europe/Dublin", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Rome", "Europe/Amsterdam", "Africa/Johannesburg", "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore",
    "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland", "UTC",
)
MIN_CALL_SECONDS, MAX_CALL_SECONDS = 60, 3600
MIN_SERVICE_MINUTES, MAX_SERVICE_MINUTES = 5, 480
MAX_SERVICES = 30
BLANK_SERVICE_ROWS = 2
_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*$")


@dataclass
class ServiceRow:
    name: str = ""
    minutes: str = ""
    price: str = ""
    error: str = ""


@dataclass
class BusinessForm:
    """The raw text of every field (for re-rendering) plus errors; `values` holds the clean model fields."""

    raw: dict[str, str] = field(default_factory=dict)
    hours: dict[str, str] = field(default_factory=dict)
    services: list[ServiceRow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def service_rows(self) -> list[ServiceRow]:
        return [*self.services, *(ServiceRow() for _ in range(BLANK_SERVICE_ROWS))]


def _pad(hhmm: str) -> str:
    h, m = hhmm.split(":")
    return f"{int(h):02d}:{m}"


def hours_text(ranges: list[list[str]] | None) -> str:
    return ", ".join(f"{o}-{c}" for o, c in ranges) if ranges else ""


@dataclass(frozen=True)
class TransferRules:
    """Where the operator lets transfers go beyond the business's own country (issue 8)."""

    allow_countries: tuple[str, ...] = ()
    allow_international: bool = False


def form_from_business(business: Business | None) -> BusinessForm:
    if business is None:
        return BusinessForm(
            raw={"timezone": "America/New_York", "voice": "marin", "max_call_seconds": "600"},
            hours={d: ("09:00-17:00" if d in WEEKDAYS[:5] else "") for d in WEEKDAYS},
        )
    region = business_region(business.phone_number, business.timezone)
    return BusinessForm(
        raw={
            "name": business.name,
            "timezone": business.timezone,
            # The number is picked from the service's Twilio account in its own section (app.telephony.numbers).
            "phone_number": national_format(business.phone_number, region),
            "transfer_number": national_format(business.transfer_number, region),
            "address": business.address,
            "greeting": business.greeting,
            "instructions": business.instructions,
            "voice": business.voice,
            "max_call_seconds": str(business.max_call_seconds),
            "recording_enabled": "on" if business.recording_enabled else "",
        },
        hours={d: hours_text((business.weekly_hours or {}).get(d)) for d in WEEKDAYS},
        services=[
            ServiceRow(name=str(s.get("name", "")), minutes=str(s.get("minutes", "")),
                       price=f"{float(s.get('price', 0)):g}")
            for s in business.services or []
        ],
    )


def _text(form: Any, key: str) -> str:
    value = form.get(key, "")
    return str(value).strip() if value is not None else ""


def _phone(raw: str, key: str, errors: dict[str, str], region: str) -> str | None:
    if not raw:
        return None
    try:
        return normalize_phone(raw, region)
    except ShortCode:
        errors[key] = "Short codes can't take transfers; use a full phone number."
        return None
    except PhoneError:
        errors[key] = "Enter a full phone number with its area code, or in international format like +15551234567."
        return None


def _parse_hours(text: str) -> list[list[str]]:
    if not text or text.lower() in {"closed", "-", "none"}:
        return []
    ranges = []
    for part in text.split(","):
        match = _RANGE.match(part)
        if not match:
            raise HoursError(f"write hours like 09:00-17:00 (got {part.strip()!r})")
        ranges.append([_pad(match.group(1)), _pad(match.group(2))])
    return ranges


def _service_error(row: ServiceRow, seen: set[str]) -> str:
    if not row.name or len(row.name) > 100:
        return "Give the service a name (up to 100 characters)."
    if row.name.lower() in seen:
        return "This service is listed twice."
    try:
        length = int(row.minutes)
    except ValueError:
        return "Minutes must be a whole number."
    if not MIN_SERVICE_MINUTES <= length <= MAX_SERVICE_MINUTES:
        return f"Minutes must be between {MIN_SERVICE_MINUTES} and {MAX_SERVICE_MINUTES}."
    try:
        price = float(row.price or "0")
    except ValueError:
        return "The price must be a number, like 25 or 19.50."
    if not 0 <= price <= 100_000:  # also false for NaN
        return "The price must be 0 or more."
    return ""


def _services(form: Any, errors: dict[str, str]) -> tuple[list[ServiceRow], list[dict[str, Any]]]:
    names, minutes, prices = (form.getall(k, []) for k in ("service_name", "service_minutes", "service_price"))
    rows: list[ServiceRow] = []
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index in range(max(len(names), len(minutes), len(prices))):
        row = ServiceRow(
            name=str(names[index]).strip() if index < len(names) else "",
            minutes=str(minutes[index]).strip() if index < len(minutes) else "",
            price=str(prices[index]).strip() if index < len(prices) else "",
        )
        if not (row.name or row.minutes or row.price):
            continue  # a blank row is just room to add one
        rows.append(row)
        row.error = _service_error(row, seen)
        if row.error:
            errors["services"] = "Check the highlighted services."
            continue
        length, price = int(row.minutes), float(row.price or "0")
        seen.add(row.name.lower())
        clean.append({"name": row.name, "minutes": length, "price": round(price, 2)})
    if len(clean) > MAX_SERVICES:
        errors["services"] = f"List at most {MAX_SERVICES} services."
    return rows, clean


def parse_business_form(
    form: Any, *, phone_number: str | None = None, transfers: TransferRules | None = None
) -> BusinessForm:
    """`phone_number` is the business's own number (not a form field: it comes from the Twilio account);
    numbers typed without a country code are read in its country, else the chosen timezone's."""
    keys = ("name", "timezone", "transfer_number", "address", "greeting", "instructions",
            "voice", "max_call_seconds", "recording_enabled")
    result = BusinessForm(raw={k: _text(form, k) for k in keys})
    raw, errors, values = result.raw, result.errors, result.values

    if not raw["name"]:
        errors["name"] = "Enter your business's name."
    elif len(raw["name"]) > 200:
        errors["name"] = "Keep the name under 200 characters."
    values["name"] = raw["name"]

    try:
        zone(raw["timezone"])
        values["timezone"] = raw["timezone"]
    except HoursError:
        errors["timezone"] = "Choose a timezone such as America/New_York."

    region = business_region(phone_number, values.get("timezone"))
    raw["phone_number"] = national_format(phone_number, region)  # shown, never read back
    values["transfer_number"] = _phone(raw["transfer_number"], "transfer_number", errors, region)
    if phone_number and phone_number == values["transfer_number"]:
        errors["transfer_number"] = "Transfers must go to a different number than the one the receptionist answers."
    elif values["transfer_number"]:
        rules = transfers or TransferRules()
        problem = transfer_error(values["transfer_number"], region, allowed_regions=rules.allow_countries,
                                 allow_international=rules.allow_international)
        if problem:
            errors["transfer_number"] = problem

    for key, limit in (("address", 500), ("greeting", 1000), ("instructions", 4000)):
        if len(raw[key]) > limit:
            errors[key] = f"Keep this under {limit} characters."
        values[key] = raw[key]
    if not values["greeting"] and "name" not in errors:
        values["greeting"] = f"Thanks for calling {raw['name']}, how can I help you today?"

    if raw["voice"] not in VOICES:
        errors["voice"] = "Choose one of the listed voices."
    values["voice"] = raw["voice"]

    try:
        seconds = int(raw["max_call_seconds"])
        if not MIN_CALL_SECONDS <= seconds <= MAX_CALL_SECONDS:
            raise ValueError
        values["max_call_seconds"] = seconds
    except ValueError:
        errors["max_call_seconds"] = f"Enter a number of seconds between {MIN_CALL_SECONDS} and {MAX_CALL_SECONDS}."

    values["recording_enabled"] = raw["recording_enabled"] in {"on", "true", "1", "yes"}

    weekly: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        text = _text(form, f"hours_{day}")
        result.hours[day] = text
        try:
            weekly[day] = _parse_hours(text)
        except HoursError as exc:
            errors[f"hours_{day}"] = f"{WEEKDAY_NAMES[day]}: {exc}"
    if not any(key.startswith("hours_") for key in errors):
        try:
            values["weekly_hours"] = validate_weekly_hours(weekly)
        except HoursError as exc:
            errors["hours"] = str(exc)

    result.services, values["services"] = _services(form, errors)
    if not values["services"] and "services" not in errors:
        errors["services"] = "Add at least one service so callers can book it."
    return result
