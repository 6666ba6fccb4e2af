"""Connect tokens: a signed, short-lived, single-use ticket that ties a WebSocket to one Session.

The signature proves we issued it and when; single use is enforced in the database (`token_used_at`),
so a replayed token is refused even by another instance of the service (app.voice.lifecycle.claim_call).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from uuid import UUID

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

TOKEN_MAX_AGE_SECONDS = 120
_SALT = "call-connect"
_MOVE_SALT = "call-move"  # issue 11: a move token can never pass for a connect token, nor the reverse


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

    # -- issue 11: the ticket of a call moving to another instance (a CallMove row) ------------------------
    def sign_move(self, move_id: UUID, nonce: str) -> str:
        return URLSafeTimedSerializer(list(reversed(self.secrets)), salt=_MOVE_SALT).dumps(
            {"mv": str(move_id), "n": nonce})

    def read_move(self, token: str) -> tuple[UUID, str]:
        try:
            data = URLSafeTimedSerializer(list(reversed(self.secrets)), salt=_MOVE_SALT).loads(
                token, max_age=TOKEN_MAX_AGE_SECONDS)
            return UUID(data["mv"]), str(data["n"])
        except SignatureExpired:
            raise TokenRejected("expired") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise TokenRejected("malformed") from None

