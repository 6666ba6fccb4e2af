"""The business form (onboarding and settings): parse the posted fields, validate, and keep what was typed.

Validation returns every error at once, keyed by field name, so the form can show each one beside its
input (and list them all above the Save button); the typed values are kept so a mistake never loses the
rest of the form. What people type is read by `typed_input` ("9am-5pm", "$250", "1h30", "new york").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.dashboard.typed_input import (
    InputError,
    all_timezones,
    format_hours,
    parse_minutes,
    parse_price,
    parse_timezone,
    parse_week,
)
from app.db.hours import WEEKDAYS, HoursError, validate_weekly_hours
from app.db.models import Business
from app.db.phone import (
    PhoneError,
    ShortCode,
    business_region,
    national_format,
    normalize_phone,
    transfer_error,
)
from app.i18n.text import message_of, tr

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
COMMON_TIMEZONES = all_timezones()
MIN_CALL_MINUTES, MAX_CALL_MINUTES = 1, 60
MIN_SERVICE_MINUTES, MAX_SERVICE_MINUTES = 5, 480
MAX_SERVICES = 30
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 3650
DEFAULT_CALL_MINUTES = 10


FIELD_ORDER = ("name", "timezone", "address", "phone_number", "transfer_number",
               *(f"hours_{d}" for d in WEEKDAYS), "hours", "services")
LATER_FIELDS = ("greeting", "instructions", "voice", "max_call_minutes", "recording_retention_days")


def _field_order(key: str) -> tuple[int, int]:
    """Where a field sits on the page, so the error list reads top to bottom like the form."""
    if key in FIELD_ORDER:
        return FIELD_ORDER.index(key), 0
    if key.startswith("service_") and key[8:].isdigit():
        return len(FIELD_ORDER), int(key[8:])
    if key in LATER_FIELDS:
        return len(FIELD_ORDER) + 1 + LATER_FIELDS.index(key), 0
    return len(FIELD_ORDER) + 1 + len(LATER_FIELDS), 0


@dataclass
class ServiceRow:
    name: str = ""
    minutes: str = ""
    price: str = ""
    error: str = ""
    field: str = ""  # which input the error is about: name, minutes or price


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

    def error_links(self) -> list[tuple[str, str]]:
        """(input id, message) for every error, in the form's order, for the list beside the Save button."""
        links = []
        for key, message in sorted(self.errors.items(), key=lambda item: _field_order(item[0])):
            if key.startswith("service_") and key[8:].isdigit():
                row = self.services[int(key[8:]) - 1]
                links.append((f"{key}-{row.field or 'name'}", message))
            elif key == "services":
                links.append(("service_1-name", message))
            elif key == "hours":
                links.append(("hours_mon", message))
            else:
                links.append((key, message))
        return links

    def service_rows(self) -> list[ServiceRow]:
        # Always one empty row to type into; more come from "Add a service".
        return self.services or [ServiceRow()]


def hours_text(ranges: list[list[str]] | None) -> str:
    return format_hours(ranges)


def _minutes_text(seconds: int) -> str:
    return f"{seconds / 60:g}"


@dataclass(frozen=True)
class TransferRules:
    """Where the operator lets transfers go beyond the business's own country (issue 8)."""

    allow_countries: tuple[str, ...] = ()
    allow_international: bool = False


