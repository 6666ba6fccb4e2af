"""What a phone caller hears first: the business's greeting, their name when the line tells us who they are,
and the recording notice when the business records calls (callers must be told before anything is said)."""

from __future__ import annotations

from app.db.models import Business
from app.voice.prompts import CallerContext, greeting_for

RECORDING_NOTICE = "Just so you know, this call is recorded."


def phone_greeting(business: Business, caller: CallerContext, *, recorded: bool) -> str:
    parts: list[str] = []
    if caller.name:
        first_name = caller.name.split()[0]
        parts.append(f"Hi {first_name}, welcome back!")
    if recorded:
        parts.append(RECORDING_NOTICE)
    parts.append(greeting_for(business))
    return " ".join(parts)
