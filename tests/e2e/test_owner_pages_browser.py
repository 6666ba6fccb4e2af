"""A new owner's day one in headless Chromium, at desktop (1280×800) and phone (390×844) size, against the
real server: the landing page, onboarding with every kind of mistake people make, the settings round trip
(with the unsaved-changes warning), the calls list's filter surviving the back button, seeking a recording,
and the live list keeping an expanded row open while the call goes on. axe-core checks every page and the
test fails on any violation. Screenshots go to test-artifacts/owner-pages/<viewport>/."""

from __future__ import annotations

import io
import re
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Business, SessionStatus, User
from app.inbox.outbox import add_notification
from app.settings import load_settings
from tests.support.browser import ARTIFACTS as ALL_ARTIFACTS
from tests.support.browser import CHROMIUM, launch, run_db, say
from tests.support.dashboard import seed_call
from tests.support.server import ROOT, RunningServer

playwright_sync = pytest.importorskip("playwright.sync_api")

AXE = ROOT / "tests" / "e2e" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ALL_ARTIFACTS / "owner-pages"
TIMEOUT_MS = 10_000
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run scripts/setup test"),
]


@pytest.fixture(scope="module")
def server(plain_server: RunningServer) -> RunningServer:
    return plain_server


def _tone_wav(seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    left = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    right = (np.sin(2 * np.pi * 660 * t) * 8000).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.column_stack([left, right]).tobytes())
    return out.getvalue()


async def _seed(env: dict[str, str], email: str) -> dict[str, Any]:
    settings = load_settings(env)
    db = Database(settings)
    try:
        async with db.session() as s:
            business = await s.scalar(select(Business).join(User, User.id == Business.owner_id)
                                      .where(User.email == email))
        assert business is not None, "onboarding did not create the business"
        now = datetime.now(UTC)
        for i in range(4):
            await seed_call(db, business.id, started_at=now - timedelta(hours=i + 1), caller_phone=f"+1555200{i:04d}",
                            transcript=f"Caller: question number {i}\nAgent: happy to help")
        recording = settings.recordings_dir / str(business.id) / "balayage.wav"
        recording.parent.mkdir(parents=True, exist_ok=True)
        recording.write_bytes(_tone_wav(6.0))
        _s, wanted = await seed_call(
            db, business.id, started_at=now - timedelta(days=2), caller_phone="+15553334444",
            transcript="Caller: Do you do balayage on Saturdays?\nAgent: We do, from 10 to 2.",
            summary="Asked about balayage on Saturdays.", recording_path=str(recording),
            events=[("caller", "Do you do balayage on Saturdays?", {}), ("agent", "We do, from 10 to 2.", {})],
        )
        await seed_call(db, business.id, started_at=now - timedelta(minutes=30), caller_phone=None,
                        transcript="Caller: testing\nAgent: hello")
        live_session, live_call = await seed_call(
            db, business.id, status="in_progress", session_status=SessionStatus.ACTIVE.value,
            caller_phone="+15556667777", transcript="", events=[("caller", "Hello, is anyone there?", {})],
        )
        # A digest this server can't send (no SMTP here): it lists as not sent, with why, on /notifications.
        async with db.session() as s, s.begin():
            await add_notification(s, business_id=business.id, key=f"digest:{business.id}:e2e:email", event="digest",
                                   channel="email", recipient=email, details={"day": now.date().isoformat()})
        return {"wanted": wanted.id, "live_session": live_session.id, "live_call": live_call.id}
    finally:
        await db.dispose()


class Checks:
    """axe-core on every page (zero violations) and a screenshot of each, per viewport."""

    def __init__(self, page: Any, viewport: str) -> None:
        self.page = page
        self.viewport = viewport
        self.folder = ARTIFACTS / viewport
        self.folder.mkdir(parents=True, exist_ok=True)
        self.checked: list[str] = []
        self.source = AXE.read_text()

    def __call__(self, name: str) -> None:
        page = self.page
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(self.source)
        violations = page.evaluate(
            """async (tags) => {
                const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
                if (result.passes.length < 10) return [{ id: "axe-did-not-run", passes: result.passes.length }];
                return result.violations.map((v) => ({ id: v.id, help: v.help,
                    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary) }));
            }""",
            AXE_TAGS,
        )
        stem = self.folder / f"{len(self.checked) + 1:02d}-{name}"
        page.screenshot(path=f"{stem}.png")  # what the owner sees first
        page.screenshot(path=f"{stem}-full.png", full_page=True)
        assert violations == [], f"axe-core on {name} ({self.viewport}, {page.url}): {violations}"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[self.viewport]["width"] + 1, f"{name} scrolls sideways ({width}px)"
        self.checked.append(name)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_owner_pages_in_chromium(server: RunningServer, viewport: str) -> None:
    with playwright_sync.sync_playwright() as pw:
        browser = launch(pw)
        try:
            # bypass_csp: axe-core is injected by the test, not served by the app.
            context = browser.new_context(viewport=VIEWPORTS[viewport], timezone_id="America/Chicago",
                                          bypass_csp=True)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            try:
                _journey(page, server, viewport, Checks(page, viewport))
            except Exception:
                page.screenshot(path=str(ARTIFACTS / f"failure-{viewport}.png"), full_page=True)
                raise
        finally:
            browser.close()


