"""Security headers on every HTML response, no-store on private pages, no inline script anywhere, WebSockets
untouched by the headers middleware, and a Settings repr without secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from app.db.engine import Database
from app.main import create_app
from app.settings import ROOT, Settings, load_settings
from app.web.request_id import RequestIdMiddleware
from app.web.security_headers import SecurityHeaders
from tests.support.dashboard import sign_in
from tests.support.data import create_owner


def _csp(response: Any) -> dict[str, str]:
    parts = (p.strip() for p in response.headers["content-security-policy"].split(";"))
    return {part.split()[0]: part for part in parts}


async def test_html_pages_carry_the_headers_and_private_ones_are_not_stored(settings: Settings, db: Database) -> None:
    user, _business = await create_owner(db)
    async with AsyncTestClient(create_app(settings)) as client:
        client.follow_redirects = False
        login = await client.get("/auth/login")
        sign_in(client, settings, user.id)
        pages = [login] + [await client.get(p) for p in ("/", "/calls", "/settings", "/audit", "/test")]
        missing = await client.get("/no-such-page")
        for response in [*pages, missing]:
            assert response.headers["content-type"].startswith("text/html"), response.url
            csp = _csp(response)
            assert csp["script-src"] == "script-src 'self'" and "unsafe-inline" not in response.headers[
                "content-security-policy"]
            assert csp["frame-ancestors"] == "frame-ancestors 'none'"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        for response in pages[1:]:
            assert response.status_code == 200 and response.headers["cache-control"] == "no-store", response.url
        css = await client.get("/static/app.css")
        assert css.status_code == 200 and css.headers["x-content-type-options"] == "nosniff"
        assert "no-store" not in css.headers.get("cache-control", "") and "content-security-policy" not in css.headers
        health = await client.get("/health")
        assert health.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in health.headers
        csv = await client.get("/calls/export.csv")
        assert "no-store" in csv.headers["cache-control"]


def test_templates_and_static_have_no_inline_script_or_style() -> None:
    """What the CSP forbids must not be in the pages: inline <script>, on* handler attributes,
    javascript: URLs, inline <style> blocks or style attributes (htmx evaluation is off in base.html)."""
    offenders: list[str] = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for match in re.finditer(r"<script\b([^>]*)>", text, re.I):
            if "src=" not in match.group(1):
                offenders.append(f"{path.name}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text, re.I):
            offenders.append(f"{path.name}: on* handler attribute")
        if re.search(r"javascript:|hx-on|<style\b|\sstyle\s*=", text, re.I):
            offenders.append(f"{path.name}: javascript:, hx-on, <style> or style=")
    for path in sorted(Path(ROOT / "static").rglob("*.js")):
        forbidden = r"\beval\(|new Function\(|\.setAttribute\(\s*['\"]on"
        if path.name != "htmx.min.js" and re.search(forbidden, path.read_text()):
            offenders.append(f"{path.name}: eval or handler attributes")
    assert offenders == []
    base = (ROOT / "templates" / "base.html").read_text()
    assert '"allowEval": false' in base and '"includeIndicatorStyles": false' in base


async def test_websocket_scopes_pass_straight_through() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["send"] = send

    async def send(_message: Any) -> None:
        return None

    async def receive() -> Any:
        return {}

    await SecurityHeaders(app)({"type": "websocket", "path": "/twilio/media", "headers": []}, receive, send)
    assert seen["send"] is send  # not wrapped: no per-frame work on the audio path
    await SecurityHeaders(app)({"type": "http", "path": "/", "headers": []}, receive, send)
    assert seen["send"] is not send
    # The request-id middleware names the socket for its log lines but leaves its frames alone too.
    ws_scope: Any = {"type": "websocket", "path": "/twilio/media", "headers": []}
    await RequestIdMiddleware().handle(ws_scope, receive, send, app)
    assert seen["send"] is send


def test_settings_repr_hides_secrets(data_dir: Path) -> None:
    secrets = {
        "OPENAI_API_KEY": "sk-proj-abcdefghijklmnop", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "twilio-token-0123456789", "GOOGLE_CLIENT_ID": "client-id",
        "GOOGLE_CLIENT_SECRET": "google-secret-0123456789", "SESSION_SECRETS": "session-secret-0123456789abc",
        "POLAR_ACCESS_TOKEN": "polar_oat_0123456789", "POLAR_WEBHOOK_SECRET": "whsec_0123456789abcdef",
        "DATABASE_URL": "libsql://db.example.turso.io", "TURSO_AUTH_TOKEN": "turso-token-0123456789",
    }
    settings = load_settings({"DATA_DIR": str(data_dir), **secrets})
    for text in (repr(settings), str(settings), f"{settings!r}"):
        for name, value in secrets.items():
            if name not in {"TWILIO_ACCOUNT_SID", "GOOGLE_CLIENT_ID", "DATABASE_URL"}:
                assert value not in text, name
        assert "openai_api_key=<hidden>" in text and "client-id" in text  # non-secrets still shown
