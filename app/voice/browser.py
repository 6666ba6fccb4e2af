"""The browser test call's transport: Litestar's WebSocket, PCM16 24 kHz both ways, untouched.

Wire protocol (also in DESIGN.md): binary frames are PCM16 LE mono 24 kHz audio in both directions.
Text frames are JSON. To the page: {"type":"item","item_id"} before the first audio of each agent item,
{"type":"clear"}, {"type":"transcript","role","text","final"}, {"type":"state","state"},
{"type":"notice","message"}, {"type":"end","reason"}. From the page: {"type":"played","item_id","ms",
"idle"?, "cleared"?} (ms = milliseconds of that item actually played; "idle" when the playback buffer ran
dry; "cleared" answers a clear), and {"type":"hangup"}. Anything else is logged and ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from app.db.models import Channel
from app.voice import frames
from app.voice.pcm_recording import PcmStereoRecording
from app.voice.sockets import CLOSE_NORMAL, close_socket
from app.voice.transport import AudioIn, CallerEvent, CallerGone, CallerTransport

log = logging.getLogger(__name__)

BYTES_PER_MS = 48  # 24 kHz × 2 bytes
CLEAR_ACK_TIMEOUT = 0.25
MAX_FRAME_BYTES = 48 * 1000  # a second of audio: anything larger is not a microphone frame


class BrowserTransport(CallerTransport):
    channel = Channel.BROWSER.value
    audio_format = {"type": "audio/pcm", "rate": 24000}
    bytes_per_ms = BYTES_PER_MS

    def __init__(self, socket: WebSocket[Any, Any, Any], recording: PcmStereoRecording | None = None) -> None:
        self._ws = socket
        self._recording = recording
        self._sent_ms: dict[str, float] = {}
        self._heard: dict[str, tuple[int, float]] = {}  # item → (ms reported, when)
        self._last_item: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._cleared = asyncio.Event()
        self._gone = False
        self._send_lock = asyncio.Lock()
        self._playing = False
        self._guard = frames.FrameGuard("browser call")

    async def _send_json(self, message: dict[str, Any]) -> None:
        if self._gone:
            return
        async with self._send_lock:
            try:
                await self._ws.send_text(frames.encode(message))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._gone = True

    async def events(self) -> AsyncIterator[CallerEvent]:
        while True:
            try:
                message = await self._ws.receive()
            except WebSocketDisconnect:
                self._gone = True
                yield CallerGone("disconnected")
                return
            if message["type"] == "websocket.disconnect":
                self._gone = True
                self._idle.set()
                yield CallerGone("disconnected")
                return
            data = message.get("bytes")
            if data:
                if len(data) % 2 or len(data) > MAX_FRAME_BYTES:
                    self._guard.reject(f"a {len(data)}-byte audio frame")
                    continue
                if self._recording is not None:
                    self._recording.add_caller(data)
                yield AudioIn(data)
                continue
            text = message.get("text")
            if text is None:
                continue
            try:
                control = frames.decode_browser(text)
            except frames.FrameRejected as exc:
                self._guard.reject(exc.reason)
                continue
            if isinstance(control, frames.Hangup):
                yield CallerGone("hangup")
                return
            self._on_played(control)

    @property
    def ignored_frames(self) -> int:
        return self._guard.rejected

    def _on_played(self, control: frames.Played) -> None:
        item_id, ms = control.item_id, control.ms
        if item_id is not None and ms is not None:
            previous = self._heard.get(item_id, (0, 0.0))[0]
            self._heard[item_id] = (max(previous, int(ms)), time.monotonic())
        if control.cleared:
            self._cleared.set()
        if control.idle:
            self._playing = False
            if self._last_item is None or self._heard_so_far(self._last_item) + 25 >= self._sent_ms.get(
                self._last_item, 0
            ):
                self._idle.set()

    def _heard_so_far(self, item_id: str) -> int:
        return self._heard.get(item_id, (0, 0.0))[0]

    async def send_audio(self, item_id: str, chunk: bytes | str) -> None:
        if self._gone:
            return
        if isinstance(chunk, str):
            chunk = base64.b64decode(chunk)  # the page plays binary PCM frames
        if not chunk:
            return
        if item_id != self._last_item:
            self._last_item = item_id
            await self._send_json({"type": "item", "item_id": item_id})
        self._sent_ms[item_id] = self._sent_ms.get(item_id, 0.0) + len(chunk) / BYTES_PER_MS
        self._idle.clear()
        self._playing = True
        if self._recording is not None:
            self._recording.add_agent(chunk)
        async with self._send_lock:
            try:
                await self._ws.send_bytes(chunk)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._gone = True

    async def clear(self) -> None:
        if self._recording is not None:
            self._recording.cut_agent()
        self._cleared.clear()
        await self._send_json({"type": "clear"})
        # The page answers with its exact playback position, which makes the truncation exact.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLEAR_ACK_TIMEOUT):
                await self._cleared.wait()
        self._playing = False
        self._idle.set()

    def heard_ms(self, item_id: str) -> int:
        """Reported playback, advanced by the wall clock since the last report while audio is playing."""
        reported, at = self._heard.get(item_id, (0, 0.0))
        if not self._playing or item_id != self._last_item or at == 0.0:
            return reported
        estimate = reported + int((time.monotonic() - at) * 1000)
        return min(estimate, int(self._sent_ms.get(item_id, 0)))

    async def wait_played(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return not self._gone

    async def send_caption(self, role: str, text: str, *, final: bool) -> None:
        await self._send_json({"type": "transcript", "role": role, "text": text, "final": final})

    async def send_state(self, state: str, **data: Any) -> None:
        await self._send_json({"type": "state", "state": state, **data})

    async def announce(self, message: str) -> None:
        await self._send_json({"type": "notice", "message": message})

    async def hang_up(self, reason: str) -> None:
        await self._send_json({"type": "end", "reason": reason})
        self._gone = True
        await close_socket(self._ws, CLOSE_NORMAL, reason)
