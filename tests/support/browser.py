"""What the Chromium tests share: launching Debian's chromium (optionally with a fake microphone fed from a
WAV), signing in locally, and database work from inside Playwright's sync API (waiting: tests.support.waiting)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Business, Call, User
from app.settings import load_settings
from tests.support.dashboard import add_event
from tests.support.data import create_owner
from tests.support.server import ROOT

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
]
FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
ARTIFACTS = ROOT / "test-artifacts"


def launch(pw: Any, mic: Path | None = None, *, consent: bool = True) -> Any:
    """Headless chromium; with `mic`, a fake microphone playing that WAV (in a loop), the permission prompt
    answered yes unless `consent` is False (then the page is refused the microphone)."""
    args = list(CHROMIUM_ARGS)
    if mic is not None or not consent:
        args += [a for a in FAKE_MEDIA_ARGS if consent or a != "--use-fake-ui-for-media-stream"]
    if mic is not None:
        args.append(f"--use-file-for-fake-audio-capture={mic}")
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


@contextmanager
def mic_page(mic: Path, origin: str) -> Iterator[Any]:
    """A page in a fresh chromium whose fake microphone plays `mic`, allowed to use it on `origin`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw, mic)
        try:
            context = browser.new_context()
            context.grant_permissions(["microphone"], origin=origin)
            yield context.new_page()
        finally:
            browser.close()


def write_wav(path: Path, pcm: bytes, rate: int = 24000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def sign_in_locally(page: Any, base_url: str, email: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}/auth/login?next={next_path}")
    page.fill("#email", email)
    page.click("#local-sign-in button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def run_db(coro: Coroutine[Any, Any, T]) -> T:
    """Run database work from a test that holds Playwright's sync API (which keeps an event loop running in
    this thread): in a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


async def ensure_owner(env: dict[str, str], email: str, **business_fields: Any) -> Business:
    """The business of the owner signed in as `email` on this server, created if it isn't there yet (servers
    are shared between test modules, each with its own owners)."""
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            business = await s.scalar(select(Business).join(User, User.id == Business.owner_id)
                                      .where(User.email == email))
        if business is None:
            _user, business = await create_owner(db, email=email, **business_fields)
        return business
    finally:
        await db.dispose()


async def say(env: dict[str, str], call_id: Any, sequence: int, text: str) -> None:
    """A turn of the receptionist flushed to a live call, as the call engine writes it."""
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            call = await s.get(Call, call_id)
        assert call is not None
        await add_event(db, call, sequence, "agent", text)
    finally:
        await db.dispose()
