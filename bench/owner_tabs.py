"""Signed-in owner tabs in a process of their own, as owners' browsers are (bench/bench_pages_under_load.py).

Run as `python -m bench.owner_tabs URL COOKIE TABS THINK`: prints `ready` once the tabs are loading pages, runs
until its stdin closes, then prints the page times as one JSON line. `OwnerTabs` does that from the bench. In the
bench's own process the tabs' HTTP and brotli work shared the event loop that stamps the callers' frames, and
showed up as frame latency the service never added.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from app.auth.cookies import COOKIE_NAME

ROOT = Path(__file__).resolve().parents[1]

# What an owner's open tab asks for. The live list is polled every second while a call is live (static/pages.js);
# the navigation pages are loaded one after the other as fast as the server answers (an owner clicking
# through the dashboard, each click waiting for its page), each with the nav's unread count that the page's
# htmx fetches on load (static files are cached: long-lived, versioned).
LIVE_LIST = ("live list", "/sessions/live", 1.0)
NAVIGATION = (("overview", "/"), ("calls list", "/calls"), ("calls page 40", "/calls?page=40"),
              ("calls, a status", "/calls?status=transferred"), ("billing", "/billing"))
NAV_COUNT = ("unread count", "/messages/count")
LABELS = (LIVE_LIST[0], *(label for label, _path in NAVIGATION), NAV_COUNT[0])


@dataclass
class PageTimes:
    times: dict[str, list[float]] = field(default_factory=lambda: {label: [] for label in LABELS})
    statuses: dict[int, int] = field(default_factory=dict)
    live_rows_seen: int = 0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def owner_tab(url: str, cookie: str, stop: asyncio.Event, times: PageTimes, think: float) -> None:
    """One signed-in owner's tab until `stop`: the live list on its 1 s poll, and beside it the navigation
    pages one after another (each followed by the nav's unread count), `think` seconds apart."""
    async with httpx.AsyncClient(base_url=url, cookies={COOKIE_NAME: cookie}, timeout=30,
                                 headers={"Accept-Encoding": "br, gzip"}) as client:
        async def get(label: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
            started = time.perf_counter()
            response = await client.get(path, headers=headers)
            times.times[label].append((time.perf_counter() - started) * 1000)
            times.statuses[response.status_code] = times.statuses.get(response.status_code, 0) + 1
            return response

        async def live_list() -> None:
            label, path, interval = LIVE_LIST
            while not stop.is_set():
                started = time.perf_counter()
                response = await get(label, path, {"HX-Request": "true"})
                times.live_rows_seen = max(times.live_rows_seen, response.text.count('class="live-session"'))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (time.perf_counter() - started)))
                except TimeoutError:
                    pass

        async def navigate() -> None:
            while not stop.is_set():
                for label, path in NAVIGATION:
                    if stop.is_set():
                        return
                    await get(label, path)
                    await get(*NAV_COUNT, {"HX-Request": "true"})
                    if think:
                        try:
                            await asyncio.wait_for(stop.wait(), timeout=think)
                        except TimeoutError:
                            pass

        await asyncio.gather(live_list(), navigate())


class OwnerTabs:
    """`with OwnerTabs(url, cookie, tabs, think) as tabs:` the tabs load pages while the block runs; `tabs.times`
    after it."""

    def __init__(self, url: str, cookie: str, tabs: int, think: float) -> None:
        self._args = [url, cookie, str(tabs), str(think)]
        self._process: subprocess.Popen[str] | None = None
        self.times = PageTimes()

    def __enter__(self) -> OwnerTabs:
        self._process = subprocess.Popen([sys.executable, "-m", "bench.owner_tabs", *self._args], cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            self._process.kill()
            raise RuntimeError("the owner tabs did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        assert self._process is not None and self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        out = self._process.stdout.read()
        self._process.wait(timeout=60)
        if self._process.returncode != 0 or not out.strip():
            raise RuntimeError(f"the owner tabs failed (exit {self._process.returncode}); their error is above")
        found = json.loads(out.strip().splitlines()[-1])
        self.times = PageTimes(times=found["times"], statuses={int(k): v for k, v in found["statuses"].items()},
                               live_rows_seen=found["live_rows_seen"])


async def _main(url: str, cookie: str, tabs: int, think: float) -> PageTimes:
    stop, times = asyncio.Event(), PageTimes()
    loop = asyncio.get_running_loop()
    running = [asyncio.create_task(owner_tab(url, cookie, stop, times, think)) for _ in range(tabs)]
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    stop.set()
    await asyncio.gather(*running)
    return times


if __name__ == "__main__":
    url, cookie, tabs, think = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asdict(asyncio.run(_main(url, cookie, tabs, think)))), flush=True)
