"""When the receptionist may call someone: inside the business's calling hours on the customer's own clock.

The customer's clock is their number's time zone (phonenumbers' geographic time-zone data: +1 212 is New
York, +44 20 London). A number that spans several zones (some area codes, most mobile ranges of a large
country) is called only when the hours hold in every one of them, so nobody is rung at 8 a.m. their time
because the first zone said 9. A number with no zone data falls back to the business's time zone.

Windows are computed per local day with zoneinfo, so a DST change moves the UTC instants and never the wall
clock: "09:00-19:00" is 09:00-19:00 local on the day clocks go forward too (a wall time inside the skipped
hour falls an hour later, as `app.inbox.schedule.local_moment` does for reminders).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import NumberParseException
from phonenumbers import timezone as number_timezones

from app.db.hours import Interval, intersect
from app.i18n.text import message_of, tr
from app.inbox.schedule import local_moment, parse_time_of_day

#: how far ahead a window is looked for (a week covers every daily window, DST changes included)
LOOKAHEAD_DAYS = 8


class CallingHoursError(ValueError):
    pass


@lru_cache(maxsize=1024)
def zones_for_number(number: str) -> tuple[str, ...]:
    """The IANA zones phonenumbers knows for an E.164 number; () when it knows none."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return ()
    zones = []
    for name in number_timezones.time_zones_for_number(parsed):
        if name == number_timezones.UNKNOWN_TIMEZONE:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        zones.append(name)
    return tuple(zones)


def customer_zones(number: str, business_timezone: str) -> tuple[ZoneInfo, ...]:
    names = zones_for_number(number) or (business_timezone or "UTC",)
    try:
        return tuple(ZoneInfo(n) for n in names)
    except (ZoneInfoNotFoundError, ValueError):
        return (ZoneInfo("UTC"),)


def validate_window(start: str, end: str) -> tuple[str, str]:
    """"HH:MM" both, start before end (a window never spans midnight: nobody wants a call at 1 a.m.)."""
    try:
        s, e = parse_time_of_day(start), parse_time_of_day(end)
    except ValueError as exc:
        raise CallingHoursError(message_of(exc)) from None
    if s >= e:
        raise CallingHoursError(tr("calling hours must start before they end, on the same day"))
    return f"{s:%H:%M}", f"{e:%H:%M}"


def _windows(zone: ZoneInfo, start: str, end: str, first: date, days: int) -> list[Interval]:
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        opening, closing = local_moment(day, start, zone), local_moment(day, end, zone)
        if opening < closing:
            out.append(Interval(opening, closing))
    return out


def next_calling_time(now: datetime, zones: Sequence[ZoneInfo], start: str, end: str) -> datetime | None:
    """The first instant at or after `now` inside the calling hours in every zone; None if none this week."""
    now = now.astimezone(UTC)
    common: list[Interval] | None = None
    for zone in zones:
        first = now.astimezone(zone).date() - timedelta(days=1)
        windows = _windows(zone, start, end, first, LOOKAHEAD_DAYS)
        common = windows if common is None else intersect(common, windows)
    for window in common or []:
        if window.end > now:
            return max(window.start, now)
    return None


def within_calling_hours(now: datetime, zones: Sequence[ZoneInfo], start: str, end: str) -> bool:
    return next_calling_time(now, zones, start, end) == now.astimezone(UTC)
