"""Stand-ins for unit tests of the Twilio media-stream transport: Litestar's WebSocket and a hand-moved clock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from litestar.exceptions import WebSocketDisconnect


class FakeSocket:
    """Frames in from a queue, frames out kept as sent; `None` in the queue is a disconnect."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.connection_state = "receive"
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed_with: int | None = None

    @property
    def outgoing(self) -> list[dict[str, Any]]:
        """The frames sent, parsed."""
        return [json.loads(text) for text in self.sent]

    async def receive_text(self) -> str:
        frame = await self.incoming.get()
        if frame is None:
            raise WebSocketDisconnect(detail="gone")
        return frame

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = code

    def feed(self, message: dict[str, Any] | str) -> None:
        self.incoming.put_nowait(message if isinstance(message, str) else json.dumps(message))


class Clock:
    """The transport's monotonic clock, moved by the test."""

    def __init__(self, start: float = 100.0) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000

    def set_ms(self, ms: float) -> None:
        """`ms` after the start."""
        self.now = self.start + ms / 1000
