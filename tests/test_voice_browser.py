"""The browser transport's wire protocol, against a stand-in for Litestar's WebSocket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app.voice.browser import BrowserTransport
from app.voice.transport import AudioIn, CallerGone


class FakeSocket:
    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.connection_state = "receive"
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[str | bytes] = []
        self.closed: tuple[int, str] | None = None
        self.clear_sent = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_text(self, data: str) -> None:
        self.sent.append(data)
        if json.loads(data).get("type") == "clear":
            self.clear_sent.set()

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def text(self, message: Any) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": message if isinstance(message, str)
                               else json.dumps(message)})

    def binary(self, data: bytes) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "bytes": data})

    def controls(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.sent if isinstance(m, str)]


async def collect(transport: BrowserTransport) -> list[Any]:
    return [event async for event in transport.events()]


async def test_audio_passes_through_and_junk_is_ignored() -> None:
    ws = FakeSocket()
    transport = BrowserTransport(ws)  # type: ignore[arg-type]
    frame = bytes(range(256)) * 3 + bytes(192)  # 960 bytes = 20 ms
    ws.binary(frame)
    ws.binary(b"\x01\x02\x03")  # odd length: not PCM16
    ws.text("not json")
    ws.text({"type": "launch-missiles"})
    ws.text({"type": "played", "item_id": 7, "ms": "lots"})
    ws.text({"type": "hangup"})
    events = await asyncio.wait_for(collect(transport), 2)
    assert events == [AudioIn(frame), CallerGone("hangup")]
    assert events[0].payload is frame  # untouched, not copied


async def test_disconnect_is_caller_gone() -> None:
    ws = FakeSocket()
    ws.inbox.put_nowait({"type": "websocket.disconnect", "code": 1006})
    assert await collect(BrowserTransport(ws)) == [CallerGone("disconnected")]  # type: ignore[arg-type]


async def test_items_playback_reports_and_clear() -> None:
    ws = FakeSocket()
    transport = BrowserTransport(ws)  # type: ignore[arg-type]
    reader = asyncio.create_task(collect(transport))
    await transport.send_audio("item_a", bytes(48 * 100))
    await transport.send_audio("item_a", bytes(48 * 100))
    assert ws.controls() == [{"type": "item", "item_id": "item_a"}]
    assert [len(m) for m in ws.sent if isinstance(m, bytes)] == [4800, 4800]
    assert transport.heard_ms("item_a") == 0
    ws.text({"type": "played", "item_id": "item_a", "ms": 60})
    await asyncio.sleep(0.05)
    # Between reports the position advances with the clock, never past what was sent.
    assert 60 <= transport.heard_ms("item_a") <= 200
    assert await transport.wait_played(0.05) is False

    async def page_answers_clear() -> None:
        await ws.clear_sent.wait()
        ws.text({"type": "played", "item_id": "item_a", "ms": 123, "cleared": True, "idle": True})

    answer = asyncio.create_task(page_answers_clear())
    await transport.clear()
    await answer
    assert transport.heard_ms("item_a") == 123  # exact, from the page's answer
    assert await transport.wait_played(0.1) is True

    await transport.send_audio("item_b", bytes(48 * 40))
    ws.text({"type": "played", "item_id": "item_b", "ms": 40, "idle": True})
    assert await transport.wait_played(1) is True
    await transport.send_caption("agent", "Hello", final=True)
    await transport.announce("OpenAI is down")
    await transport.hang_up("goodbye")
    assert ws.controls()[-3:] == [
        {"type": "transcript", "role": "agent", "text": "Hello", "final": True},
        {"type": "notice", "message": "OpenAI is down"},
        {"type": "end", "reason": "goodbye"},
    ]
    assert ws.closed == (1000, "goodbye")
    reader.cancel()
