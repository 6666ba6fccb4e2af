"""Typed messages for the two caller sockets: Twilio Media Streams frames and the browser call's text frames.

Invariant: a frame from a caller's socket either decodes into one of the Structs below or is rejected, and a
rejection is never an exception that reaches the call: `decode_twilio` / `decode_browser` return None, the
`FrameGuard` counts it and logs a bounded line without any of the frame's contents. Only a `stop` (Twilio), a
`hangup` (browser) or the socket closing ends a call.

Limits, checked before msgspec sees a byte: a frame longer than the channel's maximum is refused, and so is
one with more than MAX_CONTAINERS objects/arrays. msgspec's decoder recurses (also when it skips unknown
fields), so the container count is what bounds its depth; a real frame has at most four. Counting brackets
with `str.count` is a C loop over a few hundred bytes, far cheaper than the decode itself.

Numbers that Twilio sends as strings (`sequenceNumber`, `timestamp`, `chunk`) are kept as sent; the media
payload stays the base64 `str` it arrived as (no bytes round trip inside the decoder).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Annotated

import msgspec

log = logging.getLogger(__name__)

#: objects + arrays a frame may hold; Twilio's `start` has four, the browser's messages one
MAX_CONTAINERS = 16
#: Twilio's largest frame is `start` with its custom parameters (a few hundred bytes); a 20 ms media frame
#: is about 300. 64 KiB leaves room for long parameters while refusing junk at once.
MAX_TWILIO_FRAME_CHARS = 64 * 1024
MAX_BROWSER_TEXT_CHARS = 4 * 1024
#: the stream clock: ms since the stream started; a call never runs for a year
MAX_TIMESTAMP_MS = 365 * 24 * 3600 * 1000.0

Text = Annotated[str, msgspec.Meta(max_length=4096)]


# -- Twilio -> service ----------------------------------------------------------------------------------------
class MediaFormat(msgspec.Struct, frozen=True):
    encoding: Text = "audio/x-mulaw"
    sampleRate: int | str = 8000
    channels: int | str = 1


class StartInfo(msgspec.Struct, frozen=True):
    streamSid: Text = ""
    accountSid: Text = ""
    callSid: Text = ""
    tracks: list[Text] = []
    customParameters: dict[Text, Text] = {}
    mediaFormat: MediaFormat = MediaFormat()


class Connected(msgspec.Struct, frozen=True, tag_field="event", tag="connected"):
    protocol: Text = ""
    version: Text = ""
    streamSid: Text = ""  # Twilio sends none here; every frame type has one so the stream check is uniform


class Start(msgspec.Struct, frozen=True, tag_field="event", tag="start"):
    start: StartInfo
    streamSid: Text = ""
    sequenceNumber: Text | int | None = None


class MediaBody(msgspec.Struct, frozen=True):
    payload: Annotated[str, msgspec.Meta(max_length=64 * 1024)]
    track: Text = "inbound"
    chunk: Text | int | None = None
    timestamp: Text | int | float | None = None


class Media(msgspec.Struct, frozen=True, tag_field="event", tag="media"):
    media: MediaBody
    streamSid: Text = ""
    sequenceNumber: Text | int | None = None


class MarkBody(msgspec.Struct, frozen=True):
    name: Text


class Mark(msgspec.Struct, frozen=True, tag_field="event", tag="mark"):
    mark: MarkBody
    streamSid: Text = ""
    sequenceNumber: Text | int | None = None


class DtmfBody(msgspec.Struct, frozen=True):
    digit: Text
    track: Text = "inbound_track"


class DtmfFrame(msgspec.Struct, frozen=True, tag_field="event", tag="dtmf"):
    dtmf: DtmfBody
    streamSid: Text = ""
    sequenceNumber: Text | int | None = None


class StopBody(msgspec.Struct, frozen=True):
    accountSid: Text = ""
    callSid: Text = ""


class Stop(msgspec.Struct, frozen=True, tag_field="event", tag="stop"):
    streamSid: Text = ""
    sequenceNumber: Text | int | None = None
    stop: StopBody = StopBody()


TwilioFrame = Connected | Start | Media | Mark | DtmfFrame | Stop
_twilio_decoder = msgspec.json.Decoder(TwilioFrame)


def media_timestamp(body: MediaBody) -> float | None:
    """The frame's stream-clock timestamp in ms, or None when it is missing or not a sane number."""
    value = body.timestamp
    if value is None:
        return None
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return None
    return ms if math.isfinite(ms) and 0.0 <= ms <= MAX_TIMESTAMP_MS else None


# -- browser page -> service ----------------------------------------------------------------------------------
class Played(msgspec.Struct, frozen=True, tag_field="type", tag="played"):
    item_id: Text | None = None
    ms: Annotated[float, msgspec.Meta(ge=0, le=MAX_TIMESTAMP_MS)] | None = None
    idle: bool = False
    cleared: bool = False


class Hangup(msgspec.Struct, frozen=True, tag_field="type", tag="hangup"):
    pass


BrowserControl = Played | Hangup
_browser_decoder = msgspec.json.Decoder(BrowserControl)

_encoder = msgspec.json.Encoder()


def encode(message: object) -> str:
    """JSON text for a control frame (msgspec: several times faster than the stdlib's json.dumps)."""
    return _encoder.encode(message).decode()


# -- decoding with limits -------------------------------------------------------------------------------------
class FrameRejected(Exception):
    """`reason` names what was wrong with a frame, never what it contained."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _describe(exc: Exception) -> str:
    # msgspec's messages name the path and the expected type; an invalid tag is quoted back: drop quotes.
    return _QUOTED.sub("…", str(exc))[:160]


def _decode(decoder: msgspec.json.Decoder, raw: str | bytes, limit: int) -> object:
    if len(raw) > limit:
        raise FrameRejected(f"a frame of {len(raw)} characters (limit {limit})")
    if isinstance(raw, str):
        containers = raw.count("{") + raw.count("[")
    else:
        containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_CONTAINERS:
        raise FrameRejected(f"a frame with {containers} objects/arrays (limit {MAX_CONTAINERS})")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise FrameRejected(f"a frame that does not fit: {_describe(exc)}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise FrameRejected("a frame that is not JSON") from None


def decode_twilio(raw: str | bytes) -> TwilioFrame:
    """One Media Streams frame; raises FrameRejected."""
    return _decode(_twilio_decoder, raw, MAX_TWILIO_FRAME_CHARS)  # type: ignore[return-value]


def decode_browser(raw: str | bytes) -> BrowserControl:
    """One browser control message; raises FrameRejected."""
    return _decode(_browser_decoder, raw, MAX_BROWSER_TEXT_CHARS)  # type: ignore[return-value]


class FrameGuard:
    """Counts a socket's rejected frames and logs them at a bounded rate: the first few, then one summary
    line per interval however fast a peer sends junk."""

    FIRST = 5
    INTERVAL_SECONDS = 10.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.rejected = 0
        self._clock = time.monotonic
        self._last_log = 0.0
        self._unlogged = 0

    def reject(self, reason: str) -> None:
        self.rejected += 1
        now = self._clock()
        if self.rejected <= self.FIRST:
            log.warning("%s: ignored %s", self.what, reason)
            self._last_log = now
        elif now - self._last_log >= self.INTERVAL_SECONDS:
            log.warning("%s: ignored %d more bad frames (latest: %s)", self.what, self._unlogged + 1, reason)
            self._last_log = now
            self._unlogged = 0
        else:
            self._unlogged += 1
