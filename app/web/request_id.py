"""A request id per HTTP request and WebSocket, echoed in `X-Request-ID` and stamped on every log line."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
access_log = logging.getLogger("app.access")
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware(ASGIMiddleware):
    scopes = ("http", "websocket")  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        incoming = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), ""
        )
        rid = incoming if _VALID.match(incoming) else uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        if scope["type"] == "websocket":
            # A call's socket carries 100 frames a second: wrapping its send would cost a Python call per
            # frame for a header that only the handshake could carry. Its log lines still get the id.
            try:
                await next_app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return

        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http" and scope["path"] != "/health":
                access_log.info(
                    "%s %s %s %.1fms", scope["method"], scope["path"], status, (time.perf_counter() - started) * 1000
                )
            request_id_var.reset(token)
