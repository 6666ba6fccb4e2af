"""Owner pages while calls stream: at 100,000 calls, do the live list, overview, calls list and billing pages
slow the audio?

One service (granian, one worker), the echo model (`bench/echo_model.py`) and the Twilio double, as in
`bench/bench_load.py`. Before the server starts, the owner's business gets `--history` past calls over the
past year (sessions, calls with transcripts, their events, messages; bulk-inserted in the app's storage
format) and three other businesses a tenth as many each. Then, on the same server, in one invocation:

  (a) calls only        `--calls` phone calls of two-way audio for `--seconds`: the floor
  (b) calls + pages     the same calls while `--pages` signed-in owner tabs each poll the live list every
                        second (`/sessions/live`, as static/pages.js does while a call is live) and load the
                        overview, the calls list (page 1, page 40, a status filter) and billing back to back,
                        each with the nav's unread count, as fast as the server answers

Reported: per-frame latency the service adds up and down (p50/p99) in (a) and (b) and their ratio, frames
lost, the pages' response times (p50/p95) during (b), and every statement the pages issue, timed in process
against the seeded database with its EXPLAIN QUERY PLAN (slowest first).

    .venv/bin/python bench/bench_pages_under_load.py --history 100000 --calls 20 --seconds 20 --pages 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Table, create_engine, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.auth.cookies import COOKIE_NAME, SessionSigner  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.db.models import Business, Call, CallEvent, Message, Session, User  # noqa: E402
from app.settings import load_settings  # noqa: E402
from bench.bench_call_latency import pct as _pct  # noqa: E402
from bench.bench_call_latency import process_tree  # noqa: E402
from bench.bench_dashboard import NAMES, STATUSES, _transcript  # noqa: E402
from bench.bench_load import Result, run_calls, seed, service_setup, start_process  # noqa: E402
from bench.owner_tabs import LABELS, LIVE_LIST, NAV_COUNT, NAVIGATION, OwnerTabs, PageTimes  # noqa: E402
from tests.doubles.twilio_double import TwilioDouble  # noqa: E402
from tests.support.data import SERVICES, WEEKDAY_HOURS  # noqa: E402
from tests.support.server import base_env, free_port, run_server  # noqa: E402

OTHER_BUSINESSES = 3  # each with a tenth of the measured business's calls: scoping has to use its index


def pct(values: list[float], q: float) -> float:
    return _pct(values, q) if values else float("nan")


def _uuid7(ms: int, rng: random.Random) -> bytes:
    """A UUIDv7 for the instant `ms`, as stored (16 bytes): the app's ids are time-ordered, so rows land where
    the app's would in the B-tree."""
    bits = rng.getrandbits(74)
    return ((ms << 80) | (0x7 << 76) | ((bits >> 62) << 64) | (0b10 << 62) | (bits & (2**62 - 1))).to_bytes(16)


