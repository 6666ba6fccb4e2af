"""Greetings under a burst, and call starts across instances (issue 10, items 2 and 3).

N phone calls start in the same instant: every voice webhook is POSTed at once (signed by the Twilio double),
then every media stream opens and sends `connected` + `start` at once, and each call measures `start` sent ->
the greeting's first `media` frame at the caller. The model is the echo model (`bench/echo_model.py`, answers
in well under a millisecond), so what is measured is the service's own set-up. In the same invocation the floor
is the echo model reached directly by the same client: connect + `session.update` + `response.create` -> first
audio delta (nothing can greet faster than that), run at the same burst size.

    .venv/bin/python bench/bench_greeting.py --calls 20                          # one instance, one worker
    .venv/bin/python bench/bench_greeting.py --calls 20 --instances 2            # webhooks to A, streams to B
    .venv/bin/python bench/bench_greeting.py --calls 20 --instances 2 --db libsql  # both on one Hrana server
    .venv/bin/python bench/bench_greeting.py --calls 100 --within 2 --instances 2  # 100 call starts in 2 s

`--within S` spreads the calls' webhooks and starts evenly over S seconds instead of one instant. After the
greeting each call sends `stop`; the run then checks that every call was finalised exactly once and that no
server log holds "database is locked" (it fails if either is not so). `--rounds R` repeats the burst R times on
the same servers (the first round includes each worker's first-call costs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.engine import Database  # noqa: E402
from app.db.models import Call, CallEvent  # noqa: E402
from app.settings import load_settings  # noqa: E402
from bench.bench_call_latency import pct  # noqa: E402
from bench.bench_load import BUSINESS_NUMBER, start_process  # noqa: E402
from tests.doubles.twilio_double import TwilioDouble  # noqa: E402
from tests.support.cluster import Cluster, run_cluster  # noqa: E402
from tests.support.data import seed_owner  # noqa: E402
from tests.support.server import base_env, free_port  # noqa: E402


@dataclass
class Start:
    greeting_ms: float = 0.0
    webhook_ms: float = 0.0
    error: str = ""


@dataclass
class Round:
    starts: list[Start] = field(default_factory=list)

    def ms(self) -> list[float]:
        return [s.greeting_ms for s in self.starts if not s.error]


async def floor_greeting(model_port: int, stagger: float) -> float:
    await asyncio.sleep(stagger)
    t0 = time.monotonic()
    async with connect(f"ws://127.0.0.1:{model_port}/v1/realtime", compression=None) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        await ws.send(json.dumps({"type": "response.create"}))
        async for raw in ws:
            if json.loads(raw).get("type") == "response.output_audio.delta":
                return (time.monotonic() - t0) * 1000
    raise RuntimeError("the echo model closed before any audio")


class Gate:
    """Opens when every call's stream is connected, so all `start`s go out in one instant."""

    def __init__(self, calls: int) -> None:
        self.waiting, self.calls, self.open = 0, calls, asyncio.Event()

    async def wait(self) -> None:
        self.waiting += 1
        if self.waiting == self.calls:
            self.open.set()
        await self.open.wait()


async def one_start(twilio: TwilioDouble, voice_url: str, stream_base: str, k: int, stagger: float,
                    start_gate: Gate | None) -> Start:
    result = Start()
    await asyncio.sleep(stagger)
    t0 = time.monotonic()
    try:
        call, answer = await twilio.place_call(voice_url, to=BUSINESS_NUMBER, from_=f"+1555800{k:04d}")
    except Exception as exc:  # the webhook itself failed (a refused or timed-out connection)
        call, answer, result.error = None, None, f"webhook: {type(exc).__name__}"
    result.webhook_ms = (time.monotonic() - t0) * 1000
    if call is None or answer is None or not answer.stream_url:
        result.error = result.error or f"no stream in the TwiML ({answer.status_code if answer else '-'})"
        if start_gate is not None:
            await start_gate.wait()  # don't hold the others back
        return result
    url = stream_base + "/twilio/media"
    stream_sid = f"MZ{k:032x}"
    try:
        async with connect(url, compression=None, max_size=2**22) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            if start_gate is not None:
                await start_gate.wait()
                start_gate = None
            started = time.monotonic()
            await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
                "streamSid": stream_sid, "accountSid": twilio.account_sid, "callSid": call.sid,
                "tracks": ["inbound"], "customParameters": answer.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
            async with asyncio.timeout(30):
                async for raw in ws:
                    if json.loads(raw).get("event") == "media":
                        result.greeting_ms = (time.monotonic() - started) * 1000
                        break
            await asyncio.sleep(0.3)
            await ws.send(json.dumps({"event": "stop", "sequenceNumber": "2", "streamSid": stream_sid,
                                      "stop": {"accountSid": twilio.account_sid, "callSid": call.sid}}))
            async with asyncio.timeout(15):
                async for _ in ws:
                    pass
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:200]
        if start_gate is not None:
            await start_gate.wait()
    return result


async def burst(cluster: Cluster, twilio: TwilioDouble, calls: int, within: float, offset: int) -> Round:
    voice_url = cluster.a.url + "/twilio/voice"
    stream_base = cluster.b.url.replace("http://", "ws://")
    # In one instant: every stream waits, connected, until all have their TwiML, then all send `start`.
    gate = Gate(calls) if within == 0 else None
    tasks = [asyncio.create_task(one_start(twilio, voice_url, stream_base, offset + k, k * within / calls, gate))
             for k in range(calls)]
    return Round(list(await asyncio.gather(*tasks)))


async def seed(env: dict[str, str]) -> None:
    await seed_owner(env, name="Burst Salon", phone_number=BUSINESS_NUMBER, greeting="Thanks for calling Burst Salon.")


