"""Every line the outbound feature speaks itself, by language: the receptionist's opening (who is calling and
why), the voicemail left after the beep, the owner's whisper on a click-to-call, and the `<Say>` voice that
fits each language.

Lines are looked up by a BCP-47 code (`Customer.language`, e.g. "en-US", "es"): the exact tag, then its base
language, then English. English is written here; other languages are added as another entry of `LINES` (or,
at merge, read from the service-line catalogue of the languages work), with nothing else changing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LANGUAGE = "en"


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
    name_fallback: str


LINES: dict[str, OutboundLines] = {
    "en": OutboundLines(
        say_language="en-US",
        say_voice="Polly.Joanna",
        confirmation_opening=("Hi{name}, this is the receptionist at {business}, calling about your {service} "
                              "on {when}. Can you still make it?"),
        callback_opening="Hi{name}, this is the receptionist at {business}, calling you back about {purpose}.",
        confirmation_voicemail=("Hello, this is {business}, calling about your {service} on {when}. If you need "
                                "to change or cancel it, please call us back at {number}. Thank you, goodbye."),
        callback_voicemail=("Hello, this is {business}, calling you back about {purpose}. Please call us back at "
                            "{number} when you can. Thank you, goodbye."),
        owner_whisper="Calling {name} for you now.",
        confirmation_purpose=("This is an outbound confirmation call the business placed about the customer's "
                              "{service} on {when} (appointment id {appointment_id}). Ask whether they can "
                              "still make it. If yes, confirm it with confirm_appointment; if they want another "
                              "time, reschedule it; if they can't come, cancel it. Then say goodbye."),
        name_fallback="",
    ),
}


def lines_for(language: str | None) -> OutboundLines:
    """The lines of `language` (exact tag, then its base language), else English."""
    tag = (language or DEFAULT_LANGUAGE).strip()
    if tag in LINES:
        return LINES[tag]
    base = tag.split("-")[0].lower()
    return LINES.get(base, LINES[DEFAULT_LANGUAGE])


def greeting_name(lines: OutboundLines, name: str | None) -> str:
    """", Jane" for "Hi{name}", or nothing when we don't know their name."""
    first = (name or "").split()
    return f" {first[0]}" if first else lines.name_fallback
