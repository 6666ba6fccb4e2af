"""Opening hours → free slots: local time, DST changes, past midnight, busy intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.db.hours import (
    HoursError,
    Interval,
    describe_hours,
    free_slots,
    is_open_for,
    opening_intervals,
    validate_weekly_hours,
    zone,
)

NY = zone("America/New_York")
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def hhmm(slots: list[datetime]) -> list[str]:
    return [s.strftime("%H:%M") for s in slots]


def test_slots_are_local_and_fit_inside_hours() -> None:
    hours = {"wed": [["09:00", "10:30"]]}
    slots = free_slots(hours, NY, date(2026, 6, 3), date(2026, 6, 3), timedelta(minutes=30), [], now=LONG_AGO)
    assert hhmm(slots) == ["09:00", "09:15", "09:30", "09:45", "10:00"]
    assert all(s.utcoffset() == timedelta(hours=-4) for s in slots)  # EDT in June


def test_busy_intervals_and_now_remove_slots() -> None:
    hours = {"wed": [["09:00", "11:00"]]}
    day = date(2026, 6, 3)
    busy = [Interval(datetime(2026, 6, 3, 13, 30, tzinfo=UTC), datetime(2026, 6, 3, 14, 0, tzinfo=UTC))]  # 9:30 EDT
    now = datetime(2026, 6, 3, 14, 20, tzinfo=UTC)  # 10:20 EDT
    slots = free_slots(hours, NY, day, day, timedelta(minutes=30), busy, now=now)
    assert hhmm(slots) == ["10:30"]
    slots = free_slots(hours, NY, day, day, timedelta(minutes=30), busy, now=LONG_AGO)
    assert hhmm(slots) == ["09:00", "10:00", "10:15", "10:30"]


def test_spring_forward_day_has_one_hour_less() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT. Open 01:00-05:00 local is 3 real hours.
    hours = {"sun": [["01:00", "05:00"]]}
    (interval,) = opening_intervals(hours, NY, date(2026, 3, 8), date(2026, 3, 8))
    assert interval.end - interval.start == timedelta(hours=3)
    slots = free_slots(hours, NY, date(2026, 3, 8), date(2026, 3, 8), timedelta(hours=1), [], now=LONG_AGO,
                       step=timedelta(hours=1))
    assert hhmm(slots) == ["01:00", "03:00", "04:00"]  # 02:00 does not exist on that day
    assert [s.utcoffset() for s in slots] == [timedelta(hours=-5), timedelta(hours=-4), timedelta(hours=-4)]


def test_fall_back_day_has_one_hour_more() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST. Open 00:00-03:00 local is 4 real hours.
    hours = {"sun": [["00:00", "03:00"]]}
    (interval,) = opening_intervals(hours, NY, date(2026, 11, 1), date(2026, 11, 1))
    assert interval.end - interval.start == timedelta(hours=4)
    slots = free_slots(hours, NY, date(2026, 11, 1), date(2026, 11, 1), timedelta(hours=1), [], now=LONG_AGO,
                       step=timedelta(hours=1))
    assert hhmm(slots) == ["00:00", "01:00", "01:00", "02:00"]  # 01:00 happens twice
    assert slots[1].utcoffset() != slots[2].utcoffset()


def test_open_past_midnight() -> None:
    hours = {"fri": [["22:00", "02:00"]]}
    fri, sat = date(2026, 6, 5), date(2026, 6, 6)
    slots = free_slots(hours, NY, fri, sat, timedelta(hours=1), [], now=LONG_AGO, step=timedelta(hours=1))
    assert [(s.date().isoformat(), s.strftime("%H:%M")) for s in slots] == [
        ("2026-06-05", "22:00"), ("2026-06-05", "23:00"), ("2026-06-06", "00:00"), ("2026-06-06", "01:00"),
    ]
    # Asking for Saturday alone still sees the hours that began on Friday evening.
    sat_only = free_slots(hours, NY, sat, sat, timedelta(hours=1), [], now=LONG_AGO, step=timedelta(hours=1))
    assert hhmm(sat_only) == ["00:00", "01:00"]


def test_touching_ranges_merge_across_midnight() -> None:
    hours = {"fri": [["20:00", "24:00"]], "sat": [["00:00", "01:00"]]}
    slot = Interval(datetime(2026, 6, 6, 3, 30, tzinfo=UTC), datetime(2026, 6, 6, 4, 30, tzinfo=UTC))  # 23:30-00:30
    assert is_open_for(hours, NY, slot)


def test_is_open_for_rejects_partly_outside() -> None:
    hours = {"wed": [["09:00", "17:00"]]}
    inside = Interval(datetime(2026, 6, 3, 20, 30, tzinfo=UTC), datetime(2026, 6, 3, 21, 0, tzinfo=UTC))
    across_close = Interval(datetime(2026, 6, 3, 20, 45, tzinfo=UTC), datetime(2026, 6, 3, 21, 15, tzinfo=UTC))
    assert is_open_for(hours, NY, inside)
    assert not is_open_for(hours, NY, across_close)


def test_validation_and_description() -> None:
    clean = validate_weekly_hours({"mon": [["13:00", "17:00"], ["09:00", "12:00"]]})
    assert clean["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert describe_hours(clean).startswith("Monday 09:00-12:00, 13:00-17:00; Tuesday closed")
    for bad in ({"funday": []}, {"mon": [["9:00", "17:00"]]}, {"mon": [["09:00", "09:00"]]}, {"mon": [["09:00"]]}):
        with pytest.raises(HoursError):
            validate_weekly_hours(bad)
    with pytest.raises(HoursError):
        zone("Mars/Olympus_Mons")
