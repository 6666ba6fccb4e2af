"""Behind a reverse proxy: the client address and scheme from trusted proxies' headers (app.web.proxy),
the sign-in rate limit per real client, and no local sign-in through a proxy even once the address is
rewritten."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from litestar.types import Message, Scope

from app.auth.cookies import COOKIE_NAME
from app.db.engine import Database
from app.main import create_app
from app.web.proxy import ProxyHeadersMiddleware, parse_address
from app.web.request_id import RequestIdMiddleware
from tests.conftest import make_settings
from tests.support.server import base_env, run_server

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _scope(
    peer: tuple[str, int] | None, headers: list[tuple[str, str]] = [], *, kind: str = "http"  # noqa: B006
) -> Scope:
    return {  # type: ignore[return-value]
        "type": kind,
        "path": "/",
        "raw_path": b"/",
        "scheme": "ws" if kind == "websocket" else "http",
        "client": peer,
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
    }


async def _through(middleware: ProxyHeadersMiddleware, scope: Scope) -> dict[str, Any]:
    """The scope as the next app sees it."""
    seen: dict[str, Any] = {}

    async def next_app(inner: Scope, _receive: Any, _send: Any) -> None:
        seen.update(inner)

    async def receive() -> Message:
        raise AssertionError("not used")

    async def send(_message: Message) -> None:
        raise AssertionError("not used")

    await middleware(next_app)(scope, receive, send)
    assert seen, "the middleware did not call the next app"
    return seen


def _trusting(*networks: str, any_peer: bool = False) -> ProxyHeadersMiddleware:
    return ProxyHeadersMiddleware(networks, any_peer=any_peer)


# -- the middleware on its own -------------------------------------------------------------------------------
async def test_trusted_peer_gives_the_right_most_address_that_is_not_a_proxy() -> None:
    middleware = _trusting("127.0.0.1", "10.0.0.0/8")
    # The client wrote the left entry itself (a lie); our edge proxy 10.1.2.3 appended 203.0.113.9.
    scope = _scope(("127.0.0.1", 51000), [("X-Forwarded-For", "198.51.100.7, 203.0.113.9, 10.1.2.3")])
    seen = await _through(middleware, scope)
    assert seen["client"] == ("203.0.113.9", 0)
    assert seen["scheme"] == "http"


@pytest.mark.parametrize("peer", [("192.0.2.1", 40000), ("testclient", 50000), None])
async def test_untrusted_peer_is_left_alone(peer: tuple[str, int] | None) -> None:
    headers = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")]
    seen = await _through(_trusting("127.0.0.1"), _scope(peer, headers))
    assert seen["client"] == peer and seen["scheme"] == "http"


async def test_nothing_trusted_by_default() -> None:
    seen = await _through(ProxyHeadersMiddleware(), _scope(("127.0.0.1", 1), [("X-Forwarded-For", "203.0.113.9")]))
    assert seen["client"] == ("127.0.0.1", 1)


@pytest.mark.parametrize("peer", [("192.0.2.50", 40000), ("testclient", 50000), None])
async def test_star_trusts_any_peer_but_not_the_addresses_a_client_adds(peer: tuple[str, int] | None) -> None:
    scope = _scope(peer, [("X-Forwarded-For", "198.51.100.7, 203.0.113.9")])
    seen = await _through(_trusting(any_peer=True), scope)
    # 203.0.113.9 is what the trusted peer appended; the entry before it came from the client.
    assert seen["client"] == ("203.0.113.9", 0)


async def test_star_with_networks_still_skips_those_proxy_hops() -> None:
    scope = _scope(("192.0.2.50", 1), [("X-Forwarded-For", "198.51.100.7, 203.0.113.9, 10.9.9.9")])
    seen = await _through(_trusting("10.0.0.0/8", any_peer=True), scope)
    assert seen["client"] == ("203.0.113.9", 0)


@pytest.mark.parametrize(
    ("networks", "peer", "forwarded_for", "client"),
    [
        (["10.0.0.0/8"], "10.20.30.40", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.0/8"], "11.0.0.1", "203.0.113.9", "11.0.0.1"),
        (["2001:db8::/32"], "2001:db8::5", "203.0.113.9, 2001:db8:1::7", "203.0.113.9"),
        (["2001:db8::/32"], "2001:db9::5", "203.0.113.9", "2001:db9::5"),
        # A dual-stack listener reports an IPv4 proxy as ::ffff:a.b.c.d.
        (["127.0.0.1"], "::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),
        # Every hop is one of ours (a client inside the trusted network): where the chain starts.
        (["10.0.0.0/8"], "10.0.0.1", "10.0.0.5, 10.0.0.6", "10.0.0.5"),
    ],
)
async def test_cidr_networks(networks: list[str], peer: str, forwarded_for: str, client: str) -> None:
    seen = await _through(_trusting(*networks), _scope((peer, 1), [("X-Forwarded-For", forwarded_for)]))
    assert seen["client"][0] == client


async def test_several_x_forwarded_for_lines_are_one_list_in_order() -> None:
    middleware = _trusting("127.0.0.1", "10.0.0.0/8")
    one = [("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", "203.0.113.9, 10.0.0.2")]
    assert (await _through(middleware, _scope(("127.0.0.1", 1), one)))["client"] == ("203.0.113.9", 0)
    other = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.7")]
    assert (await _through(middleware, _scope(("127.0.0.1", 1), other)))["client"] == ("198.51.100.7", 0)


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("203.0.113.9, not-an-address", None),  # the entry our proxy wrote is garbage: keep the peer
        ("unknown", None),
        ("", None),
        (" , ,", None),
        ("999.1.1.1", None),
        ("203.0.113.9:port", None),
        ("203.0.113.9:123456", None),
        ("[2001:db8::9", None),
        ("garbage, 203.0.113.9", "203.0.113.9"),  # left of the client: never looked at
        ("203.0.113.9:4711", "203.0.113.9"),
        ("[2001:db8::9]:4711", "2001:db8::9"),
        ("2001:db8::9", "2001:db8::9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
async def test_malformed_addresses_keep_the_peer(forwarded_for: str, client: str | None) -> None:
    peer = ("127.0.0.1", 1)
    seen = await _through(_trusting("127.0.0.1"), _scope(peer, [("X-Forwarded-For", forwarded_for)]))
    assert seen["client"] == ((client, 0) if client else peer)


@pytest.mark.parametrize(
    ("kind", "proto", "scheme"),
    [
        ("http", "https", "https"),
        ("http", "HTTP", "http"),
        ("http", "wss", "https"),
        ("http", "http, https", "https"),  # the value our trusted peer appended
        ("http", "gopher", "http"),
        ("http", "", "http"),
        ("websocket", "https", "wss"),
        ("websocket", "http", "ws"),
        ("websocket", "wss", "wss"),
        ("websocket", "gopher", "ws"),
    ],
)
async def test_x_forwarded_proto_sets_the_scheme(kind: str, proto: str, scheme: str) -> None:
    headers = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", proto)]
    seen = await _through(_trusting("127.0.0.1"), _scope(("127.0.0.1", 1), headers, kind=kind))
    assert seen["scheme"] == scheme and seen["client"] == ("203.0.113.9", 0)


async def test_x_forwarded_proto_alone_sets_only_the_scheme_and_only_from_a_trusted_peer() -> None:
    headers = [("X-Forwarded-Proto", "https")]
    seen = await _through(_trusting("127.0.0.1"), _scope(("127.0.0.1", 1), headers))
    assert seen["scheme"] == "https" and seen["client"] == ("127.0.0.1", 1)
    seen = await _through(_trusting("127.0.0.1"), _scope(("192.0.2.1", 1), headers, kind="websocket"))
    assert seen["scheme"] == "ws"


async def test_lifespan_passes_through() -> None:
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}  # type: ignore[typeddict-item]
    seen = await _through(_trusting(any_peer=True), scope)
    assert seen == {"type": "lifespan", "asgi": {"version": "3.0"}}


def test_parse_address() -> None:
    assert parse_address(" 203.0.113.9 ") == ipaddress.ip_address("203.0.113.9")
    assert parse_address("[::1]") == ipaddress.ip_address("::1")
    assert parse_address("example.com") is None and parse_address("example.com:80") is None


def test_registered_before_the_request_id_middleware(data_dir: Path) -> None:
    settings = make_settings(data_dir, FORWARDED_ALLOW_IPS="127.0.0.1, 10.0.0.0/8")
    app = create_app(settings)
    # Once sentry_sdk has been initialised in this process (tests/test_error_reporting.py), its Litestar
    # integration puts its own middleware first; the order that matters is among the app's own.
    own = [m for m in app.middleware if not getattr(m, "__module__", "").startswith("sentry_sdk")]
    first, second = own[:2]
    assert isinstance(first, ProxyHeadersMiddleware) and isinstance(second, RequestIdMiddleware)
    assert first.networks == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
    assert not first.any_peer


# -- in the app ---------------------------------------------------------------------------------------------
async def test_no_local_sign_in_when_the_rewritten_client_is_loopback(data_dir: Path, db: Database) -> None:
    # `*` trusts the test client's peer, so X-Forwarded-For: 127.0.0.1 makes the client loopback; the header
    # itself still says a proxy relayed the request.
    settings = make_settings(data_dir, FORWARDED_ALLOW_IPS="*")
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        client.headers["X-Forwarded-For"] = "127.0.0.1"
        page = await client.get("/auth/login")
        assert page.status_code == 200 and "Local sign-in" not in page.text
        token = _META.search(page.text).group(1)  # type: ignore[union-attr]
        response = await client.post("/auth/login", data={"email": "a@example.com", "_csrf_token": token})
        assert response.status_code == 403 and "only works from the computer running the service" in response.text
        assert COOKIE_NAME not in response.cookies


@pytest.mark.parametrize(("allow", "separate"), [("127.0.0.1", True), ("", False)], ids=["trusted", "untrusted"])
def test_sign_in_rate_limit_per_forwarded_client_only_behind_a_trusted_proxy(
    data_dir: Path, allow: str, separate: bool
) -> None:
    # The real server on loopback stands in for the app behind a proxy on the same machine.
    with run_server(base_env(data_dir, FORWARDED_ALLOW_IPS=allow)) as server, httpx.Client(
        base_url=server.url
    ) as http:

        def login_as(client: str) -> int:
            return http.get("/auth/login", headers={"X-Forwarded-For": client}).status_code

        assert [login_as("203.0.113.9") for _ in range(30)] == [200] * 30
        assert login_as("203.0.113.9") == 429
        assert login_as("198.51.100.7") == (200 if separate else 429)
        assert login_as("203.0.113.9") == 429
