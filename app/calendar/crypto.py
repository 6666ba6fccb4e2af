"""Refresh tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) under CALENDAR_TOKEN_KEY.

Without CALENDAR_TOKEN_KEY the keys are derived (HKDF-SHA256) from SESSION_SECRETS, so rotating the session
secrets the documented way (new key in front, old one kept for a while) keeps old tokens readable; a
database copy alone never yields a usable Google grant.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import Settings

_INFO = b"receptionist calendar refresh tokens v1"


class TokenUnreadable(Exception):
    """The stored token was encrypted under a key no longer configured."""


def _derive(secret: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(key)


class TokenCipher:
    def __init__(self, settings: Settings) -> None:
        keys = [k.encode() for k in settings.calendar_token_keys] or [_derive(s) for s in settings.session_secrets]
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken:
            raise TokenUnreadable("the calendar grant was encrypted under a key that is no longer configured") from None
