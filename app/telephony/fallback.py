"""What a phone call gets when the AI receptionist can't (or mustn't) answer it: one decision, one TwiML.

`fallback_twiml(business, reason, base_url=…, forward_to=…)` forwards the caller to `forward_to` (the
business's transfer number as app.telephony.transfers allows it today) when there is one (ringing for
FORWARD_TIMEOUT_SECONDS), and otherwise — or when nobody picks up — records a voicemail.
The voicemail's recording callback turns it into a Message in the owner's inbox (app.telephony.voicemail).
It serves every "don't answer with the AI" path: OpenAI unreachable at call start, a realtime session that
could not be restored mid-call, and (later) after-hours settings and plan limits.
"""

from __future__ import annotations

from enum import StrEnum

from twilio.twiml.voice_response import Dial, VoiceResponse

from app.db.models import Business
from app.i18n import languages
from app.i18n.languages import Language
from app.i18n.lines import Line, say, say_line, text

FORWARD_TIMEOUT_SECONDS = 20
VOICEMAIL_MAX_SECONDS = 120
VOICEMAIL_SILENCE_SECONDS = 5

DIAL_DONE_PATH = "/twilio/fallback/dial"
RECORD_DONE_PATH = "/twilio/voicemail"
RECORDING_CALLBACK_PATH = "/twilio/voicemail/recording"

#: Twilio's DialCallStatus values meaning the forwarded call was taken
DIAL_ANSWERED = {"completed", "answered"}


class FallbackReason(StrEnum):
    AI_UNAVAILABLE = "ai_unavailable"  # OpenAI could not be reached when the call came in
    AI_LOST = "ai_lost"  # the realtime session dropped mid-call and could not be restored
    AFTER_HOURS = "after_hours"
    PLAN_LIMIT = "plan_limit"


# Issue 16: the words come from app.i18n.lines, in the call's language (the business's primary language when the
# call has none yet); each <Say> has the Twilio voice and language of that locale.
_FORWARD_LINE = {FallbackReason.AI_LOST: Line.FORWARD_TROUBLE}
_VOICEMAIL_LINE = {FallbackReason.AI_LOST: Line.VOICEMAIL_TROUBLE, FallbackReason.AFTER_HOURS: Line.AFTER_HOURS}
FORWARD_DEFAULT = text(Line.TRANSFER, "en-US")
VOICEMAIL_DEFAULT = text(Line.NOBODY_AVAILABLE, "en-US")
VOICEMAIL_PROMPT = text(Line.VOICEMAIL_PROMPT, "en-US")
NO_MESSAGE = text(Line.NO_MESSAGE, "en-US")
THANKS = text(Line.THANKS, "en-US")


def call_language(business: Business, language: str | None) -> Language:
    """The language a fallback speaks: the call's when it is one the business offers, else its primary one."""
    offered = languages.offered(business.languages)
    return (languages.match(offered, language) or offered[0]) if language else offered[0]


def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def fallback_twiml(business: Business, reason: FallbackReason | str, *, base_url: str, forward_to: str | None,
                   language: str | None = None) -> str:
    """The TwiML for a call the AI doesn't answer: forward to `forward_to`, else voicemail; spoken in `language`
    (the call's), else the business's primary language."""
    reason = FallbackReason(reason)
    lang = call_language(business, language)
    if forward_to:
        response = VoiceResponse()
        say_line(response, _FORWARD_LINE.get(reason, Line.TRANSFER), lang)
        dial = Dial(answer_on_bridge=True, timeout=FORWARD_TIMEOUT_SECONDS, caller_id=business.phone_number,
                    action=_url(base_url, DIAL_DONE_PATH), method="POST")
        dial.number(forward_to)
        response.append(dial)
        return str(response)
    return voicemail_twiml(business, reason, base_url=base_url, language=lang.code)


def voicemail_twiml(business: Business, reason: FallbackReason | str, *, base_url: str,
                    language: str | None = None) -> str:
    lang = call_language(business, language)
    response = VoiceResponse()
    opening = text(_VOICEMAIL_LINE.get(FallbackReason(reason), Line.NOBODY_AVAILABLE), lang)
    say(response, f"{opening} {text(Line.VOICEMAIL_PROMPT, lang)}", lang)
    response.record(
        max_length=VOICEMAIL_MAX_SECONDS,
        timeout=VOICEMAIL_SILENCE_SECONDS,
        play_beep=True,
        action=_url(base_url, RECORD_DONE_PATH),
        method="POST",
        recording_status_callback=_url(base_url, RECORDING_CALLBACK_PATH),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed",
    )
    # Only reached when nothing was recorded (Twilio skips the action for an empty recording).
    say_line(response, Line.NO_MESSAGE, lang)
    response.hangup()
    return str(response)


def after_dial_twiml(business: Business, dial_status: str, *, base_url: str, language: str | None = None) -> str:
    """The forwarded call ended: done if someone answered, else the caller can leave a voicemail."""
    if dial_status in DIAL_ANSWERED:
        response = VoiceResponse()
        response.hangup()
        return str(response)
    return voicemail_twiml(business, FallbackReason.AI_UNAVAILABLE, base_url=base_url, language=language)


def thanks_twiml(business: Business | None = None, language: str | None = None) -> str:
    response = VoiceResponse()
    say_line(response, Line.THANKS, call_language(business, language) if business is not None else language)
    response.hangup()
    return str(response)
