"""Call outcomes: plain labels derived from what happened on a call, and whether the owner has to act.

Every finalisation path enqueues a keyed `settle` job in the transaction that ends the call (one insert, like
the summary job), and the job derives the outcomes from what the call left in the database (tool results,
appointments booked on it, messages taken on it), links the customer and queues the owner's notifications, in
one transaction of its own. So a call ended is a call settled, exactly once, across crashes; and the ending's
transaction stays short: doing all of it inside the ending held SQLite's write lock for a dozen statements per
call, and 20 calls ending at once then timed out on the lock ("database is locked", seen in the 20-concurrent-
calls test). Being stored, the outcomes are filtered on with a column look-up, and a later change to the rules
does not rewrite the history of calls the owner already read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import (
    Appointment,
    Call,
    CallEvent,
    CallStatus,
    Customer,
    EventKind,
    Message,
)
from app.i18n.languages import Language
from app.i18n.texts import END_REASONS as END_REASON_WORDS
from app.i18n.texts import end_reason, outcome_label
from app.jobs import enqueue

#: every call shorter than this that the caller ended is "hung up early"
EARLY_HANG_UP_SECONDS = 15.0

BOOKED = "booked"
RESCHEDULED = "rescheduled"
CANCELLED = "cancelled"
MESSAGE_TAKEN = "message_taken"
TRANSFERRED = "transferred"
TRANSFER_FAILED = "transfer_failed"
QUESTION_ANSWERED = "question_answered"
HUNG_UP_EARLY = "hung_up_early"
FAILED = "failed"
CALLBACK_REQUESTED = "callback_requested"

#: code -> the words an owner sees, in the order they are shown (English; `labels(codes, language)` for the
#: owner's language, from the written-lines catalogue `app.i18n.texts`)
LABELS: dict[str, str] = {
    code: outcome_label(code, "en")
    for code in (FAILED, TRANSFER_FAILED, CALLBACK_REQUESTED, MESSAGE_TAKEN, BOOKED, RESCHEDULED, CANCELLED,
                 TRANSFERRED, QUESTION_ANSWERED, HUNG_UP_EARLY)
}
FOLLOW_UP = frozenset({MESSAGE_TAKEN, TRANSFER_FAILED, FAILED, CALLBACK_REQUESTED})

# Why a call ended, in the owner's words (`Call.end_reason` holds the engine's code), in English; every
# language's words are in `app.i18n.texts.END_REASONS` (PLAN_LIMIT_* included).
END_REASONS: dict[str, str] = {code: words["en"] for code, words in END_REASON_WORDS.items()}

_INFO_TOOLS = {"get_business_info", "check_availability", "find_appointments", "find_customer"}


def end_reason_words(reason: str | None, language: str | Language | None = None) -> str:
    """Why a call ended, in `language` (default English); an unknown code in plain words."""
    if not reason:
        return ""
    return end_reason(reason, language or "en") or reason.replace("_", " ")


def labels(codes: Iterable[str], language: str | Language | None = None) -> list[str]:
    """The outcomes' labels in display order, in `language` (default English)."""
    wanted = set(codes)
    return [outcome_label(c, language or "en") for c in LABELS if c in wanted]


@dataclass(frozen=True, slots=True)
class Outcome:
    codes: tuple[str, ...]
    needs_follow_up: bool


