"""Every line the outbound feature speaks itself, by language: the receptionist's opening (who is calling and
why), the voicemail left after the beep, the owner's whisper on a click-to-call, and the `<Say>` voice that
fits each language.

The words live in the service-line catalogue (`app.i18n.lines`) with every other line the service says; this
module picks them for a BCP-47 code (`Customer.language`, e.g. "es-MX": the offered locale of that language,
else English) and adds the instruction the models get, which stays in English like all instructions.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.i18n.languages import SUPPORTED, get, match
from app.i18n.lines import Line, text

DEFAULT_LANGUAGE = "en-US"

_CONFIRMATION_PURPOSE = (
    "This is an outbound confirmation call the business placed about the customer's {service} on {when} "
    "(appointment id {appointment_id}). Ask whether they can still make it. If yes, confirm it with "
    "confirm_appointment; if they want another time, reschedule it; if they can't come, cancel it. Then say "
    "goodbye."
)


@dataclass(frozen=True, slots=True)
class OutboundLines:
    #: `<Say language=… voice=…>` for this language
    say_language: str
    say_voice: str
    #: the receptionist's first words on a confirmation call: {business}, {name}, {service}, {when}
    confirmation_opening: str
    #: the first words of an owner-scheduled callback: {business}, {name}, {purpose}
    callback_opening: str
    #: after the beep, on a confirmation call: {business}, {service}, {when}, {number}
    confirmation_voicemail: str
    #: after the beep, on a callback: {business}, {purpose}, {number}
    callback_voicemail: str
    #: what the owner hears when they pick up, before the customer is dialled: {name}
    owner_whisper: str
    #: how the call's reason is put to the supervisor (it answers in the caller's language)
    confirmation_purpose: str
    name_fallback: str = ""


def lines_for(language: str | None) -> OutboundLines:
    """The lines of `language` (its offered locale, by exact tag or base language), else English."""
    lang = match(list(SUPPORTED.values()), language) or get(DEFAULT_LANGUAGE)
    return OutboundLines(
        say_language=lang.twilio_language,
        say_voice=lang.twilio_voice,
        confirmation_opening=text(Line.CONFIRMATION_OPENING, lang),
        callback_opening=text(Line.CALLBACK_OPENING, lang),
        confirmation_voicemail=text(Line.CONFIRMATION_VOICEMAIL, lang),
        callback_voicemail=text(Line.CALLBACK_VOICEMAIL, lang),
        owner_whisper=text(Line.OWNER_WHISPER, lang),
        confirmation_purpose=_CONFIRMATION_PURPOSE,
    )


def greeting_name(lines: OutboundLines, name: str | None) -> str:
    """", Jane" for "Hi{name}", or nothing when we don't know their name."""
    first = (name or "").split()
    return f" {first[0]}" if first else lines.name_fallback
