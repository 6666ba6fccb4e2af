"""Owner pages while calls stream: do the live list and the overview, at 100,000 calls, slow the audio?

One service (granian, one worker), the echo model (`bench/echo_model.py`) and the Twilio double, as in
`bench/bench_load.py`. The business has `--history` past calls (bulk-inserted as the app stores them).
Two phases on the same server, each with `--calls` phone calls of two-way audio for `--seconds`:

  calls only     the floor: frame latency with nobody looking at the dashboard
  calls + pages  the same calls while `--pages` owner tabs poll what the real pages poll: the live list
                 every second (`/sessions/live`, as static/pages.js does while a call is live) and the
                 overview every 5 s (`/`, a tab left open and refreshed)

Reported: frame latency up/down (p50/p99) per phase and the difference, frames lost, and the pages' own
latency (p50/p95) while the calls run.

    .venv/bin/python bench/bench_pages_under_load.py [--history 100000] [--calls 20] [--seconds 20] [--pages 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.auth.cookies import COOKIE_NAME, SessionSigner  # noqa: E402
from app.db.models import Business, Call, Session  # noqa: E402
from bench.bench_call_latency import pct as _pct  # noqa: E402
from bench.bench_call_latency import process_tree  # noqa: E402
from bench.bench_dashboard import STATUSES, _transcript  # noqa: E402
from bench.bench_load import Result, run_calls, seed, service_setup, start_process  # noqa: E402
from tests.doubles.twilio_double import TwilioDouble  # noqa: E402
from tests.support.server import base_env, free_port, run_server  # noqa: E402

PAGES = (("live list", "/sessions/live", 1.0), ("overview", "/", 5.0))


def pct(values: list[float], q: float) -> float:
    return _pct(values, q) if values else float("nan")


def seed_history(database_file: Path, calls: int) -> tuple[uuid.UUID, uuid.UUID]:
    """`calls` finished calls for the (only) business, spread over the past; returns (owner, business)."""
    engine = create_engine(f"sqlite:///{database_file}")
    with engine.begin() as conn:
        owner_id, business_id = conn.execute(select(Business.owner_id, Business.id)).one()
    rng = random.Random(14)
    now = datetime.now(UTC)
    for start in range(0, calls, 10_000):
        sessions, rows = [], []
        for i in range(start, min(start + 10_000, calls)):
            started = now - timedelta(seconds=600 + i * 300 + rng.randint(0, 250))
            phone = f"+1555{rng.randint(0, 9_999_999):07d}"
            session_id = uuid.uuid4()
            channel = "browser" if i % 20 == 0 else "twilio"
            sessions.append({"id": session_id, "business_id": business_id, "channel": channel, "status": "completed",
                             "caller_phone": phone, "started_at": started, "ended_at": started + timedelta(minutes=2),
                             "created_at": started, "updated_at": started})
            duration = rng.uniform(20, 400)
            rows.append({
                "id": uuid.uuid4(), "session_id": session_id, "business_id": business_id, "channel": channel,
                "caller_phone": phone, "status": rng.choice(STATUSES), "started_at": started,
                "ended_at": started + timedelta(seconds=duration), "duration_seconds": duration,
                "end_reason": "goodbye", "transcript": _transcript(rng, phone, False),
                "summary": "Caller asked about an appointment.", "usage": {}, "latencies": [],
                "input_tokens": rng.randint(500, 5000), "output_tokens": rng.randint(200, 3000),
                "cost_usd": round(rng.uniform(0.02, 0.9), 4), "created_at": started, "updated_at": started,
            })
        with engine.begin() as conn:
            conn.execute(insert(Session.__table__), sessions)
            conn.execute(insert(Call.__table__), rows)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return owner_id, business_id


@dataclass
class PageTimes:
    times: dict[str, list[float]] = field(default_factory=lambda: {label: [] for label, _p, _e in PAGES})
    errors: int = 0
    live_rows_seen: int = 0


async def poll_pages(url: str, cookie: str, stop: asyncio.Event, times: PageTimes) -> None:
    """One owner tab: each page on its own schedule until `stop`."""
    async with httpx.AsyncClient(base_url=url, cookies={COOKIE_NAME: cookie}, timeout=30,
                                 headers={"Accept-Encoding": "br, gzip"}) as client:
        async def every(label: str, path: str, interval: float) -> None:
            headers = {"HX-Request": "true"} if path.startswith("/sessions/live") else {}
            while not stop.is_set():
                started = time.perf_counter()
                response = await client.get(path, headers=headers)
                times.times[label].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    times.errors += 1
                elif label == "live list":
                    times.live_rows_seen = max(times.live_rows_seen, response.text.count('class="live-session"'))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (time.perf_counter() - started)))
                except TimeoutError:
                    pass

        await asyncio.gather(*(every(label, path, interval) for label, path, interval in PAGES))


@dataclass
class Phase:
    name: str
    result: Result
    pages: PageTimes | None


def run(args: argparse.Namespace) -> list[Phase]:
    model_port = free_port()
    model = start_process(["bench/echo_model.py", str(model_port)], env={**os.environ})
    phases: list[Phase] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp, TwilioDouble() as twilio:
            env = base_env(Path(tmp), OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{model_port}/v1",
                           TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                           TWILIO_API_BASE_URL=twilio.api_base_url, LOG_LEVEL="WARNING")
            with run_server(env) as server:
                asyncio.run(seed(server.env))
                started = time.perf_counter()
                owner_id, _business_id = seed_history(Path(tmp) / "receptionist.db", args.history)
                print(f"seeded {args.history:,} past calls in {time.perf_counter() - started:.1f}s")
                cookie = SessionSigner(tuple(env["SESSION_SECRETS"].split(","))).sign(owner_id)
                pids = process_tree(server.process.pid)

                async def phase(with_pages: bool) -> Phase:
                    async with httpx.AsyncClient() as plain:
                        await plain.get(f"http://127.0.0.1:{model_port}/reset")
                    setup = await service_setup(server.url, twilio, args.calls)
                    if not with_pages:
                        result = await run_calls("calls only", pids, model_port, args.calls, args.seconds, 1, setup)
                        return Phase("calls only", result, None)
                    stop, times = asyncio.Event(), PageTimes()
                    tabs = [asyncio.create_task(poll_pages(server.url, cookie, stop, times)) for _ in range(args.pages)]
                    try:
                        result = await run_calls("calls + pages", pids, model_port, args.calls, args.seconds, 1, setup)
                    finally:
                        stop.set()
                        await asyncio.gather(*tabs)
                    return Phase("calls + pages", result, times)

                # Warm-up, as a deployed server is: templates compiled, statements cached.
                with httpx.Client(base_url=server.url, cookies={COOKIE_NAME: cookie}, timeout=60) as warm:
                    for _ in range(3):
                        for _label, path, _every in PAGES:
                            warm.get(path).raise_for_status()
                phases.append(asyncio.run(phase(False)))
                phases.append(asyncio.run(phase(True)))
                if "Traceback" in server.log():
                    print("WARNING: the service logged a traceback:\n" + server.log()[-3000:])
    finally:
        model.terminate()
        model.wait()
    return phases


def report(phases: list[Phase], args: argparse.Namespace) -> str:
    lines = [
        f"{args.calls} calls × {args.seconds:.0f} s of two-way audio, {args.history:,} past calls, "
        f"{args.pages} owner tab(s) polling the live list every 1 s and the overview every 5 s in phase 2",
        "",
        "| phase | up p50 / p99 ms | down p50 / p99 ms | lost up / down | failed calls |",
        "|---|---|---|---|---|",
    ]
    for p in phases:
        r = p.result
        lines.append(f"| {p.name} | {pct(r.up_ms, 50):.1f} / {pct(r.up_ms, 99):.1f} "
                     f"| {pct(r.down_ms, 50):.1f} / {pct(r.down_ms, 99):.1f} | {r.lost_up} / {r.lost_down} "
                     f"| {sum(1 for c in r.calls if c.error)} |")
    if len(phases) == 2:
        base, loaded = phases[0].result, phases[1].result
        up = pct(loaded.up_ms, 99) - pct(base.up_ms, 99)
        down = pct(loaded.down_ms, 99) - pct(base.down_ms, 99)
        lines += ["", f"pages' effect on frame latency at p99: up {up:+.1f} ms, down {down:+.1f} ms"]
        pages = phases[1].pages
        assert pages is not None
        lines += ["", "| page (while the calls run) | requests | p50 ms | p95 ms |", "|---|---|---|---|"]
        for label, _path, _every in PAGES:
            t = pages.times[label]
            lines.append(f"| {label} | {len(t)} | {pct(t, 50):.1f} | {pct(t, 95):.1f} |")
        lines.append(f"\npage errors: {pages.errors}; most live calls on one live-list response: "
                     f"{pages.live_rows_seen}")
    failures = {c.error for p in phases for c in p.result.calls if c.error}
    lines += [f"call error: {e}" for e in sorted(failures)[:5]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pages", type=int, default=5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    print(report(run(arguments), arguments))
