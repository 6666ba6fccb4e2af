"""Days and times the tests book on, picked relative to today so that a run on any date finds them open."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.db.hours import zone

#: the test businesses' zone (the default one)
NY = zone("America/New_York")


def next_weekday(after: date) -> date:
    """The first Monday-to-Friday day after `after`."""
    day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def next_saturday() -> date:
    """A Saturday at least three days ahead (past any booking notice)."""
    day = date.today() + timedelta(days=3)
    while day.weekday() != 5:
        day += timedelta(days=1)
    return day


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """`hour:minute` on `day`, New York time."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)
