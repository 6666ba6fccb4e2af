"""TwiML documents the service answers with, built by the twilio SDK so escaping is never hand-rolled."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from app.i18n.lines import Line, say, say_line, text

STREAM_PATH = "/twilio/media"
SESSION_PARAMETER = "session"

# Issue 16: app.i18n.lines has these in every offered language; the English ones, for callers of unknown numbers.
UNKNOWN_NUMBER_APOLOGY = text(Line.UNKNOWN_NUMBER, "en-US")
UNAVAILABLE_APOLOGY = text(Line.CALL_UNAVAILABLE, "en-US")
CUT_OFF_APOLOGY = text(Line.CUT_OFF, "en-US")


def stream_url(public_ws_base_url: str) -> str:
    # No query string: Twilio drops it; per-call data travels in <Parameter>.
    return public_ws_base_url.rstrip("/") + STREAM_PATH


def connect_stream(url: str, session_token: str, language: str | None = None) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    stream.parameter(name=SESSION_PARAMETER, value=session_token)
    response.append(connect)
    # Twilio goes on to the next verb when the stream's socket closes. Every planned ending replaces this
    # document first (REST hang-up, transfer, announcement), so these only play when the service lost the
    # call — a crash, a restart, a dropped connection — and the caller hears that instead of a dead line.
    # Fixed when the call is answered, so in the business's primary language (`language`).
    say_line(response, Line.CUT_OFF, language)
    response.hangup()
    return str(response)


def say_and_hang_up(sentence: str, language: str | None = None) -> str:
    """`sentence` read by the Twilio voice of `language` (a BCP-47 code; None: English), then hang up."""
    response = VoiceResponse()
    say(response, sentence, language)
    response.hangup()
    return str(response)


def dial(number: str, *, caller_id: str | None = None, timeout_seconds: int = 30, language: str | None = None) -> str:
    """Transfer: the caller stays on the line (answerOnBridge) until the person picks up; with `language` (the
    call's), the transfer line is said first in it, so the caller knows the silence that follows is ringing."""
    response = VoiceResponse()
    if language is not None:
        say_line(response, Line.TRANSFER, language)
    dial_verb = Dial(answer_on_bridge=True, timeout=timeout_seconds, caller_id=caller_id)
    dial_verb.number(number)
    response.append(dial_verb)
    return str(response)
