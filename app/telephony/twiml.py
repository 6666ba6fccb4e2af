"""TwiML documents the service answers with, built by the twilio SDK so escaping is never hand-rolled."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

STREAM_PATH = "/twilio/media"
SESSION_PARAMETER = "session"

UNKNOWN_NUMBER_APOLOGY = "Sorry, this number is not set up to take calls yet. Goodbye."
UNAVAILABLE_APOLOGY = "Sorry, we can't take your call right now. Please try again later. Goodbye."
CUT_OFF_APOLOGY = "Sorry, we were cut off. Please call back in a minute. Goodbye."


def stream_url(public_ws_base_url: str) -> str:
    # No query string: Twilio drops it; per-call data travels in <Parameter>.
    return public_ws_base_url.rstrip("/") + STREAM_PATH


def connect_stream(url: str, session_token: str) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    stream.parameter(name=SESSION_PARAMETER, value=session_token)
    response.append(connect)
    # Twilio goes on to the next verb when the stream's socket closes. Every planned ending replaces this
    # document first (REST hang-up, transfer, announcement), so these only play when the service lost the
    # call — a crash, a restart, a dropped connection — and the caller hears that instead of a dead line.
    response.say(CUT_OFF_APOLOGY, language="en-US")
    response.hangup()
    return str(response)


def say_and_hang_up(sentence: str) -> str:
    response = VoiceResponse()
    response.say(sentence, language="en-US")
    response.hangup()
    return str(response)


def dial(number: str, *, caller_id: str | None = None, timeout_seconds: int = 30) -> str:
    """Transfer: the caller stays on the line (answerOnBridge) until the person picks up."""
    response = VoiceResponse()
    dial_verb = Dial(answer_on_bridge=True, timeout=timeout_seconds, caller_id=caller_id)
    dial_verb.number(number)
    response.append(dial_verb)
    return str(response)
