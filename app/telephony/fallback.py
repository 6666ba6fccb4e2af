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


# The one name for "the plan's limit kept this call from the AI", as `Call.end_reason` stores it (by where the
# fallback sent the caller): the webhook records it, the billing page counts it, the calls page words it.
PLAN_LIMIT_FORWARDED = "limit_reached_forwarded"
PLAN_LIMIT_VOICEMAIL = "limit_reached_voicemail"
PLAN_LIMIT_END_REASONS = (PLAN_LIMIT_FORWARDED, PLAN_LIMIT_VOICEMAIL)


def plan_limit_end_reason(forwarded: bool) -> str:
    return PLAN_LIMIT_FORWARDED if forwarded else PLAN_LIMIT_VOICEMAIL


_FORWARD_LINE = {
    FallbackReason.AI_LOST: "Sorry, we're having trouble on this line. Let me put you through to someone.",
}
_VOICEMAIL_LINE = {
    FallbackReason.AI_LOST: "Sorry, we're having trouble on this line.",
    FallbackReason.AFTER_HOURS: "Thanks for calling. We're closed right now.",
}
FORWARD_DEFAULT = "Please hold while I put you through."
VOICEMAIL_DEFAULT = "Sorry, no one can take your call right now."
VOICEMAIL_PROMPT = "Please leave your name, number and a short message after the tone."
NO_MESSAGE = "We didn't get a message. Goodbye."
THANKS = "Thank you, we'll get back to you. Goodbye."


def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def fallback_twiml(business: Business, reason: FallbackReason | str, *, base_url: str, forward_to: str | None) -> str:
    """The TwiML for a call the AI doesn't answer: forward to `forward_to`, else voicemail."""
    reason = FallbackReason(reason)
    if forward_to:
        response = VoiceResponse()
        response.say(_FORWARD_LINE.get(reason, FORWARD_DEFAULT), language="en-US")
        dial = Dial(answer_on_bridge=True, timeout=FORWARD_TIMEOUT_SECONDS, caller_id=business.phone_number,
                    action=_url(base_url, DIAL_DONE_PATH), method="POST")
        dial.number(forward_to)
        response.append(dial)
        return str(response)
    return voicemail_twiml(business, reason, base_url=base_url)


def voicemail_twiml(business: Business, reason: FallbackReason | str, *, base_url: str) -> str:
    response = VoiceResponse()
    response.say(f"{_VOICEMAIL_LINE.get(FallbackReason(reason), VOICEMAIL_DEFAULT)} {VOICEMAIL_PROMPT}",
                 language="en-US")
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
    response.say(NO_MESSAGE, language="en-US")
    response.hangup()
    return str(response)


def after_dial_twiml(business: Business, dial_status: str, *, base_url: str) -> str:
    """The forwarded call ended: done if someone answered, else the caller can leave a voicemail."""
    if dial_status in DIAL_ANSWERED:
        response = VoiceResponse()
        response.hangup()
        return str(response)
    return voicemail_twiml(business, FallbackReason.AI_UNAVAILABLE, base_url=base_url)


def thanks_twiml() -> str:
    response = VoiceResponse()
    response.say(THANKS, language="en-US")
    response.hangup()
    return str(response)
