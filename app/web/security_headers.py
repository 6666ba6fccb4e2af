"""Security headers on every HTTP response, as plain ASGI around the whole application.

It wraps Litestar's own ASGI handler (outside routing and the exception handlers), so unrouted 404s and
error pages get the headers too. WebSocket scopes are handed straight through without wrapping `send`:
the call audio path pays nothing per frame.

- HTML: a Content-Security-Policy with no inline script (every script is a file under /static), and
  `frame-ancestors 'none'` (no framing, so no clickjacking of the dashboard's buttons).
- Everything: `X-Content-Type-Options: nosniff`, `Referrer-Policy`, and `X-Frame-Options` for old browsers.
- Private (anything not on `app.auth.access.PUBLIC_PATHS`): `Cache-Control: no-store` unless the handler
  set its own, so a page is never shown again from the cache after sign-out, or to the next user of a
  shared computer.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.access import is_public

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    # Same-origin WebSockets (the test call) are covered by 'self' in CSP 3 browsers.
    "connect-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
)
_HTML = ((b"content-security-policy", CSP.encode()),)
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                has_cache_control = has_csp = False
                html = False
                for name, value in headers:
                    lowered = name.lower()
                    if lowered == b"content-type":
                        html = value.startswith(b"text/html")
                    elif lowered == b"cache-control":
                        has_cache_control = True
                    elif lowered == b"content-security-policy":
                        has_csp = True
                headers.extend(_ALWAYS)
                if html and not has_csp:
                    headers.extend(_HTML)
                # Read at response time: routing has filled in the path template by then.
                if not has_cache_control and not is_public(scope.get("path_template", "")):
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        await self.app(scope, receive, send_with_headers)