def _history_rows(rng: random.Random, business_id: uuid.UUID, first: int, calls: int, total: int, tz: ZoneInfo,
                  now: datetime) -> tuple[list[dict[str, Any]], ...]:
    """Sessions, calls, their events and messages for `calls` finished calls over the past ~year: more on
    weekdays and in opening hours, newest first, one in 20 a browser test call, one in 30 a message taken."""
    sessions, rows, events, messages = [], [], [], []
    span = timedelta(days=365)
    for i in range(first, first + calls):
        # Newest first, evenly spread over the year, then pushed into the business's day (9-18 local).
        at = now - timedelta(minutes=10) - span * (i + rng.random()) / total
        local = at.astimezone(tz)
        if local.hour < 9 or local.hour >= 18:
            local = local.replace(hour=rng.randint(9, 17), minute=rng.randint(0, 59))
        started = min(local.astimezone(UTC), now - timedelta(minutes=10))
        phone = f"+1555{int(rng.random() * 10_000_000):07d}"
        ms = int(started.timestamp() * 1000)
        session_id, call_id = _uuid7(ms, rng), _uuid7(ms, rng)
        channel = "browser" if i % 20 == 0 else "twilio"
        status = rng.choice(STATUSES)
        duration = rng.uniform(20, 400)
        transcript = _transcript(rng, phone, i % 1000 == 500)
        sessions.append({"id": session_id, "business_id": business_id, "channel": channel,
                         "status": "completed" if status != "failed" else "failed", "caller_phone": phone,
                         "started_at": started, "ended_at": started + timedelta(seconds=duration),
                         "created_at": started, "updated_at": started})
        outcomes = ["message_taken"] if i % 30 == 0 else (["booked"] if i % 7 == 0 else [])
        rows.append({
            "id": call_id, "session_id": session_id, "business_id": business_id, "channel": channel,
            "caller_phone": phone if channel == "twilio" else None, "status": status, "started_at": started,
            "ended_at": started + timedelta(seconds=duration), "duration_seconds": duration,
            # Only the last 30 days count against the plan: the owner's allowance stands in for a paid plan's
            # monthly period (the trial's minutes are counted over all time and would be used up).
            "billable_seconds": 0.0 if channel == "browser" or now - started > timedelta(days=30) else duration,
            "end_reason": "goodbye", "transcript": transcript, "summary": "Caller asked about an appointment.",
            "usage": {"realtime": {"audio_input": 900, "audio_output": 1400}}, "latencies": [],
            "outcomes": outcomes, "needs_follow_up": bool(outcomes and outcomes[0] == "message_taken"),
            "input_tokens": rng.randint(500, 5000), "output_tokens": rng.randint(200, 3000),
            "cost_usd": round(rng.uniform(0.02, 0.9), 4), "engine": "realtime",
            "created_at": started, "updated_at": started + timedelta(seconds=duration),
        })
        # The events the engine flushes per turn: each line of the transcript, and a tool round trip.
        lines = transcript.split("\n")
        for n, line in enumerate(lines):
            who, _sep, text = line.partition(": ")
            events.append({"id": _uuid7(ms, rng), "call_id": call_id, "business_id": business_id,
                           "sequence": n + 1, "offset_ms": n * 2500, "kind": "caller" if who == "Caller" else "agent",
                           "text": text, "data": {}, "created_at": started, "updated_at": started})
        if outcomes:
            events.append({"id": _uuid7(ms, rng), "call_id": call_id, "business_id": business_id,
                           "sequence": len(lines) + 1, "offset_ms": len(lines) * 2500, "kind": "tool_call",
                           "text": "", "data": {"name": "take_message" if outcomes[0] == "message_taken"
                                                else "book_appointment", "arguments": {}},
                           "created_at": started, "updated_at": started})
        if outcomes == ["message_taken"]:
            handled = started + timedelta(hours=2) if i > 300 else None  # the newest ones still unread
            messages.append({"id": _uuid7(ms, rng), "business_id": business_id, "call_id": call_id,
                             "caller_name": rng.choice(NAMES), "caller_phone": phone, "body": "Please call me back.",
                             "is_read": handled is not None, "handled_at": handled, "urgency": "normal",
                             "created_at": started, "updated_at": handled or started})
    return sessions, rows, events, messages


