"""The opening of a Twilio media stream: `connected`, then `start` carrying the connect token.

Nothing reaches OpenAI until `start` has named a call whose signed, single-use token matches it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from app.telephony.twiml import SESSION_PARAMETER

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


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _start_frame(message: dict[str, Any]) -> StreamStart:
    start = message.get("start")
    if not isinstance(start, dict):
        raise HandshakeFailed("start without a start object")
    parameters = start.get("customParameters") or {}
    token = parameters.get(SESSION_PARAMETER) if isinstance(parameters, dict) else None
    stream_sid = message.get("streamSid") or start.get("streamSid")
    call_sid = start.get("callSid")
    if not isinstance(token, str) or not token:
        raise HandshakeFailed("no session token")
    if not isinstance(stream_sid, str) or not isinstance(call_sid, str) or not call_sid:
        raise HandshakeFailed("start without streamSid or callSid")
    encoding = str((start.get("mediaFormat") or {}).get("encoding", "audio/x-mulaw"))
    if encoding != "audio/x-mulaw":
        raise HandshakeFailed(f"unsupported encoding {encoding}")
    return StreamStart(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=str(start.get("accountSid", "")),
        token=token,
        encoding=encoding,
        arrived=time.monotonic(),
    )


async def await_start(socket: WebSocket[Any, Any, Any], timeout: float = HANDSHAKE_TIMEOUT_SECONDS) -> StreamStart:
    """Read frames until `start` (after `connected`); anything else before it is logged and skipped."""
    seen_connected = False
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_HANDSHAKE_FRAMES):
                message = _parse(await socket.receive_text())
                event = message.get("event") if message else None
                if event == "connected":
                    seen_connected = True
                elif event == "start":
                    if not seen_connected:
                        log.warning("twilio stream: start arrived without connected first; accepted")
                    return _start_frame(message)  # type: ignore[arg-type]
                else:
                    what = f"{event!r} event" if event else "a bad frame"
                    log.warning("twilio stream: ignored %s before start", what)
    except TimeoutError:
        raise HandshakeFailed("no start in time") from None
    except (WebSocketDisconnect, RuntimeError):
        raise HandshakeFailed("closed before start") from None
    raise HandshakeFailed("no start")
