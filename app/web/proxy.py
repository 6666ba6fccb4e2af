"""The client's address and scheme behind a reverse proxy, from the headers of proxies the operator trusts.

Behind a proxy (nginx, caddy, a Heroku-style router) every connection comes from the proxy, so the sign-in
rate limit, which keys on `scope["client"]`, would lump all clients together, and log lines that name the
client (refused Twilio webhooks) would name the proxy. Anyone can send
X-Forwarded-For, so it is believed only from peers listed in FORWARDED_ALLOW_IPS (the uvicorn/gunicorn
setting of the same name), and then only up to the first hop that is not one of those proxies.

The forwarding headers stay on the request: `app.auth.routes.is_loopback` refuses local sign-in to any
request that carries them, whatever address this middleware settles on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = {"http": False, "https": True, "ws": False, "wss": True}  # scheme -> secure


def parse_address(raw: str) -> IPAddress | None:
    """An address as proxies write it (`203.0.113.9`, `203.0.113.9:4711`, `2001:db8::1`, `[2001:db8::1]:4711`),
    without the port; None for anything else (`unknown`, host names, garbage)."""
    text = raw.strip()
    if text.startswith("["):
        text, closed, rest = text[1:].partition("]")
        if not closed or (rest and not (rest.startswith(":") and _is_port(rest[1:]))):
            return None
    elif text.count(":") == 1:  # IPv4 with a port; an IPv6 address has at least two colons
        text, _, port = text.partition(":")
        if not _is_port(port):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; one spelling keeps one rate-limit key and
    # lets an IPv4 entry in FORWARDED_ALLOW_IPS match.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5


class ProxyHeadersMiddleware(ASGIMiddleware):
    """Rewrites `scope["client"]` and `scope["scheme"]` for requests that come from a trusted proxy."""

    scopes = ("http", "websocket")  # type: ignore[assignment]

    def __init__(self, networks: Iterable[str | IPNetwork] = (), *, any_peer: bool = False) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self.any_peer = any_peer

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxyHeadersMiddleware:
        return cls(settings.forwarded_allow_ips, any_peer=settings.forwarded_allow_any)

    def is_proxy(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def trusts_peer(self, client: Any) -> bool:
        # `*` also covers peers without an address (a proxy on a unix socket), as in uvicorn and gunicorn.
        if self.any_peer:
            return True
        if not client:
            return False
        address = parse_address(str(client[0]))
        return address is not None and self.is_proxy(address)

    def client_from(self, x_forwarded_for: str) -> str | None:
        """The right-most address that is not one of our proxies: each entry to its right was appended by a
        proxy we trust, so it is the first one a client could not have written itself. None (keep the peer)
        when that entry is malformed or the header is empty."""
        entries = [entry for entry in (part.strip() for part in x_forwarded_for.split(",")) if entry]
        addresses: list[IPAddress] = []
        for entry in reversed(entries):
            address = parse_address(entry)
            if address is None:
                return None
            if not self.is_proxy(address):
                return str(address)
            addresses.append(address)
        # Every hop is one of our own proxies (a client inside a trusted network): the chain's start.
        return str(addresses[-1]) if addresses else None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if (self.networks or self.any_peer) and self.trusts_peer(scope.get("client")):
            self._rewrite(scope)
        await next_app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        forwarded_for: list[str] = []
        proto = ""
        for name, value in scope.get("headers", ()):
            key = name.lower()
            if key == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif key == b"x-forwarded-proto":
                # The right-most value is the one our trusted peer wrote; proxies usually overwrite it anyway.
                proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        if forwarded_for and (host := self.client_from(",".join(forwarded_for))):
            scope["client"] = (host, 0)
        if proto in _SCHEMES:
            secure = _SCHEMES[proto]
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = "https" if secure else "http"
