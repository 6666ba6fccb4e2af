"""Weekly opening hours in a business's own timezone, and the free slots they leave.

All arithmetic on instants happens in UTC: a slot is an absolute interval, so a day that loses or gains an
hour at a DST change has exactly as many real minutes of opening as the clock on the wall says. Wall-clock
times that don't exist (spring forward) are moved past the gap; ambiguous ones (fall back) take the first.

Exceptions for single local dates (holidays, changed hours) replace that date's weekly ranges; a date closed
all day is closed from its local midnight to the next, so an overnight range from the evening before stops
at midnight. Resource hours are intersected with the business's: the business's hours are the envelope.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                    "Sunday"), strict=True))
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")

WeeklyHours = Mapping[str, Sequence[Sequence[str]]]
#: Local date -> that date's own ranges ([] for closed all day).
DayExceptions = Mapping[date, Sequence[Sequence[str]]]


class HoursError(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown timezone {name!r}") from None


def _minutes(hhmm: str) -> int:
    if not _HHMM.match(hhmm):
        raise HoursError(f"time must be HH:MM, got {hhmm!r}")
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def validate_weekly_hours(hours: WeeklyHours) -> dict[str, list[list[str]]]:
    """Return a clean copy; a close at or before the open means the business is open past midnight."""
    clean: dict[str, list[list[str]]] = {}
    for day, ranges in hours.items():
        if day not in WEEKDAYS:
            raise HoursError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        out: list[list[str]] = []
        for pair in ranges:
            if len(pair) != 2:
                raise HoursError(f"{day}: each range is [open, close]")
            opening, closing = str(pair[0]), str(pair[1])
            if _minutes(opening) == _minutes(closing) and closing != "24:00":
                raise HoursError(f"{day}: {opening}-{closing} is empty")
            out.append([opening, closing])
        out.sort(key=lambda p: _minutes(p[0]))
        clean[day] = out
    return clean


def _local_to_utc(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    local = naive.replace(tzinfo=tz, fold=0)
    # A wall time inside a spring-forward gap doesn't round-trip; zoneinfo gives the pre-gap offset,
    # which lands after the gap in UTC: that is the moment the business actually opens.
    return local.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime  # UTC
    end: datetime  # UTC

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end


def validate_day_ranges(ranges: Sequence[Sequence[str]]) -> list[list[str]]:
    """One date's ranges, checked like a weekday's ([] means closed all day)."""
    return validate_weekly_hours({"mon": ranges})["mon"]


def local_day(day: date, tz: ZoneInfo) -> Interval:
    """The UTC interval of one local calendar day (23 or 25 hours at a DST change)."""
    return Interval(_local_to_utc(day, 0, tz), _local_to_utc(day + timedelta(days=1), 0, tz))


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, interval.end))
        else:
            merged.append(interval)
    return merged


def subtract(intervals: Sequence[Interval], holes: Iterable[Interval]) -> list[Interval]:
    out = list(intervals)
    for hole in holes:
        nxt: list[Interval] = []
        for i in out:
            if not i.overlaps(hole):
                nxt.append(i)
                continue
            if i.start < hole.start:
                nxt.append(Interval(i.start, hole.start))
            if hole.end < i.end:
                nxt.append(Interval(hole.end, i.end))
        out = nxt
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out = []
    for x in a:
        for y in b:
            start, end = max(x.start, y.start), min(x.end, y.end)
            if start < end:
                out.append(Interval(start, end))
    return _merge(out)


def opening_intervals(
    hours: WeeklyHours, tz: ZoneInfo, first: date, last: date, exceptions: DayExceptions | None = None
) -> list[Interval]:
    """Opening intervals (UTC) for the local dates first..last, including ones that began the day before."""
    exceptions = exceptions or {}
    out: list[Interval] = []
    day = first - timedelta(days=1)
    while day <= last:
        ranges = exceptions[day] if day in exceptions else hours.get(WEEKDAYS[day.weekday()], ())
        for opening, closing in ranges:
            o, c = _minutes(opening), _minutes(closing)
            close_day = day if c > o else day + timedelta(days=1)
            start = _local_to_utc(day, o, tz)
            end = _local_to_utc(close_day, c, tz)
            if end > start:
                out.append(Interval(start, end))
        day += timedelta(days=1)
    # Merge touching ranges (e.g. 22:00-24:00 then 00:00-02:00) so a slot may span them.
    merged = _merge(out)
    closed = [local_day(d, tz) for d, ranges in exceptions.items() if not ranges and first - timedelta(days=1) <= d]
    return subtract(merged, closed) if closed else merged


def is_open_for(hours: WeeklyHours, tz: ZoneInfo, slot: Interval, exceptions: DayExceptions | None = None) -> bool:
    local_start = slot.start.astimezone(tz).date()
    local_end = slot.end.astimezone(tz).date()
    return any(i.contains(slot) for i in opening_intervals(hours, tz, local_start, local_end, exceptions))


def free_starts(
    opening: Sequence[Interval],
    tz: ZoneInfo,
    first: date,
    last: date,
    duration: timedelta,
    busy: Iterable[Interval],
    *,
    now: datetime,
    padded_busy: Iterable[Interval] = (),
    before: timedelta = timedelta(0),
    after: timedelta = timedelta(0),
    latest: datetime | None = None,
    step: timedelta = timedelta(minutes=15),
    limit: int = 200,
) -> list[datetime]:
    """Local start times on local dates first..last where `duration` fits inside `opening`, at or after
    `now` (and not after `latest`), with the slot padded by before/after clear of every busy interval and
    the slot itself clear of every other booking's padded interval (buffers may share a gap)."""
    # Disjoint, sorted unions: each slot's overlap test is one bisect instead of a scan of every busy time.
    busy_union, padded_union = _merge(busy), _merge(padded_busy)
    busy_ends = [i.end for i in busy_union]
    padded_ends = [i.end for i in padded_union]
    result: list[datetime] = []
    for interval in opening:
        start = interval.start
        while start + duration <= interval.end and len(result) < limit:
            slot = Interval(start, start + duration)
            padded = Interval(start - before, slot.end + after)
            local = start.astimezone(tz)
            if (
                first <= local.date() <= last
                and start >= now
                and (latest is None or start <= latest)
                and not _hits(busy_union, busy_ends, padded)
                and not _hits(padded_union, padded_ends, slot)
            ):
                result.append(local)
            start += step
    return result