def seed_history(database_file: Path, calls: int, *, others: int = OTHER_BUSINESSES) -> tuple[uuid.UUID, float]:
    """`calls` finished calls (sessions, events, transcripts, messages) for the business `seed` created, and
    `others` more businesses with a tenth as many each; bulk inserts through SQLAlchemy Core (values stored
    as the app stores them). Returns the measured business's owner id and the seconds it took."""
    started_at = time.perf_counter()
    engine = create_engine(f"sqlite:///{database_file}")
    with engine.begin() as conn:
        owner_id, business_id, zone = conn.execute(select(Business.owner_id, Business.id, Business.timezone)).one()
    rng = random.Random(14)
    now = datetime.now(UTC)
    businesses = [(business_id, calls)]
    with engine.begin() as conn:
        for k in range(others):
            user_id, other_id = uuid.uuid4(), uuid.uuid4()
            conn.execute(insert(User.__table__), [{"id": user_id, "email": f"other{k}@example.com",
                                                  "name": f"Other {k}", "created_at": now, "updated_at": now}])
            conn.execute(insert(Business.__table__), [{
                "id": other_id, "owner_id": user_id, "name": f"Other Salon {k}", "timezone": "Europe/London",
                "weekly_hours": WEEKDAY_HOURS, "services": SERVICES, "greeting": "Hi", "address": "",
                "instructions": "", "voice": "marin", "recording_enabled": False, "max_call_seconds": 600,
                "booking_version": 0, "plan": "free", "created_at": now, "updated_at": now}])
            businesses.append((other_id, calls // 10))
    engine.dispose()
    # The million rows go through sqlite3 itself (SQLAlchemy's per-row bind processing took ~10 minutes on the
    # shared machine), converted to what the app's column types store (see `_stored`); the app reads them back
    # in `profile_queries` and the pages.
    conn = sqlite3.connect(database_file)
    conn.execute("PRAGMA synchronous = OFF")
    try:
        batch = 5_000
        for target, count in businesses:
            tz = ZoneInfo(zone) if target == business_id else ZoneInfo("Europe/London")
            for first in range(0, count, batch):
                sessions, rows, events, messages = _history_rows(rng, target, first, min(batch, count - first),
                                                                 count, tz, now)
                with conn:
                    for table, values in ((Session, sessions), (Call, rows), (CallEvent, events), (Message, messages)):
                        _bulk_insert(conn, table.__table__, values)
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()
    return owner_id, time.perf_counter() - started_at


def _stored(value: Any) -> Any:
    """A value as the app's column types store it in SQLite: UUIDs as 16 bytes, datetimes as naive UTC text
    with microseconds, JSON as compact text, booleans as 0/1."""
    if value is None or type(value) in (str, int, float, bytes, bool):  # sqlite3 stores a bool as 0/1
        return value
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _bulk_insert(conn: sqlite3.Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(table.columns)
    defaults = []
    for column in columns:
        default = column.default
        if default is None or not (default.is_scalar or default.is_callable):
            defaults.append(None)
        else:
            defaults.append(default.arg if default.is_scalar else default.arg(None))  # type: ignore[attr-defined]
    names = ", ".join(f'"{c.name}"' for c in columns)
    conn.executemany(
        f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(_stored(row.get(c.name, d)) for c, d in zip(columns, defaults, strict=True)) for row in rows],
    )


@dataclass
class Phase:
    name: str
    result: Result
    pages: PageTimes | None


@dataclass
class Run:
    phases: list[Phase]
    seeded_seconds: float
    database_mb: float
    queries: list[tuple[str, float, str]]


async def profile_queries(env: dict[str, str], database_file: Path) -> list[tuple[str, float, str]]:
    """Every statement the pages issue, run through the app's own query code against the seeded database
    (no call live: the idle live list is the case an index has to carry), with its time and its
    EXPLAIN QUERY PLAN; the slowest first. A SCAN of a big table here is a page that grows with the history."""
    from sqlalchemy import event

    from app.billing.usage import BillingScope
    from app.dashboard.billing import _period_figures
    from app.dashboard.call_queries import parse_filter, to_query
    from app.dashboard.common import business_zone, local_day_bounds
    from app.dashboard.sessions import _live_sessions
    from app.db.engine import Database
    from app.db.owner_queries import OwnerScope
    settings = load_settings(env)
    db = Database(settings)
    seen: list[tuple[str, Any, float]] = []
    began: list[float] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        began.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters, (time.perf_counter() - began.pop()) * 1000))

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    event.listen(db.engine.sync_engine, "after_cursor_execute", after)
    try:
        async with db.session() as s:
            business = await s.scalar(select(Business).where(Business.name == "Load Salon"))
        assert business is not None
        scope = OwnerScope(db.session_maker, business.id)
        tz = business_zone(business.timezone)
        now = datetime.now(UTC)
        today = now.astimezone(tz).date()
        day = local_day_bounds(today, tz)
        month = local_day_bounds(today.replace(day=1), tz)[0], local_day_bounds(
            (today.replace(day=1) + timedelta(days=32)).replace(day=1), tz)[0]
        for _ in range(2):  # the second round is the one kept: statements compiled, pages cached
            seen.clear()
            await _live_sessions(scope)
            await scope.live_session_count()
            await scope.daily_call_counts([local_day_bounds(today - timedelta(days=n), tz) for n in range(13, -1, -1)],
                                          include_tests=False)
            await scope.overview_totals(day, month, include_tests=False)
            await scope.recent_calls(5)
            await scope.inbox.attention(*day)
            await scope.inbox.unread_count()
            for params in ({}, {"page": "40"}, {"status": "transferred"}):
                await scope.list_calls(to_query(parse_filter(params), tz), offset=0, limit=26)
            billing = BillingScope(db.session_maker, business.id, settings)
            usage = await billing.usage(await billing.period(now))
            await _period_figures(billing, business, usage, now)
    finally:
        await db.dispose()
    conn = sqlite3.connect(database_file)
    try:
        out = []
        for statement, parameters, ms in sorted(seen, key=lambda row: -row[2]):
            plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
            out.append((" ".join(statement.split())[:110], ms, plan))
        return out
    finally:
        conn.close()


