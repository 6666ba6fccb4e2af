"""The caller sockets' parsers (app.voice.frames) and the transports over them: any frame either decodes
into its typed message or is counted and ignored; only `stop` / `hangup` / the socket closing ends a call."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.telephony.twilio_transport import TwilioTransport
from app.voice import frames
from app.voice.browser import BrowserTransport
from app.voice.transport import AudioIn, CallerGone
from tests.support.frames import malformed_browser_frames, malformed_twilio_frames, twilio_frames

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The single frames that ended live calls in issue 11, each on its own.
FATAL_TWILIO = [
    '{"event":"media","streamSid":"MZ0","media":{"track":["inbound"],"payload":"AAAA"}}',
    '{"event":"media","streamSid":"MZ0","media":{"track":{"a":1},"payload":"AAAA"}}',
    '{"event":"mark","streamSid":"MZ0","mark":"name"}',
    '{"event":"mark","streamSid":"MZ0","mark":[1]}',
    '{"event":"dtmf","streamSid":"MZ0","dtmf":5}',
    '{"event":"dtmf","streamSid":"MZ0","dtmf":"5"}',
    '{"event":"media","streamSid":"MZ0","media":{"timestamp":1e999,"payload":"AAAA"}}',
    '{"event":"media","streamSid":"MZ0","media":{"timestamp":"inf","payload":"AAAA"}}',
    '{"event":"media","streamSid":"MZ0","media":{"timestamp":"1e400","payload":"AAAA"}}',
    "[" * 100_000 + "]" * 100_000,
    '{"event":"media","media":' + "[" * 100_000 + "]" * 100_000 + "}",
]
FATAL_BROWSER = [
    '{"type":["played"]}', '{"type":{"a":1}}', '{"type":"played","ms":Infinity}', '{"type":"played","ms":1e999}',
    '{"type":"played","ms":-1}', '{"type":"played","item_id":[1],"ms":5}', "[" * 100_000 + "]" * 100_000,
]


def test_real_frames_decode_into_their_types() -> None:
    kinds = [type(frames.decode_twilio(json.dumps(f))) for f in twilio_frames()]
    assert kinds == [frames.Media, frames.Mark, frames.DtmfFrame, frames.Start, frames.Connected]
    media = frames.decode_twilio(json.dumps(twilio_frames()[0]))
    assert isinstance(media, frames.Media) and media.media.payload == "//////////8="  # base64 left as sent
    assert frames.media_timestamp(media.media) == 80.0
    stop = frames.decode_twilio('{"event":"stop","streamSid":"MZ0","stop":{"accountSid":"AC","callSid":"CA"}}')
    assert isinstance(stop, frames.Stop)
    played = frames.decode_browser('{"type":"played","item_id":"i","ms":12.5,"idle":true}')
    assert played == frames.Played(item_id="i", ms=12.5, idle=True)
    assert isinstance(frames.decode_browser('{"type":"hangup"}'), frames.Hangup)


@pytest.mark.parametrize("raw", FATAL_TWILIO + FATAL_BROWSER)
def test_the_fatal_shapes_are_rejected_not_raised(raw: str) -> None:
    for decode in (frames.decode_twilio, frames.decode_browser):
        try:
            message = decode(raw)
        except frames.FrameRejected as exc:
            assert raw[:20] not in exc.reason or len(raw) < 3  # the reason never quotes the frame
            continue
        # What does decode is well-typed (a timestamp that is not a sane number reads as none).
        if isinstance(message, frames.Media):
            assert frames.media_timestamp(message.media) is None


def test_rejections_name_no_contents() -> None:
    with pytest.raises(frames.FrameRejected) as info:
        frames.decode_twilio('{"event":"+15551234567"}')
    assert "+1555" not in info.value.reason and "event" in info.value.reason


@FUZZ
@given(malformed_twilio_frames() | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_twilio_parser_never_raises_anything_else(raw: str) -> None:
    try:
        frames.decode_twilio(raw)
    except frames.FrameRejected:
        pass


@FUZZ
@given(malformed_browser_frames())
def test_browser_parser_never_raises_anything_else(raw: str) -> None:
    try:
        frames.decode_browser(raw)
    except frames.FrameRejected:
        pass


class QueueSocket:
    """Frames in from a queue; `None` is the peer closing."""

    def __init__(self, incoming: list[Any]) -> None:
        self.scope: dict[str, Any] = {}
        self.connection_state = "receive"
        self.incoming = list(incoming)
        self.sent: list[Any] = []
        self.closed: tuple[int, str] | None = None

    async def receive_text(self) -> str:
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            from litestar.exceptions import WebSocketDisconnect
            raise WebSocketDisconnect(detail="gone")
        return message.get("text") or ""

    async def receive(self) -> dict[str, Any]:
        await asyncio.sleep(0)
        if not self.incoming:
            return {"type": "websocket.disconnect", "code": 1000}
        item = self.incoming.pop(0)
        return {"type": "websocket.receive", **({"bytes": item} if isinstance(item, bytes) else {"text": item})}

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


async def _events(transport: Any) -> list[Any]:
    return [event async for event in transport.events()]


STOP = '{"event":"stop","streamSid":"MZ0","stop":{"accountSid":"AC0","callSid":"CA0"}}'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(malformed_twilio_frames(), min_size=1, max_size=30))
def test_a_twilio_stream_ends_only_at_its_stop(raws: list[str]) -> None:
    socket = QueueSocket([*raws, STOP, '{"event":"media","media":{"payload":"AAAA"}}'])
    transport = TwilioTransport(socket, stream_sid="MZ0", call_sid="CA0", calls=None)  # type: ignore[arg-type]
    events = asyncio.run(_events(transport))
    assert events[-1] == CallerGone("hung_up") and CallerGone not in map(type, events[:-1])
    assert transport.stopped and socket.incoming == ['{"event":"media","media":{"payload":"AAAA"}}']
    assert transport.ignored_frames <= len(raws)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(malformed_browser_frames() | st.binary(max_size=200), min_size=1, max_size=30))
def test_a_browser_call_ends_only_at_its_hangup(raws: list[Any]) -> None:
    socket = QueueSocket([*raws, '{"type":"hangup"}', b"\x00\x00"])
    events = asyncio.run(_events(BrowserTransport(socket)))  # type: ignore[arg-type]
    assert events[-1] == CallerGone("hangup") and CallerGone not in map(type, events[:-1])
    assert all(isinstance(e, AudioIn) and len(e.payload) % 2 == 0 for e in events[:-1])


def test_bad_frames_are_logged_at_a_bounded_rate_without_contents(caplog: pytest.LogCaptureFixture) -> None:
    socket = QueueSocket(['{"event":"+15551234567 secret"}'] * 500 + [STOP])
    transport = TwilioTransport(socket, stream_sid="MZ0", call_sid="CA0", calls=None)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        asyncio.run(_events(transport))
    lines = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert transport.ignored_frames == 500
    assert 1 <= len(lines) <= frames.FrameGuard.FIRST + 1
    assert not any("+1555" in line or "secret" in line for line in lines)