def _hits(union: Sequence[Interval], ends: Sequence[datetime], probe: Interval) -> bool:
    """Whether `probe` overlaps a disjoint sorted union (`ends` its end instants)."""
    index = bisect_right(ends, probe.start)  # the first interval ending after the probe starts
    return index < len(union) and union[index].start < probe.end


def free_slots(
    hours: WeeklyHours,
    tz: ZoneInfo,
    first: date,
    last: date,
    duration: timedelta,
    busy: Iterable[Interval],
    *,
    now: datetime,
    step: timedelta = timedelta(minutes=15),
    limit: int = 200,
) -> list[datetime]:
    """Local start times on local dates first..last where `duration` fits inside opening hours,
    after `now`, and clear of every busy interval. Starts are aligned to `step` past the opening."""
    return free_starts(
        opening_intervals(hours, tz, first, last), tz, first, last, duration, busy, now=now, step=step, limit=limit
    )


def describe_hours(hours: WeeklyHours) -> str:
    """Human wording for prompts and the dashboard: 'Monday 09:00-17:00; Sunday closed'."""
    parts = []
    for day in WEEKDAYS:
        ranges = hours.get(day) or []
        text = ", ".join(f"{o}-{c}" for o, c in ranges) if ranges else "closed"
        parts.append(f"{WEEKDAY_NAMES[day]} {text}")
    return "; ".join(parts)
