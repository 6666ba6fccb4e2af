"""Template filters that put the engine's codes into the owner's words (no internal names on owner pages), in
the owner's language (issue 16: the filters translate with the page's catalogue)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from app.i18n.pages import Text, tr, words_in
from app.inbox.outcomes import END_REASONS, FOLLOW_UP, LABELS

#: what the receptionist's tools did, for the conversation view; raw names stay in the <details>
TOOL_WORDS: dict[str, Text] = {
    "getNextResponseFromSupervisor": tr("Looked it up"),
    "end_call": tr("Ended the call"),
    "transfer_to_human": tr("Transfer to a person"),
    "get_business_info": tr("Business details"),
    "check_availability": tr("Checked free times"),
    "book_appointment": tr("Booking"),
    "find_appointments": tr("Looked up the caller's appointments"),
    "cancel_appointment": tr("Cancellation"),
    "reschedule_appointment": tr("Rescheduling"),
    "find_customer": tr("Looked up the caller"),
    "save_customer": tr("Saved the caller's details"),
    "take_message": tr("Took a message"),
}

STATUS_WORDS = {"in_progress": tr("in progress"), "completed": tr("completed"), "failed": tr("failed"),
                "transferred": tr("transferred"), "abandoned": tr("hung up before the greeting")}
#: the calls filter's status options (the stored value, spaced)
STATUS_OPTIONS = {"in_progress": tr("in progress"), "completed": tr("completed"), "failed": tr("failed"),
                  "transferred": tr("transferred"), "abandoned": tr("abandoned")}

# The owner's words for app.inbox.outcomes' codes, marked for the page catalogue (the notifications word them
# on their own; tests/test_page_catalogues.py checks these stay the same English as LABELS and END_REASONS).
OUTCOME_WORDS: dict[str, Text] = {
    "failed": tr("Call failed"),
    "transfer_failed": tr("Transfer failed"),
    "callback_requested": tr("Wants a call back"),
    "message_taken": tr("Message taken"),
    "booked": tr("Booked"),
    "rescheduled": tr("Rescheduled"),
    "cancelled": tr("Cancelled"),
    "transferred": tr("Transferred"),
    "question_answered": tr("Question answered"),
    "hung_up_early": tr("Hung up early"),
}
END_REASON_WORDS: dict[str, Text] = {
    "goodbye": tr("said goodbye"),
    "caller_hung_up": tr("the caller hung up"),
    "caller_gone": tr("the caller hung up"),
    "caller_stop": tr("the caller hung up"),
    "transferred": tr("transferred to a person"),
    "shutdown": tr("the service restarted"),
    "interrupted": tr("cut off (the service stopped)"),
    "error": tr("an error ended the call"),
    "openai_unavailable": tr("the receptionist could not be reached"),
    "realtime_closed": tr("the receptionist's connection dropped"),
    "realtime_session_expired": tr("the call reached the one-hour limit"),
    "max_duration": tr("the call reached its time limit"),
    "silence": tr("the caller stayed silent"),
    "twilio_completed": tr("the caller hung up before it was answered"),
    "twilio_canceled": tr("the caller hung up before it was answered"),
    "twilio_busy": tr("the line was busy"),
    "twilio_no_answer": tr("nobody answered"),
    "twilio_failed": tr("the call could not be connected"),
    "limit_reached_forwarded": tr("forwarded to you: the plan's minutes are used up"),
    "limit_reached_voicemail": tr("sent to voicemail: the plan's minutes are used up"),
}


def _word(context: Context, words: dict[str, Text], english: dict[str, str], code: str) -> str:
    if code in words:
        return words_in(context, words[code])
    return english.get(code, code.replace("_", " "))


@pass_context
def outcome_items(context: Context, codes: Iterable[str] | None) -> list[tuple[str, str, bool]]:
    """(code, words, needs follow-up) in display order."""
    wanted = set(codes or [])
    return [(c, _word(context, OUTCOME_WORDS, LABELS, c), c in FOLLOW_UP) for c in LABELS if c in wanted]


@pass_context
def end_reason(context: Context, reason: str | None) -> str:
    return _word(context, END_REASON_WORDS, END_REASONS, reason) if reason else ""


@pass_context
def tool_words(context: Context, name: str | None) -> str:
    if name in TOOL_WORDS:
        return words_in(context, TOOL_WORDS[name])
    return (name or "tool").replace("_", " ")


@pass_context
def status_words(context: Context, status: str | None) -> str:
    if status in STATUS_WORDS:
        return words_in(context, STATUS_WORDS[status])
    return (status or "").replace("_", " ")


@pass_context
def confirmation_words(context: Context, state: str | None) -> str:
    """An appointment's confirmation-call state (app.outbound): "confirmed", "voicemail left", …"""
    from app.outbound.store import OUTCOME_WORDS as CONFIRMATION_WORDS

    if state in CONFIRMATION_WORDS:
        return words_in(context, CONFIRMATION_WORDS[state])
    return (state or "").replace("_", " ")


@pass_context
def status_option(context: Context, status: str | None) -> str:
    if status in STATUS_OPTIONS:
        return words_in(context, STATUS_OPTIONS[status])
    return (status or "").replace("_", " ")


#: Polar's subscription and order states, as the billing page shows them
BILLING_WORDS = {"active": tr("active"), "trialing": tr("trialing"), "past_due": tr("past due"),
                 "canceled": tr("canceled"), "incomplete": tr("incomplete"),
                 "incomplete_expired": tr("incomplete expired"), "unpaid": tr("unpaid"), "paid": tr("paid"),
                 "pending": tr("pending"), "refunded": tr("refunded"), "partially_refunded": tr("partially refunded")}


@pass_context
def subscription_words(context: Context, status: str | None) -> str:
    if status in BILLING_WORDS:
        return words_in(context, BILLING_WORDS[status])
    return (status or "").replace("_", " ")


FILTERS: dict[str, Callable[..., Any]] = {
    "subscription_words": subscription_words,
    "status_option": status_option,
    "confirmation_words": confirmation_words,
    "end_reason": end_reason,
    "outcome_items": outcome_items,
    "tool_words": tool_words,
    "status_words": status_words,
}
