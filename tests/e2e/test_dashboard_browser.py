"""The owner's journey in headless Chromium against the real server: Google sign-in through an OIDC
provider, onboarding, finding a call by its transcript, opening it, and watching a live session update.
Screenshots (desktop and phone width) are kept under test-artifacts/dashboard/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Business, SessionStatus
from app.db.services import BusinessScope
from app.inbox.outcomes import settle_call
from app.settings import load_settings
from tests.doubles.oidc import mock_google
from tests.support.browser import ARTIFACTS as ALL_ARTIFACTS
from tests.support.browser import CHROMIUM, launch, run_db, say
from tests.support.dashboard import seed_call
from tests.support.server import RunningServer, base_env, run_server

playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ALL_ARTIFACTS / "dashboard"
SUBJECT = "google-owner-e2e"
EMAIL = "robin.owner@example.com"
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    users = {SUBJECT: {"email": EMAIL, "email_verified": True, "name": "Robin Owner"}}
    with mock_google(users) as provider:
        env = base_env(
            tmp_path_factory.mktemp("dashboard-e2e"), GOOGLE_CLIENT_ID="receptionist-e2e",
            GOOGLE_CLIENT_SECRET="e2e-secret", GOOGLE_DISCOVERY_URL=provider.discovery_url,
        )
        with run_server(env) as running:
            yield running


async def _seed(env: dict[str, str]) -> dict[str, Any]:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            business = await s.scalar(select(Business))
        assert business is not None, "onboarding did not create the business"
        now = datetime.now(UTC)
        for i in range(5):
            await seed_call(db, business.id, started_at=now - timedelta(hours=i + 1), caller_phone=f"+1555200{i:04d}",
                            transcript=f"Caller: question number {i}\nAgent: happy to help")
        _s, wanted = await seed_call(
            db, business.id, started_at=now - timedelta(days=2), caller_phone="+15553334444",
            transcript="Caller: Do you do balayage on Saturdays?\nAgent: We do, from 10 to 2.",
            summary="Asked about balayage on Saturdays.",
            events=[("caller", "Do you do balayage on Saturdays?", {}),
                    ("tool_call", "", {"name": "get_business_info", "arguments": {}}),
                    ("tool_result", "", {"name": "get_business_info", "result": {"hours": "Sat 10-14"}}),
                    ("agent", "We do, from 10 to 2.", {})],
            latencies=[{"turn": 1, "response_ms": 620, "supervisor_ms": 1400}],
        )
        live_session, live_call = await seed_call(
            db, business.id, status="in_progress", session_status=SessionStatus.ACTIVE.value,
            caller_phone="+15556667777", transcript="", events=[("caller", "Hello, is anyone there?", {})],
        )
        # The inbox (issue 9): two messages left on calls (one urgent), and a call that was cut off.
        scope = BusinessScope(db.session_maker, business.id)
        for name, phone, body, urgency in (("Ann Lee", "+15553330001", "Please call me about a refund.", "normal"),
                                           ("Bo Chan", "+15553330002", "My appointment is today, running late!",
                                            "urgent")):
            _s, with_message = await seed_call(db, business.id, started_at=now - timedelta(minutes=30),
                                               caller_phone=phone)
            await scope.take_message(body, caller_name=name, caller_phone=phone, call_id=with_message.id,
                                     urgency=urgency)
            async with db.session() as s, s.begin():
                await settle_call(s, with_message.id)
        _s, cut_off = await seed_call(db, business.id, started_at=now - timedelta(minutes=10), status="failed",
                                      end_reason="interrupted", caller_phone="+15553330003")
        async with db.session() as s, s.begin():
            await settle_call(s, cut_off.id)
        return {"wanted": wanted.id, "live_session": live_session.id, "live_call": live_call.id,
                "cut_off": cut_off.id}
    finally:
        await db.dispose()


def test_owner_journey_in_chromium(server: RunningServer) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as pw:
        browser = launch(pw)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            expect = playwright_sync.expect
            # The pages run under a CSP with no inline script or style: anything it blocks is a bug.
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

            try:
                _journey(page, context, browser, server, expect)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
                raise
            assert blocked == []
        finally:
            browser.close()


def _journey(page: Any, context: Any, browser: Any, server: RunningServer, expect: Any) -> None:
    if True:
        if True:
            # Sign in with "Google" (the OIDC provider on 127.0.0.1).
            page.goto(server.url + "/")  # a visitor's landing page, then sign-in
            page.locator("main a.button", has_text="Sign in").first.click()
            expect(page).to_have_url(re.compile(r"/auth/login"))
            page.screenshot(path=str(ARTIFACTS / "01-sign-in.png"))
            page.click("#google-sign-in")
            page.click(f'button[name="sub"][value="{SUBJECT}"]')

            # First sign-in: onboarding.
            expect(page).to_have_url(re.compile(r"/onboarding$"))
            page.fill("#name", "Robin's Hair Studio")
            page.fill("#timezone", "America/Chicago")
            page.fill("#transfer_number", "not a number")
            page.locator('input[name="service_name"]').first.fill("Balayage")
            page.locator('input[name="service_minutes"]').first.fill("120")
            page.locator('input[name="service_price"]').first.fill("150")
            page.fill("#hours_sat", "10:00-14:00")
            page.click("text=Create my receptionist")
            # htmx swaps in the form with the error beside the field; typed values are kept.
            expect(page.locator("#transfer_number-error")).to_contain_text("international format")
            expect(page.locator("#name")).to_have_value("Robin's Hair Studio")
            expect(page.locator("#transfer_number")).to_have_attribute("aria-invalid", "true")
            page.screenshot(path=str(ARTIFACTS / "02-onboarding-error.png"), full_page=True)
            page.fill("#transfer_number", "+1 (312) 555-0100")
            page.click("text=Create my receptionist")
            expect(page).to_have_url(server.url + "/")
            expect(page.locator("h1")).to_have_text("Robin's Hair Studio")

            ids = run_db(_seed(server.env))
            page.reload()
            expect(page.locator("svg.chart >> visible=true")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "03-overview.png"), full_page=True)

            # Find the call by a word from its transcript (htmx live search) and open it.
            page.click("nav >> text=\"Calls\"")
            expect(page.locator("#calls-results tbody tr")).to_have_count(10)
            page.fill("#q", "balayage")
            expect(page.locator("#calls-results tbody tr")).to_have_count(1)
            expect(page).to_have_url(re.compile(r"q=balayage"))
            page.screenshot(path=str(ARTIFACTS / "04-calls-search.png"), full_page=True)
            page.locator("#calls-results tbody tr a").first.click()
            expect(page).to_have_url(server.url + f"/calls/{ids['wanted']}")
            expect(page.locator(".conversation")).to_contain_text("Do you do balayage on Saturdays?")
            expect(page.locator("details.tool").first).to_contain_text("get_business_info")
            page.locator("details.tool summary").first.click()
            expect(page.locator("details.tool pre").first).to_be_visible()
            expect(page.locator("body")).to_contain_text("620 ms")
            page.screenshot(path=str(ARTIFACTS / "05-call-detail.png"), full_page=True)

            # The live session view picks up a turn flushed while the page is open.
            page.goto(server.url + f"/sessions/{ids['live_session']}")
            expect(page.locator("#live-transcript")).to_contain_text("Hello, is anyone there?")
            run_db(say(server.env, ids["live_call"], 2, "Hi! Thanks for calling Robin's Hair Studio."))
            expect(page.locator("#live-transcript")).to_contain_text("Thanks for calling Robin's Hair Studio",
                                                                     timeout=5_000)
            page.screenshot(path=str(ARTIFACTS / "06-live-session.png"), full_page=True)
            page.goto(server.url + "/sessions")
            run_db(say(server.env, ids["live_call"], 3, "What can I book for you today?"))
            expect(page.locator("#live-sessions")).to_contain_text("What can I book for you today?", timeout=5_000)
            page.screenshot(path=str(ARTIFACTS / "07-sessions.png"), full_page=True)

            # The inbox: what needs attention first, then the messages page, marking one handled.
            page.goto(server.url + "/")
            attention = page.locator("#attention")
            expect(attention).to_contain_text("2 unread messages")
            expect(attention).to_contain_text("My appointment is today, running late!")
            expect(attention).to_contain_text("Calls that failed or were cut off today")
            expect(attention).to_contain_text("cut off (the service stopped)")
            expect(page.locator("#nav-unread")).to_have_text("2")
            page.screenshot(path=str(ARTIFACTS / "08-attention.png"), full_page=True)
            page.click("#nav-messages")
            expect(page).to_have_url(server.url + "/messages")
            rows = page.locator("#messages-results article.message")
            expect(rows).to_have_count(2)
            expect(rows.first).to_contain_text("Bo Chan")  # urgent first
            expect(rows.first.locator("a.tel")).to_have_attribute("href", "tel:+15553330002")
            ann = page.locator("article.message", has_text="Ann Lee")
            ann.locator("button", has_text="Mark handled").click()
            expect(ann).to_contain_text("Handled by Robin Owner")
            expect(page.locator("#nav-unread")).to_have_text("1")  # the nav count follows without a reload
            page.screenshot(path=str(ARTIFACTS / "09-messages.png"), full_page=True)
            page.select_option("#state", "handled")
            expect(page).to_have_url(re.compile(r"state=handled"))
            expect(page.locator("#messages-results article.message")).to_have_count(1)
            expect(page.locator("#messages-results")).to_contain_text("Ann Lee")
            page.goto(server.url + "/")
            expect(page.locator("#attention")).to_contain_text("1 unread message")

            # Phone width: the same pages stay readable.
            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            mobile = phone.new_page()
            for name, path in (("10-phone-overview", "/"), ("11-phone-call", f"/calls/{ids['wanted']}"),
                               ("12-phone-settings", "/settings"), ("13-phone-messages", "/messages")):
                mobile.goto(server.url + path)
                width = mobile.evaluate("document.documentElement.scrollWidth")
                assert width <= 400, f"{path} scrolls sideways at phone width ({width}px)"
                mobile.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            phone.close()