def _journey(page: Any, server: RunningServer, viewport: str, check: Checks) -> None:
    expect = playwright_sync.expect
    email = f"{viewport}.owner@example.com"

    # A visitor sees what the product is, then signs in (local sign-in: no Google configured here).
    page.goto(server.url + "/")
    expect(page.locator("h1")).to_contain_text("Every call answered")
    check("landing")
    page.locator("main a.button", has_text="Sign in").first.click()
    expect(page).to_have_url(re.compile(r"/auth/login"))
    check("sign-in")
    page.fill("#email", email)
    page.click("text=Sign in locally")

    # Onboarding: the timezone defaults to the browser's own.
    expect(page).to_have_url(re.compile(r"/onboarding$"))
    expect(page.locator("#timezone")).to_have_value("America/Chicago")
    check("onboarding")
    # A voice can be heard before it is chosen: the sample is a static file the page plays.
    page.select_option("#voice", "cedar")
    with page.expect_response(lambda r: "/voices/cedar" in r.url) as sample:
        page.click("[data-voice-preview]")
    assert sample.value.status in (200, 206) and sample.value.headers["content-type"].startswith("audio/")

    # Every kind of mistake at once.
    page.fill("#name", "")
    page.fill("#timezone", "Atlantis")
    page.fill("#transfer_number", "not a number")
    page.fill("#hours_mon", "09:00-13:00, 12:00-17:00")
    page.fill("#hours_tue", "17:00-09:00")
    page.fill("#hours_wed", "nine to five")
    page.fill("#max_call_minutes", "90")
    page.fill("#service_1-name", "Balayage")
    page.fill("#service_1-minutes", "1h30")
    page.fill("#service_1-price", "$250")
    page.click("text=Add a service")
    expect(page.locator("#service_2-name")).to_be_focused()
    page.fill("#service_2-name", "Colour")
    page.fill("#service_2-minutes", "ages")
    page.fill("#service_2-price", "$80")
    page.click("text=Add a service")
    page.fill("#service_3-name", "Mistake")
    page.locator("[data-service-row]", has=page.locator("#service_3-name")).locator("[data-remove-row]").click()
    expect(page.locator("#service_3-name")).to_have_count(0)
    page.click("text=Create my receptionist")

    summary = page.locator("#form-result .error-summary")
    expect(summary).to_be_visible()
    expect(summary.locator("li")).to_have_count(8)
    for text in ("Enter your business", "No timezone called 'Atlantis'", "international format",
                 "09:00-13:00 and 12:00-17:00 overlap",
                 "17:00-09:00 closes before it opens", "couldn't read the time 'nine'",
                 "between 1 and 60 minutes", "Service 2: Couldn't read 'ages'"):
        expect(summary).to_contain_text(text)
    expect(page.locator("#name")).to_be_focused()  # focus moved to the first mistake
    expect(page.locator("#hours_tue")).to_have_value("17:00-09:00")  # everything typed is kept
    expect(page.locator("#service_2-minutes")).to_have_value("ages")
    expect(page.locator("#service_2-minutes")).to_have_attribute("aria-invalid", "true")
    check("onboarding-errors")

    # Fixed, in the forms people use; the explicit overnight is accepted.
    page.fill("#name", "Robin's Hair Studio")
    page.fill("#timezone", "chicago")  # just the city, as people type it
    page.fill("#transfer_number", "")  # optional; the business's own number is picked from the Twilio account
    page.fill("#hours_mon", "9-12, 1-5")
    page.fill("#hours_tue", "5pm-1am overnight")
    page.fill("#hours_wed", "9am-5pm")
    page.fill("#max_call_minutes", "15")
    page.fill("#service_2-minutes", "45 min")
    page.click("text=Create my receptionist")
    expect(page).to_have_url(server.url + "/")
    expect(page.locator("h1")).to_have_text("Robin's Hair Studio")

    # The settings round trip: what was typed comes back in its clean form.
    page.click("nav >> text=Settings")
    expect(page.locator('nav a[aria-current="page"]')).to_have_text("Settings")
    expect(page.locator("#timezone")).to_have_value("America/Chicago")
    expect(page.locator("#hours_mon")).to_have_value("09:00-12:00, 13:00-17:00")
    expect(page.locator("#hours_tue")).to_have_value("17:00-01:00 overnight")
    expect(page.locator("#service_1-minutes")).to_have_value("90")
    expect(page.locator("#service_1-price")).to_have_value("250")
    expect(page.locator("#max_call_minutes")).to_have_value("15")
    expect(page.locator("#webhook-hint")).to_contain_text("/twilio/voice")
    check("settings")
    page.fill("#greeting", "Robin's, how can I help?")
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.locator("nav >> text=\"Calls\"").click(no_wait_after=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"], "leaving with unsaved changes asks first"
    expect(page).to_have_url(re.compile(r"/settings$"))
    page.remove_listener("dialog", dismiss)
    page.click("text=Save settings")
    expect(page.locator("#form-result")).to_contain_text("Saved")
    expect(page.locator("#form-result")).to_be_in_viewport()  # the result is beside the Save button
    page.reload()
    expect(page.locator("#greeting")).to_have_value("Robin's, how can I help?")

    ids = run_db(_seed(server.env, email))
    page.goto(server.url + "/")
    expect(page.locator("svg.chart >> visible=true")).to_be_visible()
    expect(page.locator("#tests-note")).to_contain_text("1 test call this month not counted")
    check("overview")

    # A filtered calls list survives the back button, results and filter inputs alike.
    page.click("nav >> text=\"Calls\"")
    expect(page.locator("#calls-results tbody tr")).to_have_count(7)
    page.fill("#q", "balayage")
    expect(page.locator("#calls-results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=balayage"))
    check("calls-filtered")
    page.locator("#calls-results tbody tr a").first.click()
    expect(page).to_have_url(server.url + f"/calls/{ids['wanted']}")
    check("call-detail")

    # Seeking the recording: the browser asks for byte ranges and the player lands where it was sent.
    ranged = page.evaluate(
        """async (url) => { const r = await fetch(url, { headers: { Range: "bytes=100-199" } });
                            return [r.status, (await r.arrayBuffer()).byteLength, r.headers.get("content-range")]; }""",
        f"/calls/{ids['wanted']}/recording",
    )
    assert ranged[0] == 206 and ranged[1] == 100 and ranged[2].startswith("bytes 100-199/")
    landed = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const audio = document.querySelector("audio");
            const seek = () => { audio.addEventListener("seeked", () => resolve(audio.currentTime), { once: true });
                                 audio.currentTime = 4.0; };
            audio.addEventListener("error", () => reject(new Error("audio error " + audio.error.code)));
            if (audio.readyState >= 1) seek(); else { audio.addEventListener("loadedmetadata", seek, { once: true });
                                                       audio.load(); }
            setTimeout(() => reject(new Error("no seek")), 8000);
        })"""
    )
    assert abs(landed - 4.0) < 0.2
    expect(page.locator('a[href$="/recording?download=1"]')).to_be_visible()

    page.go_back()
    expect(page).to_have_url(re.compile(r"q=balayage"))
    expect(page.locator("#q")).to_have_value("balayage")
    expect(page.locator("#calls-results tbody tr")).to_have_count(1)

    # The live list: an expanded row stays open while the call goes on and new words arrive.
    page.click("nav >> text=Live")
    row = page.locator(f"#live-{ids['live_session']}")
    expect(row).to_be_visible()
    row.locator("summary").click()
    expect(row).to_have_attribute("open", "")
    run_db(say(server.env, ids["live_call"], 2, "Hi! Thanks for calling Robin's Hair Studio."))
    expect(row).to_contain_text("Thanks for calling Robin's Hair Studio", timeout=5_000)
    run_db(say(server.env, ids["live_call"], 3, "What can I book for you today?"))
    expect(row).to_contain_text("What can I book for you today?", timeout=5_000)
    expect(page.locator(f"#live-{ids['live_session']}")).to_have_attribute("open", "")
    check("live-expanded")
    page.goto(server.url + f"/sessions/{ids['live_session']}")
    expect(page.locator("#live-transcript")).to_contain_text("What can I book for you today?")
    check("session-live")

    # Every other page the owner can reach from the nav and the settings page.
    pages = (("appointments", "/appointments"), ("customers", "/customers"), ("new-customer", "/customers/new"),
             ("billing", "/billing"), ("test-call", "/test"), ("messages", "/messages"), ("sessions", "/sessions"),
             ("calendar", "/calendar"), ("calendar-setup", "/calendar/setup"), ("activity", "/audit"),
             ("number", "/settings/number"), ("notifications", "/settings/notifications"),
             ("calendar-settings", "/settings/calendar"), ("engine", "/settings/engine"), ("outbox", "/notifications"))
    for name, path in pages:
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")  # sections the page loads with htmx are part of it
        check(name)
    assert len(check.checked) == 10 + len(pages)
    page.goto(server.url + "/notifications")
    expect(page.locator("#outbox")).to_contain_text("Daily digest")