def derive(
    *,
    status: str,
    end_reason: str | None,
    duration_seconds: float,
    tool_events: Sequence[tuple[str, str, dict[str, Any]]],
    booked_on_call: int,
    messages: Sequence[tuple[bool]],
) -> Outcome:
    """`tool_events`: (kind, name, data) of the call's tool calls and results; `messages`: (callback_requested,)
    of each message taken on the call."""
    codes: set[str] = set()
    asked_transfer = False
    answered = False
    for kind, name, data in tool_events:
        if kind == EventKind.TOOL_CALL.value and name == "transfer_to_human":
            asked_transfer = True
        if kind != EventKind.TOOL_RESULT.value or data.get("error"):
            continue
        result = data.get("result") or {}
        if name == "book_appointment" and result.get("booked"):
            codes.add(BOOKED)
        elif name == "reschedule_appointment" and result.get("rescheduled"):
            codes.add(RESCHEDULED)
        elif name == "cancel_appointment" and result.get("cancelled"):
            codes.add(CANCELLED)
        elif name == "take_message" and result.get("saved"):
            codes.add(MESSAGE_TAKEN)
        elif name in _INFO_TOOLS:
            answered = True
        elif name == "getNextResponseFromSupervisor" and data.get("ok", True):
            answered = True
    if booked_on_call:
        codes.add(BOOKED)
    if messages:
        codes.add(MESSAGE_TAKEN)
        if any(callback for (callback,) in messages):
            codes.add(CALLBACK_REQUESTED)
    if status == CallStatus.TRANSFERRED.value:
        codes.add(TRANSFERRED)
    elif asked_transfer:
        codes.add(TRANSFER_FAILED)
    if status == CallStatus.FAILED.value:
        codes.add(FAILED)
    if answered and not codes & {BOOKED, RESCHEDULED, CANCELLED, MESSAGE_TAKEN, TRANSFERRED, FAILED}:
        codes.add(QUESTION_ANSWERED)
    caller_ended = (end_reason or "").startswith("caller_") or (end_reason or "") in {"twilio_completed",
                                                                                      "twilio_canceled"}
    if caller_ended and duration_seconds < EARLY_HANG_UP_SECONDS and not codes - {QUESTION_ANSWERED}:
        codes.discard(QUESTION_ANSWERED)
        codes.add(HUNG_UP_EARLY)
    ordered = tuple(c for c in LABELS if c in codes)
    return Outcome(codes=ordered, needs_follow_up=bool(codes & FOLLOW_UP))


SETTLE_JOB = "settle"


async def enqueue_settle(s: AsyncSession, call_id: UUID) -> None:
    """In the transaction that ends the call: the call will be settled (`settle_call`) once, soon after."""
    await enqueue(s, SETTLE_JOB, {"call_id": str(call_id)}, key=f"settle:{call_id}")


async def settle_call(s: AsyncSession, call_id: UUID) -> None:
    """In the transaction that ended the call: link it to its customer, store its outcomes, and queue the
    owner's notifications. Idempotent (a second run derives the same and notifies under the same keys)."""
    from app.inbox.outbox import notify_call  # outbox imports this module's labels

    call = await s.get(Call, call_id, populate_existing=True)
    if call is None:
        return
    tool_events = [
        (kind, name, data or {})
        for kind, name, data in (
            await s.execute(
                select(CallEvent.kind, CallEvent.text, CallEvent.data).where(
                    CallEvent.call_id == call_id,
                    CallEvent.kind.in_([EventKind.TOOL_CALL.value, EventKind.TOOL_RESULT.value]),
                )
            )
        ).tuples()
    ]
    booked = list(
        (await s.execute(
            select(Appointment.id, Appointment.customer_id).where(Appointment.call_id == call_id)
        )).tuples()
    )
    messages = list(
        (await s.execute(
            select(Message.id, Message.customer_id, Message.callback_requested).where(Message.call_id == call_id)
        )).tuples()
    )
    customer_id = call.customer_id
    if customer_id is None:
        # The caller became known during the call: they booked, or left a message with their name and number.
        customer_id = next((c for _a, c in booked if c), None) or next((c for _m, c, _cb in messages if c), None)
    if customer_id is None and call.caller_phone:
        customer_id = await s.scalar(
            select(Customer.id).where(Customer.business_id == call.business_id, Customer.phone == call.caller_phone)
        )
    outcome = derive(
        status=call.status,
        end_reason=call.end_reason,
        duration_seconds=call.duration_seconds or 0.0,
        tool_events=tool_events,
        booked_on_call=len(booked),
        messages=[(cb,) for _m, _c, cb in messages],
    )
    # notify_call reads before it writes; the two updates come last, so the write lock is held briefly.
    await notify_call(s, call, outcome, customer_id)
    await s.execute(
        update(Call)
        .where(Call.id == call_id)
        .values(outcomes=list(outcome.codes), needs_follow_up=outcome.needs_follow_up, customer_id=customer_id)
    )
    if customer_id is not None and any(c is None for _m, c, _cb in messages):
        await s.execute(
            update(Message)
            .where(Message.call_id == call_id, Message.customer_id.is_(None))
            .values(customer_id=customer_id)
        )
    if customer_id is not None and call.language and "Caller:" in (call.transcript or ""):
        # Issue 16: the language the customer spoke, for their next call and what the business sends them
        # (only when they spoke: a call that never heard them says nothing about their language).
        await s.execute(update(Customer).where(Customer.id == customer_id).values(language=call.language))
