"""The caller's side of a call, whatever the channel: the CallBridge only ever talks to this interface.

A transport turns its wire protocol (browser WebSocket, Twilio Media Streams) into `CallerEvent`s and
carries agent audio back. It also knows how much agent audio the caller has actually *heard*, which is
what barge-in truncation needs: the browser reports playback, Twilio returns marks.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class AudioIn:
    """Caller audio in the transport's own format, passed to the realtime model untouched: bytes, or a `str`
    when the channel's wire already carries it as base64 (that string then goes to the model as it is)."""

    payload: bytes | str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class CallerGone:
    """The caller side ended: hang-up, `stop`, or a dropped socket. `reason` goes into the call record."""

    reason: str


CallerEvent = AudioIn | Dtmf | CallerGone


@runtime_checkable
class MovableLine(Protocol):
    """A transport whose call can be handed to another instance (a phone line: the telephony side redirects
    it to a fresh stream there). The browser's can't: it finishes or ends with the instance."""

    call_sid: str

    async def move_to(self, stream_url: str, token: str) -> bool: ...


def base64_bytes(text: str) -> int:
    """Bytes a (padded) base64 string decodes to, without decoding it."""
    return len(text) * 3 // 4 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0)


class CallerTransport(abc.ABC):
    #: "browser" or "twilio" (app.db.models.Channel values)
    channel: str
    #: the Realtime session's audio format for both directions, e.g. {"type": "audio/pcmu"}
    audio_format: dict[str, Any]
    #: bytes of audio per millisecond in that format (pcmu: 8, pcm 24 kHz 16-bit: 48)
    bytes_per_ms: int
    #: Issue 16: the call's language (BCP-47), kept current by app.voice.language: what the channel says itself
    #: (TwiML <Say> on the phone) is in it
    language: str | None = None

    @abc.abstractmethod
    def events(self) -> AsyncIterator[CallerEvent]:
        """Caller events until the caller is gone; the last one is always `CallerGone`."""

    @abc.abstractmethod
    async def send_audio(self, item_id: str, chunk: bytes | str) -> None:
        """Queue agent audio of realtime item `item_id` for playback: the model's delta as it came (its base64
        `str`, which a channel that speaks base64 passes on untouched) or bytes."""

    async def audio_done(self) -> None:  # noqa: B027
        """The model has finished this item's audio (nothing more follows it soon): a channel that batches its
        playback bookkeeping closes the batch now."""

    @abc.abstractmethod
    async def clear(self) -> None:
        """Stop playback at once and drop everything queued (barge-in)."""

    @abc.abstractmethod
    def heard_ms(self, item_id: str) -> int:
        """Milliseconds of `item_id`'s audio the caller has heard so far (0 for an unknown item)."""

    @abc.abstractmethod
    async def wait_played(self, timeout: float) -> bool:
        """Wait until all audio sent so far has been played; False on timeout or when the caller left."""

    async def send_caption(self, role: str, text: str, *, final: bool) -> None:  # noqa: B027
        """Live captions for channels that can show them; a phone can't, so the default does nothing."""

    async def send_state(self, state: str, **data: Any) -> None:  # noqa: B027
        """Call state for channels with a UI ("listening", "speaking", "ended", …)."""

    async def announce(self, message: str) -> None:  # noqa: B027
        """Tell the caller something the model can't (e.g. OpenAI is unreachable). The browser shows it;
        a phone transport may speak it (e.g. TwiML <Say>) before hanging up."""

    @abc.abstractmethod
    async def hang_up(self, reason: str) -> None:
        """End the call on the caller's side (after any goodbye has played)."""

    @property
    def ignored_frames(self) -> int:
        """Frames from the caller's side that were malformed and skipped (counted for the call record)."""
        return 0

    async def fall_back(self, reason: str) -> str | None:
        """The AI can't go on with this call: hand it to the channel's fallback (a phone call is forwarded to
        the business or records a voicemail). Returns what happened, or None when the channel has none."""
        return None

    async def transfer(self, number: str) -> bool:
        """Hand the caller to a person at `number`; False when the channel can't (the browser)."""
        return False
