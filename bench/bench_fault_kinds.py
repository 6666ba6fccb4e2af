"""The fault kinds bench_faults.py doesn't cover (issue 11 item 5): a server process SIGKILLed with live phone
calls and restarted, and SMTP / Twilio REST outages under the owner's notifications.

    .venv/bin/python bench/bench_fault_kinds.py notify                    # short form: 40 notifications
    .venv/bin/python bench/bench_fault_kinds.py notify --calls 150        # long form: 300 notifications
    .venv/bin/python bench/bench_fault_kinds.py sigkill                   # short form: 1 kill, 5 live calls
    .venv/bin/python bench/bench_fault_kinds.py sigkill --rounds 4 --per-round 25   # long form: 100 calls

`sigkill`: the real service under granian between the Twilio and OpenAI doubles; each round places calls,
waits until every one is greeted (some mid-answer) and SIGKILLs granian's worker process; granian starts a new
one (GRANIAN_RESPAWN_FAILED_WORKERS). Nothing can write the end of a killed call, so housekeeping must: the new
worker's pass is run at the moment it would first see them (STALE_AFTER after their last write; the bench asks
it with that time instead of waiting two minutes per round). It fails unless every call is ended exactly once
(one Call row per CallSid, ended, its summary job queued; a second pass ends nothing) and none is left live.

`notify`: the inbox outbox (Notification rows + `notify` jobs, email through aiosmtplib to a real aiosmtpd
server, SMS through the twilio SDK to the Twilio double) over a fresh SQLite database, with the mail server
stopped and started at random and Twilio answering bursts of 500/503; between rounds the backoff is skipped
(pending jobs made due now) instead of waited out. When both come back every notification must be sent
exactly once: one email per email notification, one text per SMS notification, none failed or left pending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, select, update

from app.db import migrate
from app.db.engine import Database
from app.db.models import Call, Job, JobStatus, Notification, NotificationSettings, Session
from app.db.services import BusinessScope
from app.inbox.outbox import DEFAULTS
from app.inbox.outcomes import settle_call
from app.inbox.sender import NOTIFY_JOB, Notifier
from app.jobs import JobQueue
from app.settings import load_settings
from app.voice.lifecycle import STALE_AFTER, reap_stale_calls
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.smtp_server import SmtpServer, body_of
from tests.doubles.twilio_double import TwilioDouble
from tests.support.dashboard import seed_call
from tests.support.data import create_owner
from tests.support.server import base_env, free_port, phone_env, run_server

SALON = "+15550004000"
OWNER_MOBILE = "+12125550123"
LONG = ("Thanks for calling Sam's Salon, we are open every weekday from nine until five and on Saturdays from "
        "ten until two, how can I help you today?")


# -- notify: SMTP and Twilio REST outages ----------------------------------------------------------------------
async def notify_run(calls: int, rng: random.Random) -> bool:
    data = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    smtp = SmtpServer().start()
    twilio = TwilioDouble().start()
    twilio.sms_numbers = {SALON}
    settings = load_settings(base_env(
        data, SMTP_URL=smtp.url, SMTP_FROM="receptionist@salon.example", PUBLIC_BASE_URL=f"http://127.0.0.1:{free_port()}",
        TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_API_BASE_URL=twilio.api_base_url, LOG_LEVEL="ERROR"))
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database(settings)
    started = time.monotonic()
    try:
        _user, business = await create_owner(db, phone_number=SALON, email="sam@salon.example")
        async with db.session() as s, s.begin():
            s.add(NotificationSettings(business_id=business.id, **{**DEFAULTS, "sms_enabled": True,
                                                                    "sms_to": OWNER_MOBILE}))
        jobs = JobQueue(db)
        Notifier(db, settings).register(jobs)
        scope = BusinessScope(db.session_maker, business.id)
        call_ids = []
        for index in range(calls):
            phone = f"+1555444{index:04d}"
            _session, call = await seed_call(db, business.id, caller_phone=phone, summary=f"Caller {index} asks.",
                                             started_at=datetime.now(UTC) - timedelta(seconds=90))
            await scope.take_message(f"Please call back, caller {index}.", caller_name=f"Caller {index}",
                                     caller_phone=phone, call_id=call.id, urgency="normal", callback_requested=True)
            async with db.session() as s, s.begin():
                await settle_call(s, call.id)
            call_ids.append(str(call.id))
        outages = Counter[str]()
        rounds = 0
        for rounds in range(1, 400):
            if rng.random() < 0.5:
                if smtp.running:
                    smtp.stop()
                    outages["smtp down"] += 1
            elif not smtp.running:
                smtp.start()
            if rng.random() < 0.5:
                twilio.message_failures = [rng.choice([500, 503]) for _ in range(rng.randint(1, 15))]
                outages["twilio 5xx bursts"] += 1
            for _ in range(rng.randint(5, 40)):
                if not await jobs.run_one():
                    break
            await _skip_backoff(db)
            if await _pending(db) == 0 and rounds > 3:
                break
        # The services come back: everything still pending goes through.
        if not smtp.running:
            smtp.start()
        twilio.message_failures = []
        deadline = time.monotonic() + 120
        while await _pending(db) and time.monotonic() < deadline:
            while await jobs.run_one():
                pass
            await _skip_backoff(db)
        async with db.session() as s:
            rows = list(await s.scalars(select(Notification)))
        emails = [n for n in rows if n.channel == "email"]
        texts = [n for n in rows if n.channel == "sms"]
        mail_links = Counter(body_of(m).split("/calls/")[1].split()[0] for m in smtp.messages)
        sms_links = Counter(m["body"].split("/calls/")[1].split()[0] for m in twilio.texts_to(OWNER_MOBILE))
        attempts = Counter(n.attempts for n in rows)
        statuses = Counter(n.status for n in rows)
        once = (len(smtp.messages) == len(emails) == calls and len(texts) == calls
                and len(twilio.texts_to(OWNER_MOBILE)) == calls
                and set(mail_links) == set(call_ids) == set(sms_links)
                and set(mail_links.values()) == {1} == set(sms_links.values()))
        print(f"\nnotify: {len(rows)} notifications ({len(emails)} email, {len(texts)} SMS) for {calls} messages "
              f"in {time.monotonic() - started:.0f} s, {rounds} fault rounds: {dict(outages)}")
        print(f"statuses: {dict(statuses)}; attempts per notification: {dict(sorted(attempts.items()))}")
        print(f"emails received {len(smtp.messages)}, texts received {len(twilio.texts_to(OWNER_MOBILE))}; "
              f"sent exactly once: {'yes' if once else 'NO'}; "
              f"lost: {statuses.get('pending', 0) + statuses.get('failed', 0)}")
        return once and set(statuses) == {"sent"}
    finally:
        await db.dispose()
        smtp.stop()
        twilio.stop()


async def _skip_backoff(db: Database) -> None:
    async with db.session() as s, s.begin():
        await s.execute(update(Job).where(Job.kind == NOTIFY_JOB, Job.status == JobStatus.PENDING.value)
                        .values(run_after=datetime.now(UTC)))


async def _pending(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Notification)
                                  .where(Notification.status == "pending")) or 0)


# -- sigkill: a worker killed with live calls ---------------------------------------------------------------------
async def sigkill_run(rounds: int, per_round: int, rng: random.Random) -> bool:
    data = Path(tempfile.mkdtemp(prefix="bench-sigkill-"))
    port = free_port()
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    with OpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio:
        # As production should run it: granian replaces a worker that died (the Procfile's web line).
        env = phone_env(data, openai, twilio, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", LOG_LEVEL="WARNING",
                        GRANIAN_RESPAWN_FAILED_WORKERS="true", GRANIAN_RESPAWN_INTERVAL="0.5")
        settings = load_settings(env)
        context = run_server(env, port=port)
        server = await asyncio.to_thread(context.__enter__)
        twilio.status_callback_url = server.url + "/twilio/status"
        db = Database(settings)
        try:
            _owner, _business = await create_owner(db, phone_number=SALON, greeting="Thanks for calling Sam's Salon.")
            for round_index in range(rounds):
                openai.reset()
                for _ in range(per_round):
                    openai.realtime.say(LONG if rng.random() < 0.5 else "Hello, Sam's Salon.")
                placed = await asyncio.gather(*(twilio.place_call(server.url + "/twilio/voice", to=SALON,
                                                                  from_=f"+1555{round_index:03d}{k:04d}")
                                                for k in range(per_round)))
                streams = await asyncio.gather(*(twilio.open_stream(call, answer) for call, answer in placed))
                deadline = time.monotonic() + 60
                while (len(openai.realtime_sessions) < per_round
                       or not all(log.sent_of_type("response.output_audio.delta") for log in openai.realtime_sessions)):
                    if time.monotonic() > deadline:
                        raise RuntimeError("calls were not greeted in time")
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.0, 1.5))  # some are mid-answer, some have finished it
                worker = _worker_of(server.process.pid)
                os.kill(worker, signal.SIGKILL)
                closing = time.monotonic() + 90
                while not all(s.closed.is_set() for s in streams) and time.monotonic() < closing:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                if not all(s.closed.is_set() for s in streams):
                    still = sum(not s.closed.is_set() for s in streams)
                    raise RuntimeError(f"{still} streams still open after the kill")
                await _respawned(server.url, worker, server.process.pid)
                sids = [call.sid for call, _a in placed]
                live_before = await _live(db, sids)
                # The restarted instance's housekeeping, at the moment it first sees these calls as stale.
                last = await _last_write(db, sids)
                reaped = await reap_stale_calls(db, now=last + STALE_AFTER + timedelta(seconds=1))
                again = await reap_stale_calls(db, now=last + STALE_AFTER + timedelta(seconds=2))
                results.append(await _check_killed(db, sids, live_before, reaped, again))
                print(results[-1], flush=True)
        finally:
            await db.dispose()
            await asyncio.to_thread(context.__exit__, None, None, None)
    calls = sum(r["calls"] for r in results)
    print(f"\nsigkill: {rounds} kills, {calls} live calls killed, in {time.monotonic() - started:.0f} s")
    print(f"left live by the kill: {sum(r['live_after_kill'] for r in results)}; ended by housekeeping: "
          f"{sum(r['reaped'] for r in results)}; ended by a second pass: {sum(r['reaped_again'] for r in results)}")
    print(f"ended exactly once: {sum(r['ended_once'] for r in results)}/{calls}; still live: "
          f"{sum(r['still_live'] for r in results)}; endings: "
          f"{dict(sum((Counter(r['endings']) for r in results), Counter()))}")
    return all(r["ok"] for r in results)


def _worker_of(parent: int) -> int:
    """granian's worker process (the one serving requests) under its supervising process."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("granian has no worker process")


