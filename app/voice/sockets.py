"""Closing a caller's WebSocket: every socket the service ends gets exactly one close frame with a code and a
reason, whichever path ends it (a refused token, a `stop`, a hang-up, an error), and none is sent to a peer
that already closed (the ASGI server answers that close itself)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Protocol

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import Receive, Send

from app.web.raw_frames import RAW_ASGI

log = logging.getLogger(__name__)

_CLOSED = "receptionist.closed"
#: close frame reasons are limited to 123 bytes by RFC 6455
MAX_REASON_BYTES = 123
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the service is shutting down or moving the call
CLOSE_INTERNAL_ERROR = 1011


def _reason(text: str) -> str:
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


async def close_socket(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> bool:
    """Send the close frame unless the socket is closed already; True if this call sent it."""
    scope: dict[str, Any] = socket.scope  # type: ignore[assignment]
    if scope.get(_CLOSED) or socket.connection_state in {"init", "disconnect"}:
        return False
    scope[_CLOSED] = True
    with contextlib.suppress(Exception):
        await socket.close(code=code, reason=_reason(reason))
    return True


class TextFrames(Protocol):
    async def receive_text(self) -> str: ...
    async def send_text(self, text: str) -> None: ...


def frame_channel(socket: WebSocket[Any, Any, Any]) -> TextFrames:
    """The text frames of an accepted call socket: straight through the server's ASGI pair when the app kept it
    (app.web.raw_frames), else the socket itself (a socket not served by the app, e.g. a test's)."""
    raw = socket.scope.get(RAW_ASGI)  # type: ignore[call-overload]
    return FrameChannel(socket, *raw) if raw is not None else socket


class FrameChannel:
    """Text frames of an accepted call socket, read and written through the server's own ASGI `receive`/`send`
    rather than through every wrapper between the server and the handler (Litestar's WebSocket and exception
    handler, any middleware): fewer Python calls each way per frame, for ~100 frames a second per call. The
    WebSocket object still does the handshake and the close; this keeps its `connection_state` right for that."""

    def __init__(self, socket: WebSocket[Any, Any, Any], receive: Receive, send: Send) -> None:
        self._socket = socket
        self._receive = receive
        self._send = send

    async def receive_text(self) -> str:
        if self._socket.connection_state == "disconnect":
            raise WebSocketDisconnect(detail="the socket is closed")
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is None:
                return (message.get("bytes") or b"").decode(errors="replace")
            return text  # type: ignore[no-any-return]
        self._socket.connection_state = "disconnect"
        raise WebSocketDisconnect(detail="disconnect event", code=message.get("code", 1000))

    async def send_text(self, text: str) -> None:
        if self._socket.connection_state == "disconnect":
            raise WebSocketDisconnect(detail="the socket is closed")
        await self._send({"type": "websocket.send", "text": text})
