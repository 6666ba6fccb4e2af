"""Sharp logic of the inbox: outcome rules, local-time scheduling across DST, settings parsing, message texts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.dashboard.notification_settings import parse_form
from app.inbox.outcomes import derive, end_reason_words, labels
from app.inbox.schedule import TimeOfDayError, local_moment, next_digest, parse_time_of_day, reminder_due
from app.settings import SettingsError, load_settings

NY = ZoneInfo("America/New_York")


def result(name: str, **data: object) -> tuple[str, str, dict[str, object]]:
    return ("tool_result", name, {"name": name, "result": data})


def outcome(**kw: object) -> tuple[tuple[str, ...], bool]:
    args: dict[str, object] = {"status": "completed", "end_reason": "goodbye", "duration_seconds": 60.0,
                               "tool_events": [], "booked_on_call": 0, "messages": []}
    args.update(kw)
    o = derive(**args)  # type: ignore[arg-type]
    return o.codes, o.needs_follow_up


def test_outcomes_from_what_happened() -> None:
    assert outcome(tool_events=[result("book_appointment", booked=True)]) == (("booked",), False)
    assert outcome(booked_on_call=1) == (("booked",), False)
    assert outcome(tool_events=[result("reschedule_appointment", rescheduled=True),
                                result("cancel_appointment", cancelled=True)]) == (("rescheduled", "cancelled"), False)
    assert outcome(messages=[(False,)]) == (("message_taken",), True)
    assert outcome(messages=[(True,)]) == (("callback_requested", "message_taken"), True)
    assert outcome(status="transferred", tool_events=[("tool_call", "transfer_to_human", {})]) == (
        ("transferred",), False)
    assert outcome(tool_events=[("tool_call", "transfer_to_human", {})]) == (("transfer_failed",), True)
    assert outcome(status="failed", end_reason="error") == (("failed",), True)
    assert outcome(tool_events=[result("get_business_info", hours="9-5")]) == (("question_answered",), False)
    supervisor = ("tool_result", "getNextResponseFromSupervisor", {"result": {"nextResponse": "9-5"}, "ok": True})
    assert outcome(tool_events=[supervisor]) == (("question_answered",), False)
    # A refused booking is not a booking, and an error result is not an answer.
    refused = ("tool_result", "book_appointment", {"error": {"code": "slot_taken"}})
    assert outcome(tool_events=[refused]) == ((), False)
    assert outcome(end_reason="caller_hung_up", duration_seconds=6.0) == (("hung_up_early",), False)
    assert outcome(end_reason="caller_hung_up", duration_seconds=6.0, tool_events=[supervisor]) == (
        ("hung_up_early",), False)
    assert outcome(end_reason="caller_hung_up", duration_seconds=40.0) == ((), False)
    assert outcome(end_reason="caller_hung_up", duration_seconds=9.0, messages=[(False,)]) == (
        ("message_taken",), True)
    assert outcome(end_reason="twilio_completed", duration_seconds=0.0, status="abandoned") == (
        ("hung_up_early",), False)


def test_owner_words_never_show_engine_names() -> None:
    assert labels(["message_taken", "failed"]) == ["Call failed", "Message taken"]
    assert end_reason_words("caller_hung_up") == "the caller hung up"
    assert end_reason_words("twilio_no_answer") == "nobody answered"
    assert end_reason_words("something_new") == "something new"


def test_times_of_day_and_dst() -> None:
    assert parse_time_of_day("7:05").strftime("%H:%M") == "07:05"
    for bad in ("", "25:00", "7pm", "12:60"):
        with pytest.raises(TimeOfDayError):
            parse_time_of_day(bad)
    # 02:30 does not exist on 14 March 2027 in New York: it falls an hour later, 03:30 EDT.
    assert local_moment(date(2027, 3, 14), "02:30", NY) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    # The day before a Monday-after-DST appointment, 18:00 local is 22:00 UTC (EDT), not 23:00 (EST).
    start = datetime(2027, 3, 15, 14, 0, tzinfo=UTC)  # 10:00 EDT
    assert reminder_due(start, NY, "18:00") == datetime(2027, 3, 14, 22, 0, tzinfo=UTC)
    # In autumn the offset goes back: the Sunday of the change has 25 hours.
    assert reminder_due(datetime(2027, 11, 8, 15, 0, tzinfo=UTC), NY, "18:00") == datetime(
        2027, 11, 7, 23, 0, tzinfo=UTC)


def test_next_digest_is_strictly_after_now() -> None:
    now = datetime(2027, 3, 13, 22, 59, tzinfo=UTC)  # 17:59 EST
    assert next_digest(now, NY, "18:00") == (date(2027, 3, 13), datetime(2027, 3, 13, 23, 0, tzinfo=UTC))
    at = datetime(2027, 3, 13, 23, 0, tzinfo=UTC)
    assert next_digest(at, NY, "18:00") == (date(2027, 3, 14), datetime(2027, 3, 14, 22, 0, tzinfo=UTC))


def test_notification_settings_form_validation() -> None:
    form = parse_form({"sms_enabled": "on", "sms_to": "12", "email_to": "not an address",
                       "digest_time": "7pm", "reminder_time": "19:15"})
    assert set(form.errors) == {"sms_to", "email_to", "digest_time"}
    assert form.values["reminder_time"] == "19:15" and form.values["digest_time"] == "7pm"  # kept as typed
    ok = parse_form({"email_enabled": "on", "sms_enabled": "on", "sms_to": "(555) 999-0000", "digest_time": "",
                     "reminder_time": "8:00"})
    assert ok.ok and ok.values["sms_to"] == "+15559990000" and ok.values["digest_time"] == "18:00"
    assert ok.values["reminder_time"] == "08:00" and ok.values["email_enabled"] and not ok.values["on_bookings"]


def test_smtp_settings_are_checked_at_start_up(tmp_path: object) -> None:
    base = {"DATA_DIR": str(tmp_path), "SESSION_SECRETS": "x" * 20}
    settings = load_settings({**base, "SMTP_URL": "smtps://me%40x.com:p%2Fw@mail.example:465",
                              "SMTP_FROM": "desk@example.com"})
    assert settings.smtp_configured
    for env, message in (({"SMTP_URL": "http://mail"}, "SMTP_URL"), ({"SMTP_URL": "smtp://mail:25"}, "SMTP_FROM"),
                         ({"SMTP_URL": "smtp://mail:x", "SMTP_FROM": "a@b.c"}, "port"),
                         ({"SMTP_FROM": "nobody"}, "SMTP_FROM")):
        with pytest.raises(SettingsError, match=message):
            load_settings({**base, **env})
