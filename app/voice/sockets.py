"""Closing a caller's WebSocket: every socket the service ends gets exactly one close frame with a code and a
reason, whichever path ends it (a refused token, a `stop`, a hang-up, an error), and none is sent to a peer
that already closed (the ASGI server answers that close itself)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from litestar import WebSocket

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