async def finalised(env: dict[str, str]) -> tuple[int, int, int]:
    """(calls, calls ended, "call ended" events) in the shared database."""
    db = Database(load_settings(env))
    try:
        for _ in range(100):
            async with db.session() as s:
                total = await s.scalar(select(func.count()).select_from(Call)) or 0
                ended = await s.scalar(select(func.count()).select_from(Call).where(Call.ended_at.is_not(None))) or 0
                events = await s.scalar(select(func.count()).select_from(CallEvent).where(
                    CallEvent.text.like("call ended%"))) or 0
            if total and ended == total:
                break
            await asyncio.sleep(0.2)
        return total, ended, events
    finally:
        await db.dispose()


METRICS_TOKEN = "bench-metrics-token-0123"
_SAMPLE = re.compile(r'^receptionist_(call_setup_ms|greeting_ms)_(sum|count)(?:\{stage="(\w+)"\})? ([0-9.e+]+)$')


def setup_means(url: str) -> dict[str, tuple[float, int]]:
    """Mean ms and count per set-up stage, from the instance's own /metrics."""
    body = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for line in body.splitlines():
        m = _SAMPLE.match(line)
        if m:
            name = m.group(3) or "bridge -> response.create -> greeting audio (greeting_ms)"
            if m.group(2) == "sum":
                sums[name] = float(m.group(4))
            else:
                counts[name] = int(float(m.group(4)))
    return {k: (sums.get(k, 0.0) / counts[k], counts[k]) for k in counts if counts[k]}


@contextmanager
def services(args: argparse.Namespace, model_port: int, twilio: TwilioDouble, tmp: Path) -> Iterator[Cluster]:
    env = base_env(tmp, OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{model_port}/v1",
                   TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                   TWILIO_API_BASE_URL=twilio.api_base_url, LOG_LEVEL="WARNING", METRICS_TOKEN=METRICS_TOKEN)
    if args.workers > 1:
        (tmp / "prometheus").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prometheus")
    with ExitStack() as stack:
        if args.db == "libsql":
            from tests.doubles.hrana_server import HranaServer

            hrana = stack.enter_context(HranaServer(tmp / "remote.db", auth_token="bench-token"))
            env.update(DATABASE_URL=hrana.database_url, TURSO_AUTH_TOKEN="bench-token")
        cluster = stack.enter_context(run_cluster(env, instances=args.instances, workers=args.workers))
        asyncio.run(seed(cluster.env))
        yield cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--within", type=float, default=0.0, help="spread the starts over this many seconds")
    parser.add_argument("--instances", type=int, default=1, choices=[1, 2])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--db", choices=["sqlite", "libsql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    model_port = free_port()
    model = start_process(["bench/echo_model.py", str(model_port)], env={**os.environ})
    failures: list[str] = []
    try:
        async def floor() -> list[float]:
            return list(await asyncio.gather(*(floor_greeting(model_port, k * args.within / args.calls)
                                               for k in range(args.calls))))

        floor_ms = asyncio.run(floor())
        with tempfile.TemporaryDirectory(prefix="bench-greeting-") as tmp, TwilioDouble() as twilio, \
                services(args, model_port, twilio, Path(tmp)) as cluster:
            rounds = [asyncio.run(burst(cluster, twilio, args.calls, args.within, r * args.calls))
                      for r in range(args.rounds)]
            total, ended, events = asyncio.run(finalised(cluster.env))
            logs = cluster.logs()
            stages = {("A" if server is cluster.a else "B"): setup_means(server.url) for server in cluster.servers}
    finally:
        model.terminate()
        model.wait()

    where = ("webhooks to instance A, streams to B" if args.instances == 2 else "one instance")
    print(f"{args.calls} calls {'at once' if not args.within else f'within {args.within:g} s'}, {where}, "
          f"{args.workers} worker(s) each, {args.db}")
    print()
    print("| run | start -> first audio p50 / p95 / max ms | webhook p50 / p95 ms | failed |")
    print("|---|---|---|---|")
    print(f"| floor (echo model direct, with connect) | {pct(floor_ms, 50):.1f} / {pct(floor_ms, 95):.1f} / "
          f"{max(floor_ms):.1f} | | 0 |")
    for n, r in enumerate(rounds, 1):
        ms, hooks = r.ms(), [s.webhook_ms for s in r.starts]
        failed = [s.error for s in r.starts if s.error]
        line = (f"{pct(ms, 50):.1f} / {pct(ms, 95):.1f} / {max(ms):.1f}" if ms else "-")
        print(f"| service, round {n} | {line} | {pct(hooks, 50):.0f} / {pct(hooks, 95):.0f} | {len(failed)} |")
        failures += failed[:3]
    print()
    print("service's own set-up, mean ms per stage over all rounds (its /metrics):")
    for name, means in stages.items():
        print(f"  instance {name}: " + ", ".join(f"{k} {v:.1f} (n={n})" for k, (v, n) in sorted(means.items())))
    print()
    answered = sum(1 for r in rounds for s in r.starts if not s.error.startswith(("webhook", "no stream")))
    print(f"calls recorded {total}, ended {ended}, 'call ended' events {events} "
          f"(expected {answered} of each: the calls whose webhook was answered)")
    locked = logs.count("database is locked")
    print(f'"database is locked" in the server logs: {locked}; tracebacks: {logs.count("Traceback")}')
    if locked:
        failures.append("database is locked")
    if not (total == ended == events == answered):
        failures.append("not every call was finalised exactly once")
    for failure in failures:
        print("FAILED:", failure)
    if failures:
        print("errors:", sorted({s.error for r in rounds for s in r.starts if s.error})[:5])
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
