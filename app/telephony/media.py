"""The opening of a Twilio media stream: `connected`, then `start` carrying the connect token.

Nothing reaches OpenAI until `start` has named a call whose signed, single-use token matches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from app.telephony.twiml import SESSION_PARAMETER
from app.voice import frames

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_SECONDS = 5.0
MAX_HANDSHAKE_FRAMES = 20


class HandshakeFailed(Exception):
    """`reason` is short and safe to put in a close frame."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StreamStart:
    stream_sid: str
    call_sid: str
    account_sid: str
    token: str
    encoding: str
    arrived: float  # time.monotonic() when `start` came in: the origin of media timestamps


def _start_frame(frame: frames.Start) -> StreamStart:
    start = frame.start
    token = start.customParameters.get(SESSION_PARAMETER)
    stream_sid = frame.streamSid or start.streamSid
    if not token:
        raise HandshakeFailed("no session token")
    if not stream_sid or not start.callSid:
        raise HandshakeFailed("start without streamSid or callSid")
    encoding = start.mediaFormat.encoding
    if encoding != "audio/x-mulaw":
        raise HandshakeFailed(f"unsupported encoding {encoding[:40]}")
    return StreamStart(
        stream_sid=stream_sid,
        call_sid=start.callSid,
        account_sid=start.accountSid,
        token=token,
        encoding=encoding,
        arrived=time.monotonic(),
    )


async def await_start(socket: WebSocket[Any, Any, Any], timeout: float = HANDSHAKE_TIMEOUT_SECONDS) -> StreamStart:
    """Read frames until `start` (after `connected`); anything else before it is logged and skipped."""
    seen_connected = False
    guard = frames.FrameGuard("twilio stream before start")
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_HANDSHAKE_FRAMES):
                try:
                    frame = frames.decode_twilio(await socket.receive_text())
                except frames.FrameRejected as exc:
                    guard.reject(exc.reason)
                    continue
                if isinstance(frame, frames.Connected):
                    seen_connected = True
                elif isinstance(frame, frames.Start):
                    if not seen_connected:
                        log.warning("twilio stream: start arrived without connected first; accepted")
                    return _start_frame(frame)
                else:
                    guard.reject(f"a {type(frame).__name__} frame before start")
    except TimeoutError:
        raise HandshakeFailed("no start in time") from None
    except (WebSocketDisconnect, RuntimeError):
        raise HandshakeFailed("closed before start") from None
    raise HandshakeFailed("no start")