def run(args: argparse.Namespace) -> Run:
    model_port = free_port()
    model = start_process(["bench/echo_model.py", str(model_port)], env={**os.environ})
    phases: list[Phase] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp, TwilioDouble() as twilio:
            env = base_env(Path(tmp), OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{model_port}/v1",
                           TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                           TWILIO_API_BASE_URL=twilio.api_base_url, LOG_LEVEL="WARNING")
            database_file = Path(tmp) / "receptionist.db"
            # The trial's 30 minutes would be long used up by a year of calls (callers would reach voicemail):
            # this owner's allowance covers the last 30 days' billable minutes (see `_history_rows`).
            env["FREE_TRIAL_MINUTES"] = "100000"  # the most it accepts; the last 30 days use ~30,000
            if args.reuse:
                # A database an earlier run kept (--keep): seeding 100,000 calls takes minutes on a loaded box.
                started_copy = time.perf_counter()
                shutil.copyfile(args.reuse, database_file)
                upgrade(load_settings(env))
                with sqlite3.connect(database_file) as kept:
                    owner_id = uuid.UUID(bytes=kept.execute(
                        "select owner_id from business where name = 'Load Salon'").fetchone()[0])
                seeded = time.perf_counter() - started_copy
            else:
                upgrade(load_settings(env))  # in process: the server's own start-up then finds it at head
                asyncio.run(seed(env))
                owner_id, seeded = seed_history(database_file, args.history)
                if args.keep:
                    shutil.copyfile(database_file, args.keep)
            size = database_file.stat().st_size / 1e6
            print(f"seeded {args.history:,} past calls (+{OTHER_BUSINESSES} businesses with "
                  f"{args.history // 10:,} each) in {seeded:.1f}s, {size:.0f} MB", flush=True)
            queries = asyncio.run(profile_queries(env, database_file))
            with run_server(env) as server:
                cookie = SessionSigner(tuple(env["SESSION_SECRETS"].split(","))).sign(owner_id)
                pids = process_tree(server.process.pid)

                async def phase(name: str, with_pages: bool, seconds: float) -> Phase:
                    async with httpx.AsyncClient() as plain:
                        await plain.get(f"http://127.0.0.1:{model_port}/reset")
                    setup = await service_setup(server.url, twilio, args.calls)
                    if not with_pages:
                        return Phase(name, await run_calls(name, pids, model_port, args.calls, seconds, 1, setup),
                                     None)
                    # The tabs are a browser's: their own process, so what they cost (HTTP, brotli) isn't on
                    # the loop that stamps the callers' frames.
                    with OwnerTabs(server.url, cookie, args.pages, args.think) as tabs:
                        result = await run_calls(name, pids, model_port, args.calls, seconds, 1, setup)
                    return Phase(name, result, tabs.times)

                # Warm-up, as a deployed server is: templates compiled, statements cached, one round of calls.
                with httpx.Client(base_url=server.url, cookies={COOKIE_NAME: cookie}, timeout=60) as warm:
                    for _ in range(2):
                        for _label, path in (*NAVIGATION, NAV_COUNT, LIVE_LIST[:2]):
                            warm.get(path).raise_for_status()
                if args.warmup:
                    asyncio.run(phase("warm-up", False, args.warmup))
                phases.append(asyncio.run(phase("(a) calls only", False, args.seconds)))
                phases.append(asyncio.run(phase("(b) calls + owner pages", True, args.seconds)))
                if "Traceback" in server.log():
                    print("WARNING: the service logged a traceback:\n" + server.log()[-3000:])
    finally:
        model.terminate()
        model.wait()
    return Run(phases, seeded, size, queries)


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}×" if a > 0 else "n/a"


