"""Helpers for call-engine tests: a caller transport with a real-time playback clock, WAV frames."""

from __future__ import annotations

import asyncio
import base64
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.voice.transport import AudioIn, CallerEvent, CallerGone, CallerTransport

ASSETS = Path(__file__).resolve().parents[1] / "assets"
GREETING = "Thanks for calling Sam's Salon, how can I help?"  # tests.support.data's default business


def next_open_weekday(tz: str = "America/New_York") -> date:
    """Tomorrow or the next weekday after it: the default business is open 09:00-17:00 then."""
    day = datetime.now(ZoneInfo(tz)).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 24000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.readframes(w.getnframes())


def silence(ms: int) -> bytes:
    return bytes(48 * ms)


@dataclass
class _Segment:
    item_id: str
    start: float
    ms: float


@dataclass
class PlaybackTransport(CallerTransport):
    """Plays agent audio on a wall clock like a real caller's speaker: each chunk starts when the previous
    one ends, so `heard_ms` is exactly what has been played; `clear` stops it at that instant."""

    channel: str = "browser"
    audio_format: dict[str, Any] = field(default_factory=lambda: {"type": "audio/pcm", "rate": 24000})
    bytes_per_ms: int = 48
    can_transfer: bool = False
    inbox: asyncio.Queue[CallerEvent] = field(default_factory=asyncio.Queue)
    segments: list[_Segment] = field(default_factory=list)
    received: dict[str, int] = field(default_factory=dict)
    clears: list[float] = field(default_factory=list)
    cleared_heard: list[tuple[str, int]] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)
    hung_up_at: float | None = None
    transfers: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    captions: list[tuple[str, str, bool]] = field(default_factory=list)
    first_audio_at: float | None = None

    def _end(self) -> float:
        return max((s.start + s.ms / 1000 for s in self.segments), default=0.0)

    async def events(self) -> AsyncIterator[CallerEvent]:
        while True:
            event = await self.inbox.get()
            yield event
            if isinstance(event, CallerGone):
                return

    async def send_audio(self, item_id: str, chunk: bytes | str) -> None:
        if isinstance(chunk, str):
            chunk = base64.b64decode(chunk)
        now = time.monotonic()
        self.first_audio_at = self.first_audio_at or now
        self.received[item_id] = self.received.get(item_id, 0) + len(chunk)
        self.segments.append(_Segment(item_id, max(now, self._end()), len(chunk) / self.bytes_per_ms))

    def heard_ms(self, item_id: str) -> int:
        now = time.monotonic()
        return int(sum(min(max(0.0, (now - s.start) * 1000), s.ms) for s in self.segments if s.item_id == item_id))

    async def clear(self) -> None:
        now = time.monotonic()
        playing = [s for s in self.segments if s.start <= now < s.start + s.ms / 1000]
        for seg in self.segments:
            seg.ms = min(seg.ms, max(0.0, (now - seg.start) * 1000))
        self.clears.append(now)
        if playing:
            self.cleared_heard.append((playing[0].item_id, self.heard_ms(playing[0].item_id)))

    async def wait_played(self, timeout: float) -> bool:
        delay = self._end() - time.monotonic()
        if delay > timeout:
            await asyncio.sleep(timeout)
            return False
        await asyncio.sleep(max(0.0, delay))
        return True

    async def send_caption(self, role: str, text: str, *, final: bool) -> None:
        self.captions.append((role, text, final))

    async def announce(self, message: str) -> None:
        self.notices.append(message)

    async def hang_up(self, reason: str) -> None:
        self.hung_up.append(reason)
        self.hung_up_at = time.monotonic()

    @property
    def audio_end(self) -> float:
        return self._end()

    async def transfer(self, number: str) -> bool:
        self.transfers.append(number)
        return self.can_transfer

    # -- the caller's side --------------------------------------------------------------------------------
    async def speak(self, pcm: bytes, frame_ms: int = 20) -> None:
        """Send audio in real time, 20 ms a frame, like a microphone."""
        step = 48 * frame_ms
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm), step)):
            await self.inbox.put(AudioIn(pcm[offset:offset + step]))
            delay = start + (index + 1) * frame_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    def leave(self, reason: str = "hangup") -> None:
        self.inbox.put_nowait(CallerGone(reason))


# -- a call through the runtime, the real SDK and the OpenAI double -------------------------------------------
@dataclass
class LiveCall:
    runtime: Any
    bridge: Any
    transport: PlaybackTransport
    session_id: Any
    call_id: Any
    business_id: Any
    task: asyncio.Task[Any]


async def place_call(settings: Any, db: Any, *, limits: Any = None, transport: PlaybackTransport | None = None,
                     **business: Any) -> LiveCall:
    """Create a business and a claimed browser session, and run its call over a PlaybackTransport."""
    from app.telephony.line import PhoneLine
    from app.voice.lifecycle import claim_call
    from app.voice.runtime import CallRuntime
    from app.voice.sessions import open_session
    from tests.support.data import create_owner

    _user, biz = await create_owner(db, **business)
    runtime = CallRuntime(settings, db, telephony=PhoneLine(settings))
    session, token = await open_session(db, runtime.issuer, biz, "browser")
    runtime.prewarm(session.id)
    claimed, call = await claim_call(db, runtime.issuer, token, channel="browser", session_id=session.id)
    transport = transport or PlaybackTransport()
    bridge = await runtime.build_bridge(claimed, call, transport, limits=limits)
    runtime.bridges.add(bridge)
    task = asyncio.create_task(bridge.run())
    task.add_done_callback(lambda _t: runtime.bridges.discard(bridge))
    return LiveCall(runtime, bridge, transport, session.id, bridge.recorder.call_id, biz.id, task)


async def call_record(db: Any, live: LiveCall) -> tuple[Any, list[Any]]:
    """The call's row and its events, in order, as the bridge wrote them."""
    from sqlalchemy import select

    from app.db.models import Call, CallEvent

    async with db.session() as s:
        call = await s.get(Call, live.call_id)
        events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == live.call_id)
                                      .order_by(CallEvent.sequence)))
    assert call is not None
    return call, events
