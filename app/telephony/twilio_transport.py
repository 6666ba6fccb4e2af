"""The phone caller's transport: a Twilio bidirectional Media Stream on a Litestar WebSocket.

Audio is `audio/pcmu` both ways and never transcoded, nor even re-encoded: the base64 payload of an inbound
`media` frame is the string that goes into `input_audio_buffer.append`, and a model delta's base64 is the
string that goes into the outbound `media` frame (inbound payloads are decoded once, to validate them; the
agent side of a recording is decoded when the file is written, after the call).

Marks: Twilio returns a named mark once the audio queued before it has played (or was cleared). One mark per
delta would double the frames both ways, so outgoing audio is grouped into segments of up to MARK_EVERY_MS of
one item, one mark each (also closed when the item changes, the model says its audio is done, playback ran
dry for more than a frame, or someone waits for playback). Within a segment the playback position is read
from the clock, counted back from the segment's end and re-anchored by every returned mark, so while Twilio
plays to the schedule the estimate of what the caller heard is exact to the mark's network delay, never ahead
of the schedule and never past what was sent: what barge-in truncation and "hang up after the goodbye" need.

Closing the socket does not end a phone call; hang-up and transfer go through Twilio's REST API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from app.db.models import Channel
from app.telephony import twiml
from app.telephony.mulaw_recording import StereoRecording
from app.telephony.rest import TwilioCalls, TwilioUnavailable
from app.voice import frames
from app.voice.sockets import CLOSE_NORMAL, close_socket, frame_channel
from app.voice.transport import AudioIn, CallerEvent, CallerGone, CallerTransport, Dtmf, base64_bytes

log = logging.getLogger(__name__)

BYTES_PER_MS = 8  # 8 kHz mu-law
# Playback that runs later than the schedule by more than this is treated as real delay (recording).
LATE_MARK_MS = 20.0
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MAX_PAYLOAD_BYTES = 8 * 1000  # a second of audio; Twilio sends 20 ms frames
REST_SETTLE_SECONDS = 12.0  # a little over the REST client's own timeout
FRAME_MS = 20.0  # Twilio's frame; the accuracy the heard-position estimate keeps
#: the longest stretch of agent audio under one mark
MARK_EVERY_MS = 100.0


@dataclass(slots=True)
class _Pending:
    """An outgoing chunk whose mark has not come back yet."""

    item_id: str
    item_ms: float  # ms of the item played once this chunk has finished
    start_ms: float  # when it starts playing, stream clock
    end_ms: float
    gap_ms: float = 0.0  # silence inside the segment (playback ran dry between two of its chunks)


class TwilioTransport(CallerTransport):
    channel = Channel.TWILIO.value
    audio_format = {"type": "audio/pcmu"}
    bytes_per_ms = BYTES_PER_MS

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        *,
        stream_sid: str,
        call_sid: str,
        calls: TwilioCalls | None,
        recording: StereoRecording | None = None,
        caller_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        stream_started: float | None = None,
        fallback: Callable[[str, str | None], tuple[str, str]] | None = None,
    ) -> None:
        self._ws = socket
        self._frames = frame_channel(socket)
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self._calls = calls
        self.recording = recording
        self._caller_id = caller_id
        self._fallback = fallback  # (reason, language) -> (TwiML, what it does) from app.telephony.fallback
        self._clock = clock
        self._t0 = clock() if stream_started is None else stream_started  # when `start` arrived
        self._send_lock = asyncio.Lock()
        # The media frame around each base64 payload, built once: the payload is the only part that varies.
        self._media_head = '{"event":"media","streamSid":' + frames.encode(stream_sid) + ',"media":{"payload":"'
        self._mark_seq = 0
        self._pending: dict[str, _Pending] = {}
        self._open: tuple[str, _Pending] | None = None  # the segment still growing: its mark is not sent yet
        self._order: deque[str] = deque()
        self._sent_ms: dict[str, float] = {}
        self._heard: dict[str, float] = {}
        self._queue_end_ms = 0.0
        self._last_mark_at_ms = 0.0
        self._drained = asyncio.Event()
        self._drained.set()
        self._gone = False
        self._hung_up = False
        self._handed_off = False  # a transfer or spoken announcement owns the call now
        # Clear while a transfer is being requested: Twilio ends the stream (`stop`) before its REST answer
        # comes back, and that `stop` must not be taken for the caller hanging up.
        self._no_handoff_pending = asyncio.Event()
        self._no_handoff_pending.set()
        self._guard = frames.FrameGuard(f"twilio stream {stream_sid}")
        self.stopped = False  # Twilio sent `stop`: the stream is over, the socket only needs its close frame

    # -- clocks -------------------------------------------------------------------------------------------
    def _now_ms(self) -> float:
        """Milliseconds since the stream started (the same origin as Twilio's media timestamps)."""
        return (self._clock() - self._t0) * 1000

    # -- inbound ------------------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[CallerEvent]:
        while True:
            try:
                raw = await self._frames.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                await self._settle_handoff()
                self._went_away()
                yield CallerGone("disconnected")
                return
            try:
                frame = frames.decode_twilio(raw)
            except frames.FrameRejected as exc:
                self._ignore(exc.reason)
                continue
            if frame.streamSid and frame.streamSid != self.stream_sid:
                self._ignore(f"a {type(frame).__name__} frame for another stream")
                continue
            if isinstance(frame, frames.Media):
                payload = self._media_payload(frame.media)
                if payload is not None:
                    yield AudioIn(payload)
            elif isinstance(frame, frames.Mark):
                self._on_mark(frame.mark.name)
            elif isinstance(frame, frames.DtmfFrame):
                digit = frame.dtmf.digit
                if len(digit) == 1 and digit in DTMF_DIGITS:
                    yield Dtmf(digit)
                else:
                    self._ignore("a dtmf frame without a keypad digit")
            elif isinstance(frame, frames.Stop):
                self.stopped = True
                await self._settle_handoff()
                self._went_away()
                yield CallerGone("transferred" if self._handed_off else "hung_up")
                return
            else:
                # `connected` / `start` again: out of order here, and harmless to skip.
                self._ignore(f"an unexpected {type(frame).__name__} frame")

    def _media_payload(self, media: frames.MediaBody) -> str | None:
        """The frame's base64 payload as it came (what the model gets), once it is known to be audio."""
        if media.track not in {"inbound", "inbound_track"}:
            self._ignore("a media frame of another track")
            return None
        try:
            # Decoded only to validate (a C call of ~3 us); what goes on is the string itself.
            payload = binascii.a2b_base64(media.payload, strict_mode=True)
        except (binascii.Error, ValueError):
            self._ignore("a media frame with a bad payload")
            return None
        if not payload or len(payload) > MAX_PAYLOAD_BYTES:
            self._ignore(f"a media frame of {len(payload)} bytes")
            return None
        if self.recording is not None:
            timestamp = frames.media_timestamp(media)
            self.recording.add_caller(self._now_ms() if timestamp is None else timestamp, payload)
        return media.payload

    async def _settle_handoff(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REST_SETTLE_SECONDS):
                await self._no_handoff_pending.wait()

    def _ignore(self, what: str) -> None:
        # Logged, never fatal; rate-bounded so a misbehaving peer can't flood the log.
        self._guard.reject(what)

    @property
    def ignored_frames(self) -> int:
        return self._guard.rejected

    def _went_away(self) -> None:
        self._gone = True
        self._drained.set()

    # -- outbound -----------------------------------------------------------------------------------------
    async def _send(self, message: dict[str, Any]) -> bool:
        return await self._send_raw(frames.encode(message))

    async def _send_raw(self, text: str) -> bool:
        if self._gone:
            return False
        async with self._send_lock:
            try:
                await self._frames.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._went_away()
                return False
        return True

    async def send_audio(self, item_id: str, chunk: bytes | str) -> None:
        """`chunk`: mu-law bytes, or (the model's delta as it came) their base64, which is sent as it is."""
        if self._gone or not chunk:
            return
        if isinstance(chunk, str):
            payload, nbytes = chunk, base64_bytes(chunk)
        else:
            payload, nbytes = base64.b64encode(chunk).decode("ascii"), len(chunk)
        now = self._now_ms()
        start = max(now, self._queue_end_ms)
        duration = nbytes / BYTES_PER_MS
        self._queue_end_ms = start + duration
        item_ms = self._sent_ms[item_id] = self._sent_ms.get(item_id, 0.0) + duration
        segment = self._open[1] if self._open is not None else None
        if segment is not None and (segment.item_id != item_id or segment.gap_ms + start - segment.end_ms > FRAME_MS
                                    or segment.end_ms - segment.start_ms >= MARK_EVERY_MS):
            await self._close_segment()
            segment = None
        if segment is None:
            self._mark_seq += 1
            name = f"{item_id}:{self._mark_seq}"
            segment = self._pending[name] = _Pending(item_id, item_ms, start, start + duration)
            self._order.append(name)
            self._open = (name, segment)
        else:
            # Appended to the open segment. A gap before this chunk (playback ran dry) is silence the estimate
            # skips, since it counts back from the segment's end; more than a frame of it in one segment gets
            # a mark of its own instead, so a lagging playback is re-anchored often enough.
            segment.gap_ms += start - segment.end_ms
            segment.item_ms = item_ms
            segment.end_ms = start + duration
        self._drained.clear()
        if self.recording is not None:
            self.recording.add_agent(start, chunk)
        if not await self._send_raw(self._media_head + payload + '"}}'):
            return
        if segment.end_ms - segment.start_ms >= MARK_EVERY_MS:
            await self._close_segment()

    async def _close_segment(self) -> None:
        """Send the open segment's mark: from now on Twilio says when it has played."""
        if self._open is None:
            return
        name, _segment = self._open
        self._open = None
        await self._send_raw('{"event":"mark","streamSid":' + frames.encode(self.stream_sid)
                             + ',"mark":{"name":' + frames.encode(name) + '}}')

    async def audio_done(self) -> None:
        await self._close_segment()

    def _on_mark(self, name: str) -> None:
        pending = self._pending.pop(name, None)
        if pending is None:
            return  # returned because of a clear (already accounted for) or not ours
        now = self._now_ms()
        # Marks come back in order; any earlier one still listed was lost, and its audio has played too.
        while self._order and self._order[0] != name:
            self._pending.pop(self._order.popleft(), None)
        if self._order:
            self._order.popleft()
        self._heard[pending.item_id] = max(self._heard.get(pending.item_id, 0.0), pending.item_ms)
        self._last_mark_at_ms = now
        late = now - pending.end_ms
        if late > LATE_MARK_MS:
            # Playback runs behind the schedule: move what is still queued (and its recording) along.
            if self.recording is not None:
                self.recording.delay_agent(pending.end_ms, late)
            for queued in self._pending.values():
                queued.start_ms += late
                queued.end_ms += late
            self._queue_end_ms += late
        if not self._pending:
            self._drained.set()

    def _playing_now(self) -> tuple[_Pending, float] | None:
        """The chunk at the head of the playback queue and how far into it playback is (ms)."""
        if not self._order:
            return None
        head = self._pending.get(self._order[0])
        if head is None:
            return None
        started = max(head.start_ms, self._last_mark_at_ms)
        length = head.end_ms - head.start_ms
        return head, min(max(0.0, self._now_ms() - started), length)

    def heard_ms(self, item_id: str) -> int:
        heard = self._heard.get(item_id, 0.0)
        playing = self._playing_now()
        if playing is not None:
            head, into = playing
            if head.item_id == item_id:
                chunk_ms = head.end_ms - head.start_ms
                heard = max(heard, head.item_ms - chunk_ms + into)
        return int(min(round(heard), self._sent_ms.get(item_id, 0.0)))

    async def clear(self) -> None:
        playing = self._playing_now()
        if playing is not None:
            head, into = playing
            chunk_ms = head.end_ms - head.start_ms
            self._heard[head.item_id] = max(self._heard.get(head.item_id, 0.0), head.item_ms - chunk_ms + into)
        now = self._now_ms()
        # Twilio returns every pending mark after a clear; they no longer mean "played", so forget them first.
        self._pending.clear()
        self._order.clear()
        self._open = None
        self._queue_end_ms = now
        self._drained.set()
        if self.recording is not None:
            self.recording.cut_agent(now)
        await self._send({"event": "clear", "streamSid": self.stream_sid})

    async def wait_played(self, timeout: float) -> bool:
        await self._close_segment()
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            return False
        return not self._gone

    # -- ending the call ----------------------------------------------------------------------------------
    async def announce(self, message: str) -> None:
        """Speak `message` with Twilio's own voice and hang up (the model is unavailable to say it)."""
        if self._calls is None or self._handed_off or self._hung_up:
            return
        self._no_handoff_pending.clear()
        try:
            self._handed_off = await self._calls.redirect(self.call_sid, twiml.say_and_hang_up(message, self.language))
        except TwilioUnavailable as exc:
            log.warning("could not announce on call %s: %s", self.call_sid, exc)
        finally:
            self._no_handoff_pending.set()

    async def fall_back(self, reason: str) -> str | None:
        """Redirect the live call to the fallback TwiML (forward, else voicemail) through the REST API."""
        if self._fallback is None or self._calls is None or self._handed_off or self._hung_up:
            return None
        document, what = self._fallback(reason, self.language)
        self._no_handoff_pending.clear()
        try:
            self._handed_off = await self._calls.redirect(self.call_sid, document)
        except TwilioUnavailable as exc:
            log.warning("fallback of call %s failed: %s", self.call_sid, exc)
            return None
        finally:
            self._no_handoff_pending.set()
        return what if self._handed_off else None

    async def move_to(self, stream_url: str, token: str) -> bool:
        """Issue 11: redirect the live call to a fresh stream (`stream_url`, presenting the move `token`) on
        another instance (app.voice.move); Twilio ends this stream first, and its `stop` reads as a hand-off,
        not as the caller hanging up."""
        if self._calls is None or self._handed_off or self._hung_up or self._gone:
            return False
        self._no_handoff_pending.clear()
        try:
            self._handed_off = await self._calls.redirect(self.call_sid, twiml.connect_stream(stream_url, token))
        except TwilioUnavailable as exc:
            log.warning("move of call %s failed: %s", self.call_sid, exc)
            return False
        finally:
            self._no_handoff_pending.set()
        return self._handed_off

    async def transfer(self, number: str) -> bool:
        if self._calls is None or self._hung_up or self._gone:
            return False
        self._no_handoff_pending.clear()
        try:
            applied = await self._calls.redirect(self.call_sid, twiml.dial(number, caller_id=self._caller_id,
                                                                          language=self.language))
        except TwilioUnavailable as exc:
            log.warning("transfer of call %s failed: %s", self.call_sid, exc)
            return False
        finally:
            self._no_handoff_pending.set()
        self._handed_off = self._handed_off or applied
        return applied

    async def hang_up(self, reason: str) -> None:
        if not self._hung_up and not self._handed_off and self._calls is not None:
            self._hung_up = True
            try:
                await self._calls.hang_up(self.call_sid)
            except TwilioUnavailable as exc:
                log.warning("hang-up of call %s (%s) failed: %s", self.call_sid, reason, exc)
        self._went_away()
        await close_socket(self._ws, CLOSE_NORMAL, reason)
