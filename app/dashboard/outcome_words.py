"""Template filters that put the engine's codes into the owner's words (no internal names on owner pages)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from app.inbox.outcomes import FOLLOW_UP, LABELS, end_reason_words

#: what the receptionist's tools did, for the conversation view; raw names stay in the <details>
TOOL_WORDS: dict[str, str] = {
    "getNextResponseFromSupervisor": "Looked it up",
    "end_call": "Ended the call",
    "transfer_to_human": "Transfer to a person",
    "get_business_info": "Business details",
    "check_availability": "Checked free times",
    "book_appointment": "Booking",
    "find_appointments": "Looked up the caller's appointments",
    "cancel_appointment": "Cancellation",
    "reschedule_appointment": "Rescheduling",
    "find_customer": "Looked up the caller",
    "save_customer": "Saved the caller's details",
    "take_message": "Took a message",
}

STATUS_WORDS = {"in_progress": "in progress", "completed": "completed", "failed": "failed",
                "transferred": "transferred", "abandoned": "hung up before the greeting"}


def outcome_items(codes: Iterable[str] | None) -> list[tuple[str, str, bool]]:
    """(code, words, needs follow-up) in display order."""
    wanted = set(codes or [])
    return [(c, LABELS[c], c in FOLLOW_UP) for c in LABELS if c in wanted]


def tool_words(name: str | None) -> str:
    return TOOL_WORDS.get(name or "", (name or "tool").replace("_", " "))


FILTERS: dict[str, Callable[..., Any]] = {
    "end_reason": end_reason_words,
    "outcome_items": outcome_items,
    "tool_words": tool_words,
    "status_words": lambda s: STATUS_WORDS.get(s or "", (s or "").replace("_", " ")),
}
