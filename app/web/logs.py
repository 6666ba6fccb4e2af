"""Logging set-up: one line per record, with the request id, on stderr; nothing personal or secret in it.

The app's own log calls name calls and sessions by id, never by caller number or words said. The
formatter is the safety net under that rule for everything that logs, third-party code and tracebacks
included: it masks E.164 phone numbers, the configured secrets wherever they appear, bearer tokens and
`token=`/`key=`-style query parameters. (SQL parameters never reach a log: the engine is built with
`hide_parameters=True`.)
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from app.web.request_id import RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# +15551234567, +44 20 7946 0958, +1-555-123-4567: a plus, then 7 to 15 digits with single spaces/dashes.
_PHONE = re.compile(r"(?<![\w+])\+\d(?:[ -]?\d){6,14}(?!\d)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_SECRET_PARAM = re.compile(
    r"(?i)\b(token|access_token|id_token|refresh_token|code|key|api_key|secret|password|signature|nonce)"
    r"=([^&\s\"']+)"
)


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        # Each pattern only runs when its cheap marker is in the line: most lines (the access log) have none.
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[secret]")
        if "+" in text:
            text = _PHONE.sub("[phone]", text)
        if " " in text and ("earer" in text or "asic" in text or "EARER" in text or "ASIC" in text):
            text = _BEARER.sub(lambda m: f"{m.group(1)} [secret]", text)
        if "=" in text:
            text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=[hidden]", text)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    root = logging.getLogger()
    existing = next((h for h in root.handlers if getattr(h, "_receptionist", False)), None)
    if existing is not None:
        # A second app in one process (tests): keep one handler, but mask this app's secrets too.
        formatter = existing.formatter
        if isinstance(formatter, RedactingFormatter):
            formatter.secrets = sorted(set(formatter.secrets) | {s for s in secrets if s}, key=len, reverse=True)
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(FORMAT, secrets))
    handler.addFilter(RequestIdFilter())
    handler._receptionist = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Client libraries log request bodies (a conversation, a number dialled) at INFO or DEBUG.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "websockets", "aiosqlite", "sqlalchemy.engine",
                  "openai", "twilio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