async def _respawned(url: str, killed: int, parent: int) -> None:
    """granian (GRANIAN_RESPAWN_FAILED_WORKERS) starts a new worker; wait until it answers."""
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, RuntimeError, OSError):
                if _worker_of(parent) != killed and (await client.get(url + "/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the killed worker was not replaced")


async def _live(db: Database, sids: list[str]) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Call).join(Session, Session.id == Call.session_id)
                                  .where(Session.twilio_call_sid.in_(sids), Call.ended_at.is_(None))) or 0)


async def _last_write(db: Database, sids: list[str]) -> datetime:
    async with db.session() as s:
        last = await s.scalar(select(func.max(Call.updated_at)).join(Session, Session.id == Call.session_id)
                              .where(Session.twilio_call_sid.in_(sids)))
    assert last is not None
    return last if last.tzinfo else last.replace(tzinfo=UTC)


async def _check_killed(db: Database, sids: list[str], live_before: int, reaped: int, again: int) -> dict[str, Any]:
    async with db.session() as s:
        rows = (await s.execute(select(Session.twilio_call_sid, Call.id, Call.ended_at, Call.end_reason)
                                .join(Call, Call.session_id == Session.id)
                                .where(Session.twilio_call_sid.in_(sids)))).all()
        summaries = {job.payload.get("call_id") for job in await s.scalars(select(Job).where(Job.kind == "summary"))}
    per_sid = Counter(sid for sid, *_rest in rows)
    ended_once = sum(1 for sid, call_id, ended, _r in rows
                     if per_sid[sid] == 1 and ended is not None and str(call_id) in summaries)
    still_live = sum(1 for _sid, _id, ended, _r in rows if ended is None)
    ok = (len(rows) == len(sids) and ended_once == len(sids) and still_live == 0 and again == 0
          and reaped == live_before)
    return {"calls": len(sids), "live_after_kill": live_before, "reaped": reaped, "reaped_again": again,
            "ended_once": ended_once, "still_live": still_live,
            "endings": dict(Counter(reason for *_x, reason in rows)), "ok": ok}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["notify", "sigkill"])
    parser.add_argument("--calls", type=int, default=20, help="notify: messages taken (an email and a text each)")
    parser.add_argument("--rounds", type=int, default=1, help="sigkill: kills")
    parser.add_argument("--per-round", type=int, default=5, help="sigkill: live calls at each kill")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    logging.getLogger("app").setLevel(logging.ERROR)  # the retries' warnings are the point, not news
    rng = random.Random(args.seed)
    ok = await (notify_run(args.calls, rng) if args.kind == "notify"
                else sigkill_run(args.rounds, args.per_round, rng))
    if not ok:
        raise SystemExit("FAIL: something was lost, repeated or left live")


if __name__ == "__main__":
    asyncio.run(main())
