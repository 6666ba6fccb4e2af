"""What owners type into the business form is read as they meant it, or refused with a sentence to act on."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from app.dashboard.forms import parse_business_form
from app.dashboard.typed_input import (
    InputError,
    format_hours,
    parse_minutes,
    parse_price,
    parse_timezone,
    parse_week,
)


@pytest.mark.parametrize(
    ("typed", "ranges"),
    [
        ("9am-5pm", [["09:00", "17:00"]]),
        ("9-5", [["09:00", "17:00"]]),
        ("9-12, 1-5", [["09:00", "12:00"], ["13:00", "17:00"]]),
        ("9:30 am – 5:30 pm", [["09:30", "17:30"]]),
        ("08:00-12:00; 13:00-18:00", [["08:00", "12:00"], ["13:00", "18:00"]]),
        ("11-2pm", [["11:00", "14:00"]]),
        ("1-5pm", [["13:00", "17:00"]]),
        ("noon to 8", [["12:00", "20:00"]]),
        ("6pm-midnight", [["18:00", "24:00"]]),
        ("10pm-2am overnight", [["22:00", "02:00"]]),
        ("22:00-02:00 (next day)", [["22:00", "02:00"]]),
        ("1-5, 9-12", [["09:00", "12:00"], ["13:00", "17:00"]]),
        ("closed", []),
        ("", []),
    ],
)
def test_hours_as_people_write_them(typed: str, ranges: list[list[str]]) -> None:
    clean, errors = parse_week({"mon": typed})
    assert errors == {}
    assert clean["mon"] == ranges


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("17:00-09:00", "closes before it opens. For hours past midnight write “17:00-09:00 overnight”"),
        ("09:00-13:00, 12:00-17:00", "09:00-13:00 and 12:00-17:00 overlap"),
        ("9am-5pm, 4pm-8pm", "09:00-17:00 and 16:00-20:00 overlap"),
        ("nine to five", "couldn't read the time 'nine'"),
        ("13pm-2pm", "with am/pm the hour is 1 to 12"),
        ("9:75-10", "more than 59 minutes"),
        ("9am", "couldn't read '9am'"),
        ("9am-9am", "opens and closes at the same time"),
    ],
)
def test_hours_mistakes_are_named(typed: str, message: str) -> None:
    _clean, errors = parse_week({"tue": typed})
    assert errors["tue"].startswith("Tuesday: ") and message in errors["tue"]


def test_every_day_reports_at_once_and_a_night_shift_may_not_run_into_the_next_day() -> None:
    _clean, errors = parse_week({"mon": "17-9", "wed": "x", "fri": "10pm-3am overnight", "sat": "2am-6am"})
    assert set(errors) == {"mon", "wed", "sat"}
    assert "opens before Friday's 22:00-03:00 overnight has closed" in errors["sat"]


def test_stored_hours_round_trip_through_the_form() -> None:
    stored = {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": [["22:00", "02:00"]], "sat": [["18:00", "24:00"]]}
    texts = {day: format_hours(ranges) for day, ranges in stored.items()}
    assert texts["fri"] == "22:00-02:00 overnight"
    clean, errors = parse_week(texts)
    assert errors == {}
    assert {d: clean[d] for d in stored} == stored


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("$250", 250.0), ("250", 250.0), ("19.5", 19.5), ("$1,200.50", 1200.5), ("€ 20", 20.0), ("free", 0.0),
     (".99", 0.99), ("25 dollars", 25.0), ("", 0.0)],
)
def test_prices(typed: str, amount: float) -> None:
    assert parse_price(typed) == amount


@pytest.mark.parametrize("typed", ["-5", "abc", "1,2", "$", "12.345", "200000"])
def test_bad_prices(typed: str) -> None:
    with pytest.raises(InputError):
        parse_price(typed)


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [("30", 30), ("30 min", 30), ("45mins", 45), ("1h", 60), ("1h30", 90), ("1h 30m", 90), ("1 hour 30", 90),
     ("1:30", 90), ("1.5h", 90), ("2 hours", 120)],
)
def test_durations(typed: str, minutes: int) -> None:
    assert parse_minutes(typed) == minutes


@pytest.mark.parametrize("typed", ["lots", "", "1.25h x", "1:75"])
def test_bad_durations(typed: str) -> None:
    with pytest.raises(InputError):
        parse_minutes(typed)


@pytest.mark.parametrize(
    ("typed", "zone"),
    [("America/New_York", "America/New_York"), ("america/new_york", "America/New_York"),
     ("New York", "America/New_York"), ("london", "Europe/London"), ("Los Angeles", "America/Los_Angeles"),
     ("UTC", "UTC")],
)
def test_timezones_by_city(typed: str, zone: str) -> None:
    assert parse_timezone(typed) == zone


def test_unknown_timezone() -> None:
    with pytest.raises(InputError, match="No timezone called 'Mars/Olympus'"):
        parse_timezone("Mars/Olympus")


def test_the_whole_form_reports_every_mistake_at_once_and_keeps_what_was_typed() -> None:
    form = parse_business_form(MultiDict([
        ("name", ""), ("timezone", "Atlantis"), ("voice", "marin"), ("max_call_minutes", "90"),
        ("hours_mon", "9-5"), ("hours_tue", "17:00-09:00"), ("hours_wed", "9-13, 12-5"),
        ("service_name", "Cut"), ("service_minutes", "1h30"), ("service_price", "$40"),
        ("service_name", "Colour"), ("service_minutes", "ages"), ("service_price", "80"),
    ]))
    assert set(form.errors) == {"name", "timezone", "max_call_minutes", "hours_tue", "hours_wed", "service_2"}
    assert form.hours["tue"] == "17:00-09:00" and form.services[1].minutes == "ages"
    assert [target for target, _ in form.error_links()] == [
        "name", "timezone", "hours_tue", "hours_wed", "service_2-minutes", "max_call_minutes"]


def test_the_form_turns_what_was_typed_into_clean_values() -> None:
    form = parse_business_form(MultiDict([
        ("name", "Sam's"), ("timezone", "chicago"), ("voice", "cedar"), ("max_call_minutes", "1h"),
        ("hours_mon", "9am-5pm"), ("hours_sat", "9-12, 1-5"),
        ("service_name", "Cut"), ("service_minutes", "1h30"), ("service_price", "$40"),
    ]))
    assert form.ok, form.errors
    assert form.values["timezone"] == "America/Chicago" and form.values["max_call_seconds"] == 3600
    assert form.values["weekly_hours"]["sat"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert form.values["services"] == [{"name": "Cut", "minutes": 90, "price": 40.0}]
