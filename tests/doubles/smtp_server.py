"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for the notification tests.

`stop()` closes the port (clients get "connection refused", as from a mail server that is down) and
`start()` opens it again on the same port; `reply` makes it answer DATA with a given code (e.g. 451).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.waiting import wait_until_sync


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        #: when set, DATA is answered with this line instead of accepting ("451 4.3.0 try again later")
        self.reply: str | None = None
        self.refused_data = 0
        self._controller: Controller | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply:
            with self._lock:
                self.refused_data += 1
            return self.reply
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpServer:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self.refused_data = 0
        self.reply = None

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        wait_until_sync(predicate, timeout, interval=0.05, what="the SMTP server to receive what was expected")


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
