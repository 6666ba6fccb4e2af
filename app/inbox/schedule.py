"""When the timed notifications go out: reminders the day before an appointment, the owner's daily digest.

Pure functions of `now` and the business's timezone, so tests run them on a virtual clock. Times are the
business's local wall clock: a reminder "at 18:00 the day before" is 18:00 local on either side of a DST change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.i18n.text import tr


class TimeOfDayError(ValueError):
    pass


def parse_time_of_day(value: str) -> time:
    """"HH:MM" (24-hour) -> time; anything else is a clear error."""
    try:
        hours, minutes = value.strip().split(":")
        parsed = time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise TimeOfDayError(tr("use a time like 18:00, got %(text)s", text=repr(value))) from None
    return parsed


def local_moment(day: date, at: str, tz: ZoneInfo) -> datetime:
    """The UTC instant of local `day` at `at`. A wall time skipped by a DST change falls an hour later."""
    naive = datetime.combine(day, parse_time_of_day(at))
    moment = naive.replace(tzinfo=tz)
    # zoneinfo resolves a skipped time with the offset from before the gap; round-trip to land after it.
    return moment.astimezone(UTC).astimezone(tz).astimezone(UTC)


def reminder_due(starts_at: datetime, tz: ZoneInfo, at: str) -> datetime:
    """The local day before the appointment, at the owner's chosen time."""
    day_before = starts_at.astimezone(tz).date() - timedelta(days=1)
    return local_moment(day_before, at, tz)


def next_digest(now: datetime, tz: ZoneInfo, at: str) -> tuple[date, datetime]:
    """The next digest (its local day and instant) strictly after `now`."""
    today = now.astimezone(tz).date()
    moment = local_moment(today, at, tz)
    if moment <= now:
        today += timedelta(days=1)
        moment = local_moment(today, at, tz)
    return today, moment
