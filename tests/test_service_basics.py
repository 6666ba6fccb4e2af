"""Health, request ids and error bodies, through the real app."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings
from tests.support.server import free_port


async def test_health_reports_database_ok(db: Database, settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "version": "0.1.0"}
    assert response.headers["x-request-id"] == "abc-123"


async def test_health_is_503_when_the_database_is_unreachable(data_dir: Path) -> None:
    # A Turso URL whose server isn't there: the check fails fast and says so, without a stack trace.
    settings = make_settings(data_dir, DATABASE_URL=f"sqlite+libsql://127.0.0.1:{free_port()}?secure=false",
                             TURSO_AUTH_TOKEN="x")
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_errors_are_json_for_api_routes_and_pages_for_html(db: Database, settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        api = await client.get("/api/does-not-exist")
        page = await client.get("/does-not-exist", headers={"accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"] == "Not Found" and api.json()["request_id"]
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "Not found" in page.text and "Traceback" not in page.text


async def test_owner_pages_need_sign_in(db: Database, settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/calls", follow_redirects=False)
        htmx = await client.get("/calls", headers={"HX-Request": "true"})
    assert response.status_code in (302, 303) and response.headers["location"].startswith("/auth/login")
    assert htmx.headers.get("hx-redirect", "").startswith("/auth/login")
