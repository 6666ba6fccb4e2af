"""What a phone caller hears first: the business's greeting, their name when the line tells us who they are,
and the recording notice when the business records calls (callers must be told before anything is said)."""

from __future__ import annotations

from app.db.models import Business
from app.i18n.languages import offered
from app.i18n.lines import Line, text
from app.voice.prompts import CallerContext, greeting_for

RECORDING_NOTICE = text(Line.RECORDING_NOTICE, "en-US")


def phone_greeting(business: Business, caller: CallerContext, *, recorded: bool) -> str:
    """In the business's primary language (issue 16): the caller hasn't spoken yet."""
    primary = offered(business.languages)[0]
    parts: list[str] = []
    if caller.name:
        parts.append(text(Line.WELCOME_BACK, primary, first_name=caller.name.split()[0]))
    if recorded:
        parts.append(text(Line.RECORDING_NOTICE, primary))
    parts.append(greeting_for(business))
    return " ".join(parts)
