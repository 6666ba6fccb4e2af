"""The owner session cookie: tampering, expiry and key rotation are all "please sign in again"."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import itsdangerous.timed
import pytest
from litestar.testing import AsyncTestClient

from app.auth.cookies import COOKIE_NAME, LIFETIME_SECONDS, SessionClaims, SessionSigner
from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings
from tests.support.data import create_owner

OLD_KEY = "old-secret-key-0123456789abcdef"
NEW_KEY = "new-secret-key-0123456789abcdef"


def _signed_at(signer: SessionSigner, user_id: object, when: float, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(itsdangerous.timed.time, "time", lambda: when)
        return signer.sign(user_id)  # type: ignore[arg-type]


def test_signer_round_trip_tamper_expiry_and_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    uid = uuid.uuid4()
    old = SessionSigner((OLD_KEY,))
    token = old.sign(uid)
    assert old.load(token) == SessionClaims(uid, 0)
    # Tampering with payload or signature.
    assert old.load(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    payload, rest = token.split(".", 1)
    assert old.load(payload[::-1] + "." + rest) is None
    assert old.load("garbage") is None
    # Expiry: a cookie older than 14 days is refused, one just inside is accepted.
    assert old.load(_signed_at(old, uid, time.time() - LIFETIME_SECONDS - 60, monkeypatch)) is None
    assert old.load(_signed_at(old, uid, time.time() - LIFETIME_SECONDS + 60, monkeypatch)) == SessionClaims(uid, 0)
    # Rotation: the first key signs, every listed key verifies, an unlisted key is refused.
    rotated = SessionSigner((NEW_KEY, OLD_KEY))
    assert rotated.load(token) == SessionClaims(uid, 0)
    fresh = rotated.sign(uid)
    assert SessionSigner((NEW_KEY,)).load(fresh) == SessionClaims(uid, 0)
    assert old.load(fresh) is None
    assert SessionSigner((NEW_KEY,)).load(token) is None


@pytest.fixture
async def owner_db(db: Database) -> AsyncIterator[tuple[Database, object]]:
    user, _business = await create_owner(db)
    yield db, user.id


async def _status(settings: Settings, cookie: str | None) -> tuple[int, str]:
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        if cookie is not None:
            client.cookies.set(COOKIE_NAME, cookie)
        response = await client.get("/calls")
        return response.status_code, response.headers.get("location", "")


async def test_app_accepts_good_cookie_and_refuses_bad_ones(
    data_dir: Path, owner_db: tuple[Database, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    _db, uid = owner_db
    settings = make_settings(data_dir, SESSION_SECRETS=f"{NEW_KEY},{OLD_KEY}")
    good = SessionSigner((NEW_KEY,)).sign(uid)  # type: ignore[arg-type]
    assert await _status(settings, good) == (200, "")
    assert await _status(settings, SessionSigner((OLD_KEY,)).sign(uid)) == (200, "")  # type: ignore[arg-type]
    login = "/auth/login?next=/calls"
    assert await _status(settings, None) == (302, login)
    assert await _status(settings, good[:-3] + "xyz") == (302, login)
    expired = _signed_at(SessionSigner((NEW_KEY,)), uid, time.time() - LIFETIME_SECONDS - 5, monkeypatch)
    assert await _status(settings, expired) == (302, login)
    # OLD_KEY retired: its cookies no longer work.
    retired = make_settings(data_dir, SESSION_SECRETS=NEW_KEY)
    assert await _status(retired, SessionSigner((OLD_KEY,)).sign(uid)) == (302, login)  # type: ignore[arg-type]
    assert await _status(retired, good) == (200, "")
    # A well-signed cookie for a user that no longer exists.
    import uuid

    assert await _status(settings, SessionSigner((NEW_KEY,)).sign(uuid.uuid4())) == (302, login)


async def test_htmx_request_without_session_gets_hx_redirect(db: Database, settings: Settings) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get("/calls", headers={"HX-Request": "true"})
        assert response.headers.get("HX-Redirect", "").startswith("/auth/login")


@pytest.mark.parametrize(("base", "secure"), [("http://localhost:8000", False), ("https://rx.example.com", True)])
async def test_cookie_attributes(data_dir: Path, db: Database, base: str, secure: bool) -> None:
    """Set by the real sign-in route: HttpOnly, SameSite=Lax, 14 days, Secure exactly when the site is https."""
    from app.auth.cookies import session_cookie

    header = session_cookie("v", secure=secure).to_header(header="")
    assert "HttpOnly" in header and "SameSite=lax" in header.replace("Lax", "lax")
    assert f"Max-Age={LIFETIME_SECONDS}" in header and "Path=/" in header
    assert ("Secure" in header) is secure
    assert make_settings(data_dir, PUBLIC_BASE_URL=base).secure_cookies is secure
