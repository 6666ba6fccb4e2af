"""The owner's session cookie: an itsdangerous-signed (not encrypted) user id and issue time.

`SESSION_SECRETS` is a list: the first key signs, every key verifies, so keys rotate without signing
everybody out. Nothing secret goes in the payload.
"""

from __future__ import annotations

import time
from uuid import UUID

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar.datastructures import Cookie

COOKIE_NAME = "receptionist_session"
LIFETIME_SECONDS = 14 * 24 * 3600
_SALT = "owner-session"


class SessionSigner:
    def __init__(self, secrets: tuple[str, ...]) -> None:
        # itsdangerous signs with the *last* key and verifies with all; the contract says the first signs.
        self._serializer = URLSafeTimedSerializer(list(reversed(secrets)), salt=_SALT)

    def sign(self, user_id: UUID) -> str:
        return self._serializer.dumps({"uid": str(user_id), "iat": int(time.time())})

    def load(self, value: str) -> UUID | None:
        """The user id, or None when the cookie is tampered, expired, or signed by a retired key."""
        try:
            payload = self._serializer.loads(value, max_age=LIFETIME_SECONDS)
            return UUID(payload["uid"])
        except (BadSignature, KeyError, TypeError, ValueError):
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
