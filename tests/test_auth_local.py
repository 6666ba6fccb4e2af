"""Local sign-in (no Google configured), sign-out, CSRF and the sign-in rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.auth.cookies import COOKIE_NAME, LIFETIME_SECONDS
from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner
from tests.support.server import RunningServer, base_env, run_server

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("local-auth")
    with run_server(base_env(data_dir)) as running:
        yield running


def test_local_sign_in_from_loopback_creates_the_owner(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False) as browser:
        first = browser.get("/calls")
        assert first.status_code == 302 and first.headers["location"] == "/auth/login?next=/calls"
        page = browser.get("/auth/login?next=/calls")
        assert "Local sign-in" in page.text and "GOOGLE_CLIENT_ID" in page.text
        token = _META.search(page.text).group(1)  # type: ignore[union-attr]
        bad = browser.post("/auth/login", data={"email": "not-an-email", "_csrf_token": token})
        assert bad.status_code == 400 and "Enter an email address" in bad.text
        response = browser.post("/auth/login", data={"email": "Owner@Example.com", "next": "/calls",
                                                      "_csrf_token": token})
        assert response.status_code == 303 and response.headers["location"] == "/calls"
        set_cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME + "="))
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie.replace("lax", "Lax")
        assert f"Max-Age={LIFETIME_SECONDS}" in set_cookie and "Secure" not in set_cookie
        # No business yet: onboarding.
        assert browser.get("/calls").headers["location"] == "/onboarding"
        assert browser.get("/onboarding").status_code == 200
        # Sign out clears the cookie; the dashboard asks for sign-in again.
        token = _META.search(browser.get("/onboarding").text).group(1)  # type: ignore[union-attr]
        out = browser.post("/auth/logout", data={"_csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/auth/login"
        assert browser.cookies.get(COOKIE_NAME) in (None, "")
        assert browser.get("/calls").headers["location"].startswith("/auth/login")


@pytest.mark.parametrize(
    "header",
    [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9;proto=https"),
        ("X-Real-IP", "203.0.113.9"),
        ("X-Forwarded-Host", "receptionist.example.com"),
    ],
    ids=lambda header: header[0],
)
def test_no_local_sign_in_through_a_reverse_proxy_on_this_machine(
    server: RunningServer, header: tuple[str, str]
) -> None:
    # The peer is loopback, as it is for nginx or caddy on the same host; the forwarding header says the
    # request came from somewhere else.
    with httpx.Client(base_url=server.url, follow_redirects=False, headers=[header]) as browser:
        page = browser.get("/auth/login")
        assert page.status_code == 200 and "Local sign-in" not in page.text and "not set up" in page.text
        token = _META.search(page.text).group(1)  # type: ignore[union-attr]
        response = browser.post("/auth/login", data={"email": "proxied@example.com", "_csrf_token": token})
        assert response.status_code == 403 and "only works from the computer running the service" in response.text
        assert not any(h.startswith(COOKIE_NAME + "=") for h in response.headers.get_list("set-cookie"))


async def test_local_sign_in_refused_for_non_loopback_even_with_forwarded_header(
    settings: Settings, db: Database
) -> None:
    # The test client's peer address is "testclient", i.e. not loopback.
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        page = await client.get("/auth/login")
        assert "Local sign-in" not in page.text and "not set up" in page.text
        token = await csrf_token(client)
        response = await client.post(
            "/auth/login", data={"email": "a@example.com"},
            headers={"x-csrftoken": token, "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        )
        assert response.status_code == 403
        assert COOKIE_NAME not in response.cookies


async def test_csrf_is_required_on_posts(settings: Settings, db: Database) -> None:
    user, _business = await create_owner(db)
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        sign_in(client, settings, user.id)
        for path in ("/auth/logout", "/settings", "/onboarding", "/appointments/x/cancel"):
            response = await client.post(path, data={"name": "Hijacked"})
            assert response.status_code == 403, path
        token = await csrf_token(client, "/settings")
        forged = await client.post("/auth/logout", headers={"x-csrftoken": token[:-4] + "0000"})
        assert forged.status_code == 403
        ok = await client.post("/auth/logout", headers={"x-csrftoken": token})
        assert ok.status_code == 303


async def test_sign_in_routes_are_rate_limited(settings: Settings, db: Database) -> None:
    async with AsyncTestClient(create_app(settings)) as client:
        statuses = [(await client.get("/auth/login")).status_code for _ in range(31)]
        assert statuses[:30] == [200] * 30 and statuses[30] == 429
        # Only the sign-in routes: the rest of the site is not throttled by it.
        assert (await client.get("/health")).status_code == 200


def _csrf(browser: httpx.Client, path: str = "/auth/login") -> str:
    return _META.search(browser.get(path).text).group(1)  # type: ignore[union-attr]


def _local_sign_in(browser: httpx.Client, email: str) -> str:
    response = browser.post("/auth/login", data={"email": email, "_csrf_token": _csrf(browser)})
    assert response.status_code == 303, response.text[:300]
    return browser.cookies[COOKIE_NAME]


def test_a_cookie_saved_before_sign_out_leads_to_sign_in_after_it(server: RunningServer) -> None:
    with (
        httpx.Client(base_url=server.url, follow_redirects=False) as laptop,
        httpx.Client(base_url=server.url, follow_redirects=False) as phone,
    ):
        saved = _local_sign_in(laptop, "revoked@example.com")
        assert laptop.get("/onboarding").status_code == 200
        out = laptop.post("/auth/logout", data={"_csrf_token": _csrf(laptop, "/onboarding")})
        assert out.status_code == 303
        # Someone who copied the cookie (or the browser that kept it) is sent to sign in.
        with httpx.Client(base_url=server.url, follow_redirects=False, cookies={COOKIE_NAME: saved}) as thief:
            for path in ("/onboarding", "/calls", "/settings"):
                response = thief.get(path)
                assert response.status_code == 302 and response.headers["location"].startswith("/auth/login"), path
            api = thief.post("/api/sessions", headers={"accept": "application/json"})
            assert api.status_code in (401, 403)

        # "Sign out everywhere" from one browser ends the other browser's sign-in too.
        _local_sign_in(laptop, "revoked@example.com")
        _local_sign_in(phone, "revoked@example.com")
        assert phone.get("/onboarding").status_code == 200
        everywhere = laptop.post("/auth/logout", data={"_csrf_token": _csrf(laptop, "/onboarding"), "everywhere": "1"})
        assert everywhere.status_code == 303
        assert phone.get("/onboarding").headers["location"].startswith("/auth/login")
        # A fresh sign-in works again at once.
        _local_sign_in(phone, "revoked@example.com")
        assert phone.get("/onboarding").status_code == 200


def test_signing_in_and_out_is_in_the_activity_log(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False) as browser:
        _local_sign_in(browser, "audited@example.com")
        token = _csrf(browser, "/onboarding")
        created = browser.post("/onboarding", data={
            "_csrf_token": token, "name": "Audit Cafe", "timezone": "UTC", "voice": "marin",
            "max_call_seconds": "600", "service_name": "Coffee", "service_minutes": "15", "service_price": "3",
            "hours_mon": "09:00-17:00",
        })
        assert created.status_code == 303, created.text[:500]
        page = browser.get("/audit")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert "Signed in" in page.text and "method: local" in page.text and "Created the business" in page.text
        assert "127.0.0.1" in page.text and "audited@example.com" in page.text
        browser.post("/auth/logout", data={"_csrf_token": _csrf(browser, "/audit")})
        _local_sign_in(browser, "audited@example.com")
        assert "Signed out" in browser.get("/audit").text
        # Nothing on the page edits or removes an entry, and no route does.
        assert "<form" not in browser.get("/audit").text.split("<main>", 1)[1].split("</main>")[0]
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert browser.request(method, "/audit", headers={"x-csrftoken": _csrf(browser, "/audit")}
                                   ).status_code in (403, 404, 405)


def test_no_local_sign_in_when_public_base_url_is_public(tmp_path: Path) -> None:
    """A tunnel that adds no forwarding headers (ssh -R, a TCP forwarder) looks like loopback to the
    service: with PUBLIC_BASE_URL on a public https origin, local sign-in is neither offered nor accepted."""
    env = base_env(tmp_path, PUBLIC_BASE_URL="https://receptionist.example.com")
    with run_server(env) as public, httpx.Client(base_url=public.url, follow_redirects=False) as browser:
        page = browser.get("/auth/login")
        assert page.status_code == 200
        assert "Local sign-in" not in page.text and 'id="local-sign-in"' not in page.text
        assert "PUBLIC_BASE_URL" in page.text and "public address" in page.text
        # The CSRF cookie is Secure on an https deployment; hand it back explicitly over this plain socket.
        csrf_cookie = next(h for h in page.headers.get_list("set-cookie") if h.startswith("csrftoken="))
        token = _META.search(page.text).group(1)  # type: ignore[union-attr]
        response = browser.post(
            "/auth/login", data={"email": "tunnel@example.com", "_csrf_token": token},
            headers={"cookie": csrf_cookie.split(";", 1)[0]},
        )
        assert response.status_code == 403 and "PUBLIC_BASE_URL" in response.text
        assert not any(h.startswith(COOKIE_NAME + "=") for h in response.headers.get_list("set-cookie"))
