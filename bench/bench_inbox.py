"""Inbox benchmark: what a call's ending pays for its outcomes and outbox rows, and how fast the outbox drains.

Migrates a fresh embedded SQLite database, then for N calls (each with a message taken, as a follow-up call
is): times `settle_call` inside its own transaction (outcomes, customer link, two notification rows and two
jobs: the work added to every call's finalisation), then drains the `notify` jobs through the real job queue
to a real SMTP server (aiosmtpd) and the Twilio double's Messages API on 127.0.0.1, timing each send.
Fails (exit 1) when a p95 passes its floor.

    .venv/bin/python bench/bench_inbox.py [--calls 200]     # short form: --calls 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db import migrate  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.db.models import NotificationSettings  # noqa: E402
from app.db.services import BusinessScope  # noqa: E402
from app.inbox.outbox import DEFAULTS  # noqa: E402
from app.inbox.outcomes import settle_call  # noqa: E402
from app.inbox.sender import Notifier  # noqa: E402
from app.jobs import JobQueue  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.doubles.smtp_server import SmtpServer  # noqa: E402
from tests.doubles.twilio_double import TwilioDouble  # noqa: E402
from tests.support.dashboard import seed_call  # noqa: E402
from tests.support.data import create_owner  # noqa: E402
from tests.support.server import base_env  # noqa: E402

SETTLE_P95_FLOOR_MS = 60.0
SEND_P95_FLOOR_MS = 250.0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


async def run(calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp, SmtpServer() as smtp, TwilioDouble() as twilio:
        env = base_env(Path(tmp), SMTP_URL=smtp.url, SMTP_FROM="desk@bench.example",
                       TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                       TWILIO_API_BASE_URL=twilio.api_base_url, LOG_LEVEL="WARNING")
        settings = load_settings(env)
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database(settings)
        try:
            _user, business = await create_owner(db, phone_number="+15550001000")
            async with db.session() as s, s.begin():
                s.add(NotificationSettings(business_id=business.id, **{**DEFAULTS, "sms_enabled": True,
                                                                        "sms_to": "+15559990000"}))
            scope = BusinessScope(db.session_maker, business.id)
            settle_ms: list[float] = []
            for i in range(calls):
                phone = f"+1555300{i:04d}"
                _s, call = await seed_call(db, business.id, caller_phone=phone, summary="Wants a call back.")
                await scope.take_message("Please call me back.", caller_name=f"Caller {i}", caller_phone=phone,
                                         call_id=call.id)
                started = time.perf_counter()
                async with db.session() as s, s.begin():
                    await settle_call(s, call.id)
                settle_ms.append((time.perf_counter() - started) * 1000)
            jobs = JobQueue(db)
            Notifier(db, settings).register(jobs)
            send_ms: list[float] = []
            drain_started = time.perf_counter()
            while True:
                started = time.perf_counter()
                if not await jobs.run_one():
                    break
                send_ms.append((time.perf_counter() - started) * 1000)
            drain_s = time.perf_counter() - drain_started
        finally:
            await db.dispose()
        sent = len(smtp.messages) + len(twilio.messages)
    print(f"calls: {calls}; notifications sent: {sent} ({len(smtp.messages)} emails, {len(twilio.messages)} texts)")
    print(f"settle_call (outcomes + links + 2 outbox rows): p50 {statistics.median(settle_ms):.1f} ms, "
          f"p95 {p95(settle_ms):.1f} ms (floor {SETTLE_P95_FLOOR_MS:.0f})")
    print(f"notify job (claim, compose, send, commit): p50 {statistics.median(send_ms):.1f} ms, "
          f"p95 {p95(send_ms):.1f} ms (floor {SEND_P95_FLOOR_MS:.0f}); {sent / drain_s:.0f} notifications/s")
    ok = sent == 2 * calls and p95(settle_ms) <= SETTLE_P95_FLOOR_MS and p95(send_ms) <= SEND_P95_FLOOR_MS
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args.calls)))


if __name__ == "__main__":
    main()
