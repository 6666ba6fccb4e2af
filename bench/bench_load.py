"""Calls per core: N concurrent phone calls of two-way audio through the service, against the floor.

Three processes besides this one: the echo model (`bench/echo_model.py`), and either the floor
(`bench/floor_forwarder.py`, a bare forwarder) or the real service (granian, migrations applied, one worker
unless `--workers`), both reached exactly as Twilio and OpenAI reach them. This process is the callers: for the
service each call POSTs the signed voice webhook (the Twilio double signs it and reads the TwiML), then every
call opens its media stream, sends `connected` and `start`, then one 20 ms mu-law frame every 20 ms on an
absolute schedule for `--seconds`, answers marks when the audio queued before them has "played", and
sends `stop`. Every frame's first 4 bytes are a stamp, so each one is followed through both directions:

  up     caller sends media       -> echo model receives the append   (service: decode, bridge, append)
  down   echo model sends delta   -> caller receives the media frame  (service: bridge, marks, send)
  lost   frames sent that never arrived (either way)
  greeting  `start` sent -> first audio at the caller
  open after hang-up   model sessions still open 3 s after the last call's `stop`
  CPU    utime+stime of the target's process tree over the run, per call, as a share of one core
  RSS    the target's resident memory when idle and at the end, per worker

    .venv/bin/python bench/bench_load.py --calls 50 --seconds 30 [--target both|floor|service] [--workers 1]

Same machine, same clock (time.monotonic is CLOCK_MONOTONIC across processes on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_call_latency import cpu_seconds, pct, process_tree  # noqa: E402
from tests.doubles.twilio_double import TwilioDouble  # noqa: E402
from tests.support.data import seed_owner  # noqa: E402
from tests.support.server import base_env, free_port, run_server  # noqa: E402

BUSINESS_NUMBER = "+15550007000"
FRAME_MS = 20


@dataclass
class CallLog:
    index: int
    sent: dict[int, float] = field(default_factory=dict)
    received: dict[int, float] = field(default_factory=dict)
    start_at: float = 0.0
    first_audio_at: float = 0.0
    ended_at: float = 0.0
    error: str = ""


def frame(stamp: int) -> str:
    return base64.b64encode(stamp.to_bytes(4, "big") + b"\x7f" * 156).decode()


def stamp_of(b64: str) -> int:
    return int.from_bytes(base64.b64decode(b64[:8])[:4], "big")


Setup = tuple[str, dict[str, str], str]  # stream URL, <Parameter>s, CallSid


async def one_call(index: int, setup: Setup, seconds: float, stagger: float) -> CallLog:
    log = CallLog(index)
    url, parameters, call_sid = setup
    await asyncio.sleep(stagger)
    stream_sid = f"MZ{index:032x}"
    try:
        async with connect(url, compression=None, max_size=2**22) as ws:
            play_until = 0.0
            marks: list[tuple[float, str]] = []

            async def receive() -> None:
                nonlocal play_until
                async for raw in ws:
                    message = json.loads(raw)
                    event = message.get("event")
                    now = time.monotonic()
                    if event == "media":
                        stamp = stamp_of(message["media"]["payload"])
                        log.received.setdefault(stamp, now)
                        if not log.first_audio_at:
                            log.first_audio_at = now
                        play_until = max(play_until, now) + FRAME_MS / 1000
                    elif event == "mark":
                        marks.append((max(play_until, now), message["mark"]["name"]))
                    elif event == "clear":
                        play_until = now

            async def send(payload: dict[str, object]) -> None:
                await ws.send(json.dumps(payload))

            receiver = asyncio.create_task(receive())
            await send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            log.start_at = time.monotonic()
            await send({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
                "streamSid": stream_sid, "accountSid": "AC0", "callSid": call_sid, "tracks": ["inbound"],
                "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
            frames = int(seconds * 1000 / FRAME_MS)
            for seq in range(frames):
                due = log.start_at + (seq + 1) * FRAME_MS / 1000
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                stamp = (index << 16) | seq
                log.sent[stamp] = time.monotonic()
                await send({"event": "media", "sequenceNumber": str(seq + 2), "streamSid": stream_sid, "media": {
                    "track": "inbound", "chunk": str(seq + 1), "timestamp": str((seq + 1) * FRAME_MS),
                    "payload": frame(stamp)}})
                now = time.monotonic()
                while marks and marks[0][0] <= now:
                    _, name = marks.pop(0)
                    await send({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})
            await asyncio.sleep(0.3)  # the last echoes
            await send({"event": "stop", "sequenceNumber": str(frames + 2), "streamSid": stream_sid,
                        "stop": {"accountSid": "AC0", "callSid": call_sid}})
            log.ended_at = time.monotonic()
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
    except Exception as exc:
        log.error = f"{type(exc).__name__}: {exc}"
        log.ended_at = log.ended_at or time.monotonic()
    return log


@dataclass
class Result:
    target: str
    calls: list[CallLog]
    up_ms: list[float]
    down_ms: list[float]
    lost_up: int
    lost_down: int
    greeting_ms: list[float]
    open_after: int
    cpu_share_per_call: float
    idle_rss_mb: float
    end_rss_mb: float
    workers: int


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def start_process(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{args[0]} did not start")
    return process


async def model_stats(model_port: int) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.get(f"http://127.0.0.1:{model_port}/stats")).json()  # type: ignore[no-any-return]


async def run_calls(target: str, pids: list[int], model_port: int, calls: int, seconds: float, workers: int,
                    setup: list[Setup]) -> Result:
    await asyncio.sleep(1.0)
    idle = rss_mb(pids)
    cpu0, wall0 = sum(_cpu(p) for p in pids), time.monotonic()
    # Calls join over one second (as a busy line's callers do), not in the same millisecond.
    logs = await asyncio.gather(*(one_call(i + 1, call, seconds, i / max(1, calls)) for i, call in enumerate(setup)))
    last_stop = max(log.ended_at for log in logs)
    wall1 = time.monotonic()
    cpu1 = sum(_cpu(p) for p in pids)
    await asyncio.sleep(max(0.0, last_stop + 3.0 - time.monotonic()))
    stats = await model_stats(model_port)
    end_rss = rss_mb(pids)
    model_received = {int(k): v for k, v in stats["received"].items()}  # type: ignore[union-attr]
    model_sent = {int(k): v for k, v in stats["sent"].items()}  # type: ignore[union-attr]
    up, down, lost_up, lost_down = [], [], 0, 0
    for log in logs:
        for stamp, at in log.sent.items():
            arrived = model_received.get(stamp)
            if arrived is None:
                lost_up += 1
            else:
                up.append((arrived - at) * 1000)
            echoed = model_sent.get(stamp)
            if echoed is not None:
                got = log.received.get(stamp)
                if got is None:
                    # An echo of a frame sent in the last moments before `stop` may be dropped with the call.
                    if echoed < log.ended_at - 0.3:
                        lost_down += 1
                else:
                    down.append((got - echoed) * 1000)
    busy = (cpu1 - cpu0) / (wall1 - wall0)
    return Result(target, list(logs), up, down, lost_up, lost_down,
                  [(log.first_audio_at - log.start_at) * 1000 for log in logs if log.first_audio_at],
                  int(stats["open"]), busy / calls * 100, idle, end_rss, workers)  # type: ignore[call-overload]


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


async def floor_setup(port: int, calls: int) -> list[Setup]:
    return [(f"ws://127.0.0.1:{port}/twilio/media", {}, f"CA{k:032x}") for k in range(calls)]


async def service_setup(server_url: str, twilio: TwilioDouble, calls: int) -> list[Setup]:
    async def one(k: int) -> Setup:
        call, answer = await twilio.place_call(server_url + "/twilio/voice", to=BUSINESS_NUMBER,
                                                from_=f"+1555900{k:04d}")
        assert answer.stream_url, answer.body
        return answer.stream_url, answer.parameters, call.sid

    # Webhooks first (a token lives for minutes): the measured part is the media, as in the floor.
    return list(await asyncio.gather(*(one(k) for k in range(calls))))


async def seed(env: dict[str, str]) -> None:
    await seed_owner(env, name="Load Salon", phone_number=BUSINESS_NUMBER, greeting="Thanks for calling Load Salon.")


def run_floor(model_port: int, args: argparse.Namespace) -> Result:
    port = free_port()
    floor = start_process(["bench/floor_forwarder.py", str(port), f"ws://127.0.0.1:{model_port}/v1/realtime"])
    try:
        async def go() -> Result:
            setup = await floor_setup(port, args.calls)
            return await run_calls("floor", [floor.pid], model_port, args.calls, args.seconds, 1, setup)

        return asyncio.run(go())
    finally:
        floor.terminate()
        floor.wait()


def run_service(model_port: int, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, TwilioDouble() as twilio:
        env = base_env(Path(tmp), OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{model_port}/v1",
                       TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                       TWILIO_API_BASE_URL=twilio.api_base_url, LOG_LEVEL="WARNING")
        with run_server(env, workers=args.workers) as server:
            asyncio.run(seed(server.env))
            pids = process_tree(server.process.pid)

            async def go() -> Result:
                setup = await service_setup(server.url, twilio, args.calls)
                return await run_calls("service", pids, model_port, args.calls, args.seconds, args.workers, setup)

            result = asyncio.run(go())
            if "Traceback" in server.log():
                print("WARNING: the service logged a traceback:\n" + server.log()[-3000:])
            return result


def report(results: list[Result], args: argparse.Namespace) -> str:
    floor = next((r for r in results if r.target == "floor"), None)

    def ratio(value: float, base: float | None) -> str:
        return f" ({value / base:.1f}×)" if floor is not None and base else ""

    lines = [
        f"{args.calls} calls × {args.seconds:.0f} s of two-way audio, {args.workers} worker(s)",
        "",
        "| target | up p50 / p99 ms | down p50 / p99 ms | lost up / down | greeting p50 / p95 ms "
        "| CPU per call | RSS idle → end MB | model sessions open 3 s after hang-up | failed calls |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        up50, up99 = (pct(r.up_ms, 50), pct(r.up_ms, 99)) if r.up_ms else (float("nan"),) * 2
        dn50, dn99 = (pct(r.down_ms, 50), pct(r.down_ms, 99)) if r.down_ms else (float("nan"),) * 2
        g50, g95 = (pct(r.greeting_ms, 50), pct(r.greeting_ms, 95)) if r.greeting_ms else (float("nan"),) * 2
        base = floor if floor is not None and r is not floor else None
        lines.append(
            f"| {r.target} | {up50:.1f} / {up99:.1f}{ratio(up99, pct(base.up_ms, 99) if base else None)} "
            f"| {dn50:.1f} / {dn99:.1f}{ratio(dn99, pct(base.down_ms, 99) if base else None)} "
            f"| {r.lost_up} / {r.lost_down} | {g50:.0f} / {g95:.0f} "
            f"| {r.cpu_share_per_call:.2f} %{ratio(r.cpu_share_per_call, base.cpu_share_per_call if base else None)} "
            f"| {r.idle_rss_mb:.0f} → {r.end_rss_mb:.0f} | {r.open_after} "
            f"| {sum(1 for c in r.calls if c.error)} |"
        )
    errors = {c.error for r in results for c in r.calls if c.error}
    lines += [f"call error: {e}" for e in sorted(errors)[:5]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--target", choices=["both", "floor", "service"], default="both")
    parser.add_argument("--workers", type=int, default=1)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Result]:
    model_port = free_port()
    model = start_process(["bench/echo_model.py", str(model_port)], env={**os.environ})
    results = []
    try:
        if args.target in ("both", "floor"):
            results.append(run_floor(model_port, args))
            httpx.get(f"http://127.0.0.1:{model_port}/reset")
        if args.target in ("both", "service"):
            results.append(run_service(model_port, args))
    finally:
        model.terminate()
        model.wait()
    return results


if __name__ == "__main__":
    arguments = parse_args()
    print(report(run(arguments), arguments))
