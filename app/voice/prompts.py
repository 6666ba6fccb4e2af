"""What the models are told: the receptionist's realtime session and the supervisor's instructions,
both built from the Business row and what is known about the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.db.hours import describe_hours, zone
from app.db.models import Business
from app.i18n.languages import offered
from app.i18n.lines import CATALOGUE, Line, text

SUPERVISOR_TOOL = "getNextResponseFromSupervisor"
END_CALL_TOOL = "end_call"
TRANSFER_TOOL = "transfer_to_human"

DEFAULT_GREETING = CATALOGUE[Line.GREETING]["en"]  # issue 16: greeting_for uses the primary language's


@dataclass(frozen=True, slots=True)
class CallerContext:
    """What the line tells us about the caller before they speak (Twilio `From` + their customer row)."""

    phone: str | None = None
    name: str | None = None
    upcoming: list[str] = field(default_factory=list)  # human wording of upcoming appointments
    #: issue 16: the language this customer spoke on their last call (BCP-47), if any
    language: str | None = None
    #: issue 16: set when the business placed this call (a confirmation call, a callback): why it called
    purpose: str = ""


def greeting_for(business: Business) -> str:
    """The owner's greeting, else the default one in the business's primary language (issue 16)."""
    return (business.greeting or "").strip() or text(Line.GREETING, offered(business.languages)[0],
                                                     name=business.name)


def business_facts(business: Business, caller: CallerContext, now: datetime | None = None) -> str:
    tz = zone(business.timezone)
    local_now = (now or datetime.now(UTC)).astimezone(tz)
    services = "; ".join(
        f"{s['name']} ({s['minutes']} min" + (f", ${s['price']:g}" if s.get("price") is not None else "") + ")"
        for s in business.services or []
    ) or "none listed"
    lines = [
        f"Business: {business.name}",
        f"Address: {business.address or 'not given'}",
        f"Timezone: {business.timezone}; now it is {local_now:%A %Y-%m-%d %H:%M} local time",
        f"Opening hours: {describe_hours(business.weekly_hours or {})}",
        f"Services: {services}",
    ]
    if caller.phone:
        lines.append(f"Caller's phone (from the line): {caller.phone}")
    else:
        lines.append("Caller's phone: withheld - the line doesn't identify this caller, so nobody's records can be "
                     "looked up, cancelled or rescheduled for them; they can book something new (ask for their "
                     "name and number), leave a message, or be put through")
    if caller.name:
        lines.append(f"Known caller: {caller.name}")
    elif caller.phone:
        lines.append("This number is not a customer yet: when they book, offer to add them as a customer "
                     "(ask for their name and save it with their phone number)")
    if caller.upcoming:
        lines.append("Caller's upcoming appointments: " + "; ".join(caller.upcoming))
    if caller.purpose:
        lines.append("This is an outbound call: the business called this person, who did not call you. The number "
                     f"called is theirs (it counts as their caller ID). Why we called: {caller.purpose}")
    if business.instructions.strip():
        lines.append(f"Owner's instructions: {business.instructions.strip()}")
    return "\n".join(lines)


def receptionist_instructions(business: Business, caller: CallerContext, now: datetime | None = None) -> str:
    return f"""You are the phone receptionist for {business.name}. Speak naturally, warmly and briefly:
one or two short sentences per turn, in the caller's language. Never invent facts, times or prices.

You have a supervisor who can check the calendar, book, cancel and reschedule appointments, look up
customers and take messages. For anything beyond a simple greeting or small talk, first say a very short
filler such as "One moment." and then call {SUPERVISOR_TOOL} with the relevant context from the caller's last
message. Read the supervisor's answer to the caller as given.

When the caller says goodbye or the conversation is finished, say a short goodbye and then call {END_CALL_TOOL}.
If the caller asks for a person, call {TRANSFER_TOOL}; if that is not possible, offer to take a message.

{business_facts(business, caller, now)}"""


def supervisor_instructions(business: Business, caller: CallerContext, now: datetime | None = None) -> str:
    return f"""You are the supervisor behind a phone receptionist for {business.name}. You get the
conversation so far and the receptionist's note about the caller's last message. Use the tools to find facts
and make changes, then reply with exactly the words the receptionist should say next: short, spoken-style,
no lists or markdown. Times you say are local times in words (e.g. "ten a.m. on Tuesday").

Rules: never call a tool with made-up arguments - if something is missing (service, day, time, the caller's
name or phone number) ask the caller for it. Only book a time the tools showed as free and the caller agreed
to. Only the caller's own appointments can be found, cancelled or rescheduled, and only when the line shows
their number (caller ID): a number the caller says proves nothing, so never use it to look anyone up. When a
tool answers caller_not_verified, say so kindly and offer a message or a transfer. Never tell a caller
anything about another person (whether a number or name is a customer, their appointments, notes or email).
If something fails, say so honestly and offer to take a message. If the business has staff or rooms and the
caller asks for someone ("with Maria"), pass that name as `staff`; otherwise whoever is free first takes it.
When a date is closed, say so with the reason the tools give (e.g. "we're closed on the 24th for Christmas
Eve").

{business_facts(business, caller, now)}"""


def receptionist_tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": SUPERVISOR_TOOL,
            "description": "Ask the supervisor what to say next, for anything needing facts, the calendar, "
            "customer records or messages. Say a short filler first.",
            "parameters": {
                "type": "object",
                "properties": {
                    "relevantContextFromLastUserMessage": {
                        "type": "string",
                        "description": "What the caller just asked or said that matters, in a sentence.",
                    }
                },
                "required": ["relevantContextFromLastUserMessage"],
                "additionalProperties": False,
            },
        },
        {
            "type": "function",
            "name": END_CALL_TOOL,
            "description": "Hang up after you have said goodbye.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
        {
            "type": "function",
            "name": TRANSFER_TOOL,
            "description": "Transfer the caller to a person at the business.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    ]


def session_config(
    business: Business,
    caller: CallerContext,
    *,
    model: str,
    transcription_model: str,
    audio_format: dict[str, Any],
    far_field: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The GA `session.update` body."""
    return {
        "type": "realtime",
        "model": model,
        "instructions": receptionist_instructions(business, caller, now),
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": audio_format,
                "transcription": {"model": transcription_model},
                # Phone and laptop audio: a higher threshold ignores line noise and room echo; 300 ms of
                # prefix keeps first syllables; 550 ms of silence lets people pause without being cut off.
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.6,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 550,
                    "create_response": True,
                    "interrupt_response": True,
                },
                "noise_reduction": {"type": "far_field" if far_field else "near_field"},
            },
            "output": {"format": audio_format, "voice": business.voice or "marin"},
        },
        "tools": receptionist_tools(),
        "tool_choice": "auto",
    }
