"""Google sign-in through the full OIDC flow against real providers on 127.0.0.1.

The happy path runs against oidc-provider-mock; refusals (wrong nonce, audience, issuer, expiry,
unverified email, foreign signing key, state mismatch) against a scripted provider that signs exactly
the claims a test asks for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.auth.oidc import FLOW_COOKIE_NAME
from app.db import migrate
from app.db.engine import Database
from app.db.models import User
from app.main import create_app
from tests.conftest import make_settings
from tests.doubles.oidc import ScriptedProvider, mock_google

CLIENT_ID = "receptionist-test-client"


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider(client_id=CLIENT_ID).start()
    yield provider
    provider.stop()


async def _app(data_dir: Path, discovery_url: str) -> tuple[Litestar, Database]:
    settings = make_settings(
        data_dir, GOOGLE_CLIENT_ID=CLIENT_ID, GOOGLE_CLIENT_SECRET="receptionist-test-secret",
        GOOGLE_DISCOVERY_URL=discovery_url, PUBLIC_BASE_URL="http://testserver.local",
    )
    await asyncio.to_thread(migrate.upgrade, settings)
    return create_app(settings), Database(settings)


@pytest.fixture
async def scripted_app(data_dir: Path, scripted: ScriptedProvider) -> AsyncIterator[tuple[AsyncTestClient, Database]]:
    scripted.overrides = {}
    scripted.sign_with_foreign_key = False
    app, db = await _app(data_dir, scripted.discovery_url)
    async with AsyncTestClient(app) as client:
        client.follow_redirects = False
        yield client, db
    await db.dispose()


async def _users(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count(User.id))) or 0)


async def _start(client: AsyncTestClient, next_path: str = "/") -> str:
    response = await client.get("/auth/google", params={"next": next_path})
    assert response.status_code == 302, response.text
    assert FLOW_COOKIE_NAME in response.cookies
    return response.headers["location"]


async def _through_provider(client: AsyncTestClient, authorize_url: str) -> httpx.Response:
    """The browser's trip to the scripted provider (which answers at once) and back to our callback."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorize_url)
    assert answer.status_code == 302
    callback = urlsplit(answer.headers["location"])
    assert callback.path == "/auth/callback"
    return await client.get(f"{callback.path}?{callback.query}")


async def test_full_flow_against_oidc_provider_mock(data_dir: Path) -> None:
    users = {"google-sub-42": {"email": "Pat.Owner@example.com", "email_verified": True, "name": "Pat Owner"}}
    with mock_google(users) as provider:
        app, db = await _app(data_dir, provider.discovery_url)
        async with AsyncTestClient(app) as client:
            client.follow_redirects = False
            authorize_url = await _start(client, "/calls")
            query = parse_qs(urlsplit(authorize_url).query)
            assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
            assert query["nonce"][0] and query["state"][0]
            assert "openid" in query["scope"][0].split()
            async with httpx.AsyncClient() as browser:
                # The provider's consent form: choose the predefined user.
                form = await browser.get(authorize_url)
                assert form.status_code == 200 and "google-sub-42" in form.text
                answer = await browser.post(authorize_url, data={"sub": "google-sub-42"})
            assert answer.status_code == 302, answer.text
            callback = urlsplit(answer.headers["location"])
            response = await client.get(f"{callback.path}?{callback.query}")
            assert response.status_code == 302, response.text
            assert response.headers["location"] == "/calls"
            assert COOKIE_NAME in response.cookies
            # Signed in, no business yet: the dashboard sends the owner to onboarding.
            follow = await client.get("/")
            assert follow.status_code in (302, 303) and follow.headers["location"] == "/onboarding"
            # The same person signing in again is the same user.
            again = await _start(client)
            async with httpx.AsyncClient() as browser:
                answer = await browser.post(again, data={"sub": "google-sub-42"})
            callback = urlsplit(answer.headers["location"])
            assert (await client.get(f"{callback.path}?{callback.query}")).status_code == 302
        async with db.session() as s:
            rows = list(await s.scalars(select(User)))
        assert [(u.email, u.google_sub, u.name) for u in rows] == [
            ("pat.owner@example.com", "google-sub-42", "Pat Owner")
        ]
        await db.dispose()


