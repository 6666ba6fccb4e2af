"""HTTP caching: versioned static URLs cached for a year, public pages revalidated with ETags (304), owner
pages never stored.

Invariant: a URL is cached without revalidation only when it carries the content hash of the file it names
(`asset_url` writes `?v=<hash>`), so a deploy can never leave a browser with a stale script or stylesheet;
other public responses (on `app.auth.access.PUBLIC_PATHS`: the landing page, unversioned static files) are
`no-cache` and answered 304 when the browser's ETag still matches; owner pages are `no-store` (issue 8: never
shown again from the cache after sign-out or to the next user of a shared computer), so they carry no ETag.
A handler that sets its own Cache-Control keeps it (the signed-in dashboard at `/` says `no-store`).
Only GET/HEAD responses that arrive in one body message are hashed (public pages, static files); streams
(CSV export, server-sent events) and ranged audio pass through untouched. HTTP scope only: nothing here ever
touches a WebSocket frame.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.access import is_public
from app.settings import ROOT

STATIC_ROOT = ROOT / "static"
STATIC_PREFIX = "/static/"
YEAR = 365 * 24 * 3600


@cache
def _file_hash(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_version(file_path: str) -> str:
    """The content hash of a file under static/ (cached per modification time, so edits in dev show up)."""
    path = (STATIC_ROOT / file_path.lstrip("/")).resolve()
    if not path.is_relative_to(STATIC_ROOT.resolve()) or not path.is_file():
        return ""
    return _file_hash(path, path.stat().st_mtime_ns)


def asset_url(file_path: str) -> str:
    """`/static/<file>?v=<hash>`: the URL templates use for every static file."""
    version = static_version(file_path)
    return f"{STATIC_PREFIX}{file_path.lstrip('/')}" + (f"?v={version}" if version else "")


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag.removeprefix("W/") in wanted


class CachingMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] not in {"GET", "HEAD"}:
            await next_app(scope, receive, send)
            return
        path: str = scope["path"]
        request_headers = dict(scope["headers"])
        if_none_match = request_headers.get(b"if-none-match", b"").decode("latin-1")
        versioned = False
        if path.startswith(STATIC_PREFIX):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            wanted = static_version(path.removeprefix(STATIC_PREFIX))
            versioned = bool(wanted) and query.get("v", [""])[0] == wanted
        start: Message | None = None

        async def send_cached(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            if start["status"] != 200 or message.get("more_body", False):
                # Errors, partial content and streams go out as they are.
                first, start = start, None
                await send(first)
                await send(message)
                return
            headers = MutableScopeHeaders.from_message(start)
            if path.startswith(STATIC_PREFIX):
                headers["Cache-Control"] = f"public, max-age={YEAR}, immutable" if versioned else "public, no-cache"
            elif "cache-control" not in headers:
                # Read at response time: routing has filled in the path template by then.
                public = is_public(scope.get("path_template", ""))
                headers["Cache-Control"] = "private, no-cache" if public else "no-store"
            if "no-store" in headers.get("cache-control", ""):
                first, start = start, None
                await send(first)
                await send(message)
                return
            body: bytes = message.get("body", b"")
            etag = headers.get("etag") or f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
            if "content-encoding" in headers and not etag.startswith("W/"):
                etag = "W/" + etag  # the same file, compressed: equivalent, not byte-identical
            headers["ETag"] = etag
            # Pages and their htmx partials share URLs: a cached partial must never come back as the page
            # (the back button after a filtered list showed a bare results table without this).
            vary = "Accept-Encoding" if path.startswith(STATIC_PREFIX) else "Accept-Encoding, HX-Request, HX-Target"
            headers["Vary"] = ", ".join(v for v in (headers.get("vary"), vary) if v)
            first, start = start, None
            if if_none_match and _matches(if_none_match, etag):
                first["status"] = 304
                for name in ("content-length", "content-type", "content-encoding"):
                    if name in headers:
                        del headers[name]
                await send(first)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(first)
            await send(message)

        await next_app(scope, receive, send_cached)