def report(run_: Run, args: argparse.Namespace) -> str:
    phases = run_.phases
    lines = [
        f"{args.calls} calls × {args.seconds:.0f} s of two-way audio per phase; {args.history:,} past calls for the "
        f"owner's business (+{OTHER_BUSINESSES} other businesses with {args.history // 10:,} each), seeded in "
        f"{run_.seeded_seconds:.0f} s ({run_.database_mb:.0f} MB); phase (b): {args.pages} signed-in owner tab(s), "
        f"each polling the live list every 1 s and loading {', '.join(label for label, _p in NAVIGATION)} "
        f"(+ the nav's unread count) back to back" + (f", {args.think:g} s apart" if args.think else ""),
        "",
        "Frame latency the service adds (ms; up = caller media sent -> model got the append, "
        "down = model sent the delta -> caller got the media):",
        "",
        "| phase | up p50 | up p99 | down p50 | down p99 | frames | lost up / down | failed calls |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for p in phases:
        r = p.result
        lines.append(f"| {p.name} | {pct(r.up_ms, 50):.2f} | {pct(r.up_ms, 99):.2f} | {pct(r.down_ms, 50):.2f} "
                     f"| {pct(r.down_ms, 99):.2f} | {len(r.up_ms):,} | {r.lost_up} / {r.lost_down} "
                     f"| {sum(1 for c in r.calls if c.error)} |")
    if len(phases) == 2:
        a, b = phases[0].result, phases[1].result
        lines.append(f"| ratio (b) / (a) | {_ratio(pct(a.up_ms, 50), pct(b.up_ms, 50))} "
                     f"| {_ratio(pct(a.up_ms, 99), pct(b.up_ms, 99))} "
                     f"| {_ratio(pct(a.down_ms, 50), pct(b.down_ms, 50))} "
                     f"| {_ratio(pct(a.down_ms, 99), pct(b.down_ms, 99))} | | | |")
        pages = phases[1].pages
        assert pages is not None
        lines += ["", f"Page response times during (b), at {args.history:,} calls (ms, client side, one worker):", "",
                  "| page | requests | p50 | p95 |", "|---|---:|---:|---:|"]
        for label in LABELS:
            t = pages.times[label]
            lines.append(f"| {label} | {len(t)} | {pct(t, 50):.1f} | {pct(t, 95):.1f} |")
        lines.append(f"\nstatuses: {dict(sorted(pages.statuses.items()))}; most live calls on one live-list "
                     f"response: {pages.live_rows_seen}")
    lines += ["", f"The pages' statements at this size, slowest first (in process, no call live; "
                  f"{len(run_.queries)} statements, {sum(ms for _s, ms, _p in run_.queries):.1f} ms in all):", ""]
    lines += [f"- {ms:.2f} ms `{sql}` :: {plan}" for sql, ms, plan in run_.queries[:args.show_queries]]
    failures = {c.error for p in phases for c in p.result.calls if c.error}
    lines += [f"call error: {e}" for e in sorted(failures)[:5]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pages", type=int, default=3, help="owner tabs in phase (b)")
    parser.add_argument("--keep", type=Path, help="keep a copy of the seeded database here")
    parser.add_argument("--reuse", type=Path, help="start from a database --keep kept (same --history)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured calls first (0: none)")
    parser.add_argument("--show-queries", type=int, default=8, help="slowest statements to list")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between page loads (0: back to back)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    print(report(run(arguments), arguments))
