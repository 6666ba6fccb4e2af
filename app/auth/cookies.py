"""The owner's session cookie: an itsdangerous-signed (not encrypted) user id, session epoch and issue time.

`SESSION_SECRETS` is a list: the first key signs, every key verifies, so keys rotate without signing
everybody out. Nothing secret goes in the payload. The epoch is the user's `session_epoch` when the cookie
was issued: a cookie is honoured only while it still equals the stored one, so sign-out (which bumps it)
revokes every copy of every cookie issued before, without a server-side session table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar.datastructures import Cookie

COOKIE_NAME = "receptionist_session"
LIFETIME_SECONDS = 14 * 24 * 3600
_SALT = "owner-session"


@dataclass(frozen=True, slots=True)
class SessionClaims:
    user_id: UUID
    epoch: int


class SessionSigner:
    def __init__(self, secrets: tuple[str, ...]) -> None:
        # itsdangerous signs with the *last* key and verifies with all; the contract says the first signs.
        self._serializer = URLSafeTimedSerializer(list(reversed(secrets)), salt=_SALT)

    def sign(self, user_id: UUID, epoch: int = 0) -> str:
        return self._serializer.dumps({"uid": str(user_id), "ep": int(epoch), "iat": int(time.time())})

    def load(self, value: str) -> SessionClaims | None:
        """The claims, or None when the cookie is tampered, expired, or signed by a retired key. Whether the
        epoch is still current is the caller's check (it needs the user row)."""
        try:
            payload = self._serializer.loads(value, max_age=LIFETIME_SECONDS)
            # Cookies from before epochs existed carry none: they belong to epoch 0, the column's default.
            return SessionClaims(user_id=UUID(payload["uid"]), epoch=int(payload.get("ep", 0)))
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            return None


def session_cookie(value: str, *, secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE_NAME,
        value=value,
        max_age=LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def cleared_session_cookie(*, secure: bool) -> Cookie:
    # Same attributes as the live cookie, or some browsers keep the old one alongside.
    return Cookie(key=COOKIE_NAME, value="", max_age=0, path="/", httponly=True, samesite="lax", secure=secure)