def form_from_business(business: Business | None) -> BusinessForm:
    if business is None:
        # The timezone is left for the page's script to fill with the browser's own zone.
        return BusinessForm(
            raw={"timezone": "", "voice": "marin", "max_call_minutes": str(DEFAULT_CALL_MINUTES)},
            hours={d: ("9am-5pm" if d in WEEKDAYS[:5] else "") for d in WEEKDAYS},
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
            "max_call_minutes": _minutes_text(business.max_call_seconds),
            "recording_enabled": "on" if business.recording_enabled else "",
            "recording_retention_days": str(business.recording_retention_days or ""),
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
        errors[key] = tr("Short codes can't take transfers; use a full phone number.")
        return None
    except PhoneError:
        errors[key] = tr("Enter a full phone number with its area code, or in international format like "
                         "+15551234567.")
        return None


def _check_service(row: ServiceRow, seen: set[str]) -> tuple[int, float] | None:
    """The row's minutes and price, or None with `row.error` set (one error per row, on the first bad input)."""
    if not row.name or len(row.name) > 100:
        row.error, row.field = tr("Give the service a name (up to 100 characters)."), "name"
        return None
    if row.name.lower() in seen:
        row.error, row.field = tr("“%(name)s” is listed twice.", name=row.name), "name"
        return None
    try:
        length = parse_minutes(row.minutes) if row.minutes else 0
    except InputError as exc:
        row.error, row.field = message_of(exc), "minutes"
        return None
    if not MIN_SERVICE_MINUTES <= length <= MAX_SERVICE_MINUTES:
        row.error, row.field = (
            tr("How long it takes: between %(min)s and %(max)s minutes.", min=MIN_SERVICE_MINUTES,
               max=MAX_SERVICE_MINUTES), "minutes")
        return None
    try:
        price = parse_price(row.price)
    except InputError as exc:
        row.error, row.field = message_of(exc), "price"
        return None
    return length, price


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
        checked = _check_service(row, seen)
        if checked is None:
            errors[f"service_{len(rows)}"] = tr("Service %(number)s: %(problem)s", number=len(rows), problem=row.error)
            continue
        seen.add(row.name.lower())
        clean.append({"name": row.name, "minutes": checked[0], "price": checked[1]})
    if len(clean) > MAX_SERVICES:
        errors["services"] = tr("List at most %(max)s services.", max=MAX_SERVICES)
    return rows, clean


def parse_business_form(
    form: Any, *, phone_number: str | None = None, transfers: TransferRules | None = None
) -> BusinessForm:
    """`phone_number` is the business's own number (not a form field: it comes from the Twilio account);
    numbers typed without a country code are read in its country, else the chosen timezone's."""
    keys = ("name", "timezone", "transfer_number", "address", "greeting", "instructions",
            "voice", "max_call_minutes", "recording_enabled", "recording_retention_days")
    result = BusinessForm(raw={k: _text(form, k) for k in keys})
    raw, errors, values = result.raw, result.errors, result.values

    if not raw["name"]:
        errors["name"] = tr("Enter your business's name.")
    elif len(raw["name"]) > 200:
        errors["name"] = tr("Keep the name under 200 characters.")
    values["name"] = raw["name"]

    try:
        values["timezone"] = parse_timezone(raw["timezone"])
    except InputError as exc:
        errors["timezone"] = message_of(exc)

    region = business_region(phone_number, values.get("timezone"))
    raw["phone_number"] = national_format(phone_number, region)  # shown, never read back
    values["transfer_number"] = _phone(raw["transfer_number"], "transfer_number", errors, region)
    if phone_number and phone_number == values["transfer_number"]:
        errors["transfer_number"] = tr("Transfers must go to a different number than the one the receptionist "
                                       "answers.")
    elif values["transfer_number"]:
        rules = transfers or TransferRules()
        problem = transfer_error(values["transfer_number"], region, allowed_regions=rules.allow_countries,
                                 allow_international=rules.allow_international)
        if problem:
            errors["transfer_number"] = problem

    for key, limit in (("address", 500), ("greeting", 1000), ("instructions", 4000)):
        if len(raw[key]) > limit:
            errors[key] = tr("Keep this under %(limit)s characters (it has %(length)s).", limit=limit,
                             length=len(raw[key]))
        values[key] = raw[key]
    if not values["greeting"] and "name" not in errors:
        values["greeting"] = f"Thanks for calling {raw['name']}, how can I help you today?"

    if raw["voice"] not in VOICES:
        errors["voice"] = tr("Choose one of the listed voices.")
    values["voice"] = raw["voice"]

    limit_error = tr("The longest call is between %(min)s and %(max)s minutes (like 10, or 1h for an hour).",
                     min=MIN_CALL_MINUTES, max=MAX_CALL_MINUTES)
    try:
        minutes = parse_minutes(raw["max_call_minutes"])
        if not MIN_CALL_MINUTES <= minutes <= MAX_CALL_MINUTES:
            errors["max_call_minutes"] = limit_error
        values["max_call_seconds"] = minutes * 60
    except InputError:
        errors["max_call_minutes"] = limit_error

    values["recording_enabled"] = raw["recording_enabled"] in {"on", "true", "1", "yes"}
    keep = re.sub(r"\s*days?$", "", raw["recording_retention_days"].lower())
    if not keep or keep in {"forever", "always", "never"}:
        values["recording_retention_days"] = None
    elif keep.isdigit() and MIN_RETENTION_DAYS <= int(keep) <= MAX_RETENTION_DAYS:
        values["recording_retention_days"] = int(keep)
    else:
        errors["recording_retention_days"] = (
            tr("Keep recordings for %(min)s to %(max)s days, or leave it empty to keep them.",
               min=MIN_RETENTION_DAYS, max=MAX_RETENTION_DAYS))

    for day in WEEKDAYS:
        result.hours[day] = _text(form, f"hours_{day}")
    weekly, day_errors = parse_week(result.hours)
    errors.update({f"hours_{day}": message for day, message in day_errors.items()})
    if not day_errors:
        try:
            values["weekly_hours"] = validate_weekly_hours(weekly)
        except HoursError as exc:  # the model's own rules, should the two ever drift apart
            errors["hours"] = message_of(exc)

    result.services, values["services"] = _services(form, errors)
    if not values["services"] and not any(k.startswith("service") for k in errors):
        errors["services"] = tr("Add at least one service so callers can book it.")
    return result
