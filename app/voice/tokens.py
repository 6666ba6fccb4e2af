"""Connect tokens: a signed, short-lived, single-use ticket that ties a WebSocket to one Session.

The signature proves we issued it and when; single use is enforced in the database (`token_used_at`),
so a replayed token is refused even by another instance of the service.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import Session

TOKEN_MAX_AGE_SECONDS = 120
_SALT = "call-connect"


class TokenRejected(Exception):
    """`reason` is one of: malformed, expired, unknown, used, mismatch."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    secrets: tuple[str, ...]

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(list(reversed(self.secrets)), salt=_SALT)

    def new_nonce(self) -> str:
        return secrets.token_urlsafe(18)

    def sign(self, session_id: UUID, nonce: str) -> str:
        return self._serializer().dumps({"sid": str(session_id), "n": nonce})

    def read(self, token: str) -> tuple[UUID, str]:
        try:
            data = self._serializer().loads(token, max_age=TOKEN_MAX_AGE_SECONDS)
            return UUID(data["sid"]), str(data["n"])
        except SignatureExpired:
            raise TokenRejected("expired") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise TokenRejected("malformed") from None


async def claim_session(
    db: Database,
    issuer: TokenIssuer,
    token: str,
    *,
    session_id: UUID | None = None,
    call_sid: str | None = None,
) -> Session:
    """Validate `token` and mark it used, atomically; raises TokenRejected. `session_id` / `call_sid`
    are what the connecting side claims to be, and must match the session the token was issued for."""
    sid, nonce = issuer.read(token)
    if session_id is not None and sid != session_id:
        raise TokenRejected("mismatch")
    async with db.session() as s, s.begin():
        row = await s.scalar(select(Session).where(Session.id == sid))
        if row is None or row.token_nonce != nonce:
            raise TokenRejected("unknown")
        if call_sid is not None and row.twilio_call_sid != call_sid:
            raise TokenRejected("mismatch")
        result = await s.execute(
            update(Session)
            .where(Session.id == sid, Session.token_used_at.is_(None))
            .values(token_used_at=datetime.now(UTC))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise TokenRejected("used")
    async with db.session() as s:
        claimed = await s.get(Session, sid)
        assert claimed is not None
        return claimed
