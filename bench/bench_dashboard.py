"""Dashboard benchmark: 100,000 calls in the embedded SQLite database, the real server, real HTTP.

Seeds one business with N calls (bulk executemany through SQLAlchemy Core, so values are stored exactly as
the app stores them), starts the service with granian, signs in with a real session cookie, and reports
p50/p95 latency of the calls page and transcript searches over repeated requests.

    .venv/bin/python bench/bench_dashboard.py [--calls 100000] [--requests 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.auth.cookies import COOKIE_NAME, SessionSigner  # noqa: E402
from app.db.models import Business, Call, Session, User  # noqa: E402
from tests.support.data import SERVICES, WEEKDAY_HOURS  # noqa: E402
from tests.support.server import base_env, migrate, run_server  # noqa: E402

RARE_WORD = "balayage"  # planted in 0.1% of transcripts
CALLER_LINES = [
    "Hi, I'd like to book a haircut for tomorrow afternoon.",
    "Do you have anything on Saturday morning?",
    "How much is a colour treatment?",
    "Can I move my appointment to next week?",
    "What time do you close on Fridays?",
    "I need to cancel my booking, something came up.",
    "Is there parking near the salon?",
    "Can you take a message for the manager please?",
    "My name is {name} and my number is {phone}.",
    "Do you do beard trims as well?",
]
AGENT_LINES = [
    "Of course, let me check what we have available.",
    "We have 10:30 or 2:15 free, which would suit you?",
    "A colour treatment is 80 dollars and takes about ninety minutes.",
    "You're all set, we'll see you then.",
    "We're open until five on Fridays.",
    "I've cancelled that for you. Anything else?",
    "There is street parking right outside.",
    "I'll pass that message on straight away.",
    "Thanks {name}, I've saved your details.",
]
NAMES = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn"]
STATUSES = ["completed"] * 8 + ["failed", "transferred", "abandoned"]


def _transcript(rng: random.Random, phone: str, plant: bool) -> str:
    name = rng.choice(NAMES)
    turns = []
    for _ in range(rng.randint(3, 8)):
        turns.append("Caller: " + rng.choice(CALLER_LINES).format(name=name, phone=phone))
        turns.append("Agent: " + rng.choice(AGENT_LINES).format(name=name))
    if plant:
        turns.insert(1, f"Caller: Do you do {RARE_WORD} highlights?")
    return "\n".join(turns)


def seed(database_file: Path, calls: int, secret: str) -> str:
    """Returns a session cookie for the business's owner."""
    engine = create_engine(f"sqlite:///{database_file}")
    rng = random.Random(7)
    now = datetime.now(UTC)
    user_id, business_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(insert(User.__table__), [{"id": user_id, "email": "bench@example.com", "name": "Bench",
                                              "created_at": now, "updated_at": now}])
        conn.execute(insert(Business.__table__), [{
            "id": business_id, "owner_id": user_id, "name": "Bench Salon", "timezone": "America/New_York",
            "weekly_hours": WEEKDAY_HOURS, "services": SERVICES, "greeting": "Hi", "address": "", "instructions": "",
            "voice": "marin", "recording_enabled": False, "max_call_seconds": 600, "booking_version": 0,
            "plan": "free", "created_at": now, "updated_at": now}])
    batch = 10_000
    for start in range(0, calls, batch):
        sessions, rows = [], []
        for i in range(start, min(start + batch, calls)):
            started = now - timedelta(seconds=i * 300 + rng.randint(0, 250))  # ~one call per 5 minutes
            phone = f"+1555{rng.randint(0, 9_999_999):07d}"
            session_id = uuid.uuid4()
            sessions.append({"id": session_id, "business_id": business_id, "channel": "twilio",
                             "status": "completed", "caller_phone": phone, "started_at": started,
                             "ended_at": started + timedelta(seconds=120), "created_at": started,
                             "updated_at": started})
            duration = rng.uniform(20, 400)
            rows.append({
                "id": uuid.uuid4(), "session_id": session_id, "business_id": business_id, "channel": "twilio",
                "caller_phone": phone, "status": rng.choice(STATUSES), "started_at": started,
                "ended_at": started + timedelta(seconds=duration), "duration_seconds": duration,
                "end_reason": "goodbye", "transcript": _transcript(rng, phone, i % 1000 == 500),
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
    return SessionSigner((secret,)).sign(user_id)


def measure(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    client.get(path)  # warm-up (template compile, page cache)
    timings = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        data_dir = Path(tmp)
        env = base_env(data_dir, LOG_LEVEL="WARNING")
        migrate(env)
        t0 = time.perf_counter()
        cookie = seed(data_dir / "receptionist.db", args.calls, env["SESSION_SECRETS"])
        print(f"seeded {args.calls:,} calls in {time.perf_counter() - t0:.1f}s "
              f"({(data_dir / 'receptionist.db').stat().st_size / 1e6:.0f} MB)")
        cases = [
            ("calls page 1", "/calls"),
            ("calls page 200", "/calls?page=200"),
            ("status filter", "/calls?status=failed"),
            ("date range (1 week)", f"/calls?from={(datetime.now(UTC) - timedelta(days=30)).date()}"
                                    f"&to={(datetime.now(UTC) - timedelta(days=23)).date()}"),
            (f"search rare word ({RARE_WORD})", f"/calls?q={RARE_WORD}"),
            ("search common word (parking)", "/calls?q=parking"),
            ("search two words", "/calls?q=beard+trims"),
            ("search absent word", "/calls?q=zzyzx"),
            ("search caller number", "/calls?q=555+123"),
            ("overview", "/"),
        ]
        with run_server(env) as server, httpx.Client(base_url=server.url, timeout=60,
                                                     cookies={COOKIE_NAME: cookie}) as client:
            print(f"\n{'request':<34} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>8}")
            for label, path in cases:
                p50, p95, size = measure(client, path, args.requests)
                print(f"{label:<34} {p50:>8.1f} {p95:>8.1f} {size:>8}")
            started = time.perf_counter()
            with client.stream("GET", "/calls/export.csv") as response:
                lines = sum(chunk.count(b"\n") for chunk in response.iter_bytes())
            print(f"\nCSV export of every call: {lines - 1:,} rows in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