async def test_scripted_provider_success_proves_pkce_and_client_secret(
    scripted_app: tuple[AsyncTestClient, Database], scripted: ScriptedProvider
) -> None:
    client, db = scripted_app
    response = await _through_provider(client, await _start(client))
    assert response.status_code == 302 and response.headers["location"] == "/"
    assert scripted.token_errors == []
    # The verifier was sent to the token endpoint and matched the S256 challenge (the provider checks).
    assert scripted.token_requests[-1]["code_verifier"]
    signed = response.cookies[COOKIE_NAME]
    assert SessionSigner(("test-secret-key-0123456789abcdef",)).load(signed) is not None
    assert await _users(db) == 1


@pytest.mark.parametrize(
    ("overrides", "foreign_key", "reason"),
    [
        ({"nonce": "not-the-nonce-we-sent"}, False, "nonce"),
        ({"aud": "some-other-client"}, False, "aud"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, False, "expired"),
        ({"iss": "https://evil.example"}, False, "iss"),
        ({"email_verified": False}, False, "not verified"),
        ({"nonce": None}, False, "nonce"),
        ({}, True, "signature"),
    ],
    ids=["wrong-nonce", "wrong-audience", "expired", "wrong-issuer", "unverified-email", "no-nonce", "forged"],
)
async def test_bad_id_tokens_are_refused(
    scripted_app: tuple[AsyncTestClient, Database], scripted: ScriptedProvider,
    overrides: dict[str, object], foreign_key: bool, reason: str,
) -> None:
    client, db = scripted_app
    scripted.overrides = overrides
    scripted.sign_with_foreign_key = foreign_key
    response = await _through_provider(client, await _start(client))
    assert response.status_code == 400
    assert "Sign-in failed" in response.text and reason in response.text
    assert COOKIE_NAME not in response.cookies
    assert await _users(db) == 0
    assert (await client.get("/calls")).headers["location"].startswith("/auth/login")


async def test_state_mismatch_and_missing_flow_cookie_are_refused(
    scripted_app: tuple[AsyncTestClient, Database], scripted: ScriptedProvider
) -> None:
    client, db = scripted_app
    authorize_url = await _start(client)
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorize_url)
    callback = urlsplit(answer.headers["location"])
    code = parse_qs(callback.query)["code"][0]
    forged = await client.get("/auth/callback", params={"code": code, "state": "attacker-chosen"})
    assert forged.status_code == 400 and "did not match" in forged.text
    client.cookies.delete(FLOW_COOKIE_NAME)
    no_flow = await client.get(f"{callback.path}?{callback.query}")
    assert no_flow.status_code == 400 and "expired" in no_flow.text
    assert await _users(db) == 0


async def test_provider_error_and_next_path_cannot_leave_the_site(
    scripted_app: tuple[AsyncTestClient, Database],
) -> None:
    client, _db = scripted_app
    authorize_url = await _start(client, "//evil.example/steal")
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    denied = await client.get("/auth/callback", params={"error": "access_denied", "state": state})
    assert denied.status_code == 400 and "access_denied" in denied.text
    response = await _through_provider(client, await _start(client, "https://evil.example/"))
    assert response.headers["location"] == "/"


async def test_local_sign_in_is_gone_when_google_is_configured(
    scripted_app: tuple[AsyncTestClient, Database],
) -> None:
    client, db = scripted_app
    page = await client.get("/auth/login")
    assert "Continue with Google" in page.text and "Local sign-in" not in page.text
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    response = await client.post("/auth/login", data={"email": "x@example.com"}, headers={"x-csrftoken": token})
    assert response.status_code == 404
    assert await _users(db) == 0
