"""The server's own ASGI `receive`/`send` for a WebSocket, kept on its scope for the call sockets' frames.

A call socket carries ~100 frames a second each way. Everything between the server and the handler (Litestar's
exception handler wraps `send` for every scope, the WebSocket object wraps both to track its state, and any
middleware that wraps them) would otherwise run once per frame. This layer sits outside all of it and only
stores the two callables (one dict write per connection, nothing per frame); `app.voice.sockets.FrameChannel`
uses them after the handshake. HTTP requests pass through untouched.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

RAW_ASGI = "receptionist.raw_asgi"


class RawFrames:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[RAW_ASGI] = (receive, send)  # type: ignore[literal-required]
        await self.app(scope, receive, send)
