"""Realtime vs GPT-Live, side by side: the same scripted phone calls on both voice engines.

Starts the real service (granian, one worker) between the Twilio double and the OpenAI double (Realtime and
Live WebSockets, Responses), with two businesses that differ only in their voice engine, and places the same
calls to each, alternating engines so both see the same machine load. Each call: the greeting plays, the
caller asks to book (1.2 s of speech), the voice model hands the turn to the supervisor (Realtime: the
supervisor tool; Live: a client delegation) while it says "One moment.", the supervisor's answer is spoken
and played out, the caller hangs up. From the doubles' own time.monotonic() stamps (same machine, same clock):

  greeting       voice webhook POST sent -> first agent `media` frame at the caller
  relay          the double sends an agent audio delta -> the Twilio double receives that `media` frame
                 (every 50 ms delta carries a unique 4-byte stamp, so frames are matched by payload)
  CPU per call   utime+stime of the granian processes over the engine's calls, net of the idle rate
  cost           the service's own Call.cost_usd / call minutes (Realtime: the double's token usage at the
                 price table; Live: the double's session seconds at the per-minute price; both + supervisor)

The floor, measured in the same run: the idle service's CPU rate (subtracted), and for relay the bench's
own loop wake-up lag (reported).

    .venv/bin/python bench/bench_engines.py [--calls 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_call_latency as common  # noqa: E402  (also stamps the doubles' agent audio)
from sqlalchemy import select  # noqa: E402

from app.db.engine import Database  # noqa: E402
from app.db.models import Call, Session  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.doubles import live_double  # noqa: E402
from tests.doubles.openai_double import OpenAIDouble  # noqa: E402
from tests.doubles.twilio_double import TwilioDouble  # noqa: E402
from tests.support.data import create_owner  # noqa: E402
from tests.support.server import RunningServer, phone_env, run_server  # noqa: E402

live_double.speech_like_tone = common._stamped_tone  # the Live double's audio carries the stamps too
# Both doubles pace their audio in real time, so relay compares what the service adds per frame on each engine
# (with the Live double's default 600 ms send-ahead, a frame's relay would also count the frames queued
# before it in the same burst: `--lead-ms 600` shows that).

NUMBERS = {"realtime": "+15550005000", "live": "+15550006000"}
GREETING = "Thanks for calling Bench Salon, how can I help?"
ANSWER = "We have ten a.m. tomorrow free. Shall I book it for you?"


@dataclass
class EngineRun:
    engine: str
    greeting_ms: list[float] = field(default_factory=list)
    relay_ms: list[float] = field(default_factory=list)
    unmatched: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    call_sids: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    minutes: float = 0.0


def script(openai: OpenAIDouble, engine: str) -> None:
    openai.responses.for_model("gpt-4.1").text(ANSWER)
    if engine == "realtime":
        openai.realtime.say(GREETING).caller("I'd like to book a haircut.").tool(
            "getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "book a haircut"},
            say_first="One moment.").say_from_tool_output()
    else:
        openai.live.say(GREETING).caller("I'd like to book a haircut.").delegate(
            say_first="One moment.").say_from_commentary()


def agent_deltas(openai: OpenAIDouble, engine: str, index: int) -> tuple[list[tuple[float, dict[str, Any]]], int]:
    if engine == "realtime":
        log: Any = openai.realtime_sessions[index]
        kind, done = "response.output_audio.delta", "response.done"
    else:
        log = openai.live_sessions[index]
        kind, done = "session.output_audio.delta", "session.usage.updated"
    with log._changed:
        sent = list(zip(log.sent_at, log.sent, strict=True))
    return [(at, e) for at, e in sent if e.get("type") == kind], sum(1 for _at, e in sent if e.get("type") == done)


async def one_call(server: RunningServer, openai: OpenAIDouble, twilio: TwilioDouble, engine: str,
                   caller: str, run: EngineRun) -> None:
    script(openai, engine)
    sessions = openai.realtime_sessions if engine == "realtime" else openai.live_sessions
    index = len(sessions)
    call, answer = await twilio.place_call(server.url + "/twilio/voice", to=NUMBERS[engine], from_=caller)
    assert answer.stream_url, answer.body
    stream = await twilio.open_stream(call, answer)
    await common.until(lambda: len(sessions) > index, 20)
    if engine == "realtime":  # the live call's own Realtime link is the fallback kept ready, not its voice
        await common.until(lambda: bool(sessions[index].sent_of_type("response.done")), 20)

    def utterances() -> int:
        return agent_deltas(openai, engine, index)[1]

    await common.until(lambda: utterances() >= 1 and not stream.playing, 30)  # the greeting has played
    await asyncio.sleep(0.3)
    await stream.speak(common.short_utterance("book", 1200))
    await common.until(lambda: utterances() >= 3 and not stream.playing, 30)  # filler, answer, played out
    await asyncio.sleep(0.3)
    await stream.hang_up()

    deltas, _ = agent_deltas(openai, engine, index)
    sent_at = {e["delta"]: at for at, e in deltas}
    media = [(r.at, r.message["media"]["payload"]) for r in stream.received if r.message.get("event") == "media"]
    for at, payload in media:
        if payload in sent_at:
            run.relay_ms.append((at - sent_at[payload]) * 1000)
        else:
            run.unmatched += 1
    run.greeting_ms.append((media[0][0] - (call.webhook_sent_at or 0.0)) * 1000)
    run.call_sids.append(call.sid)


async def costs(env: dict[str, str], run: EngineRun) -> None:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            for sid in run.call_sids:
                for _ in range(100):
                    session = await s.scalar(select(Session).where(Session.twilio_call_sid == sid))
                    call = session and await s.scalar(select(Call).where(Call.session_id == session.id))
                    if call is not None and call.ended_at is not None:
                        break
                    await asyncio.sleep(0.1)
                    s.expire_all()
                assert call is not None and call.engine == run.engine, (sid, call and call.engine)
                run.cost_usd += call.cost_usd
                run.minutes += call.duration_seconds / 60
    finally:
        await db.dispose()


async def main_async(args: argparse.Namespace, server: RunningServer, openai: OpenAIDouble,
                     twilio: TwilioDouble) -> dict[str, EngineRun]:
    pids = common.process_tree(server.process.pid)
    runs = {engine: EngineRun(engine) for engine in NUMBERS}
    callers = iter(f"+1555900{k:04d}" for k in range(10_000))
    for engine in NUMBERS:  # warm-up on each engine: imports, first connections
        await one_call(server, openai, twilio, engine, next(callers), EngineRun(engine))
    await asyncio.sleep(2.0)
    idle = await common.idle_share(pids)
    gc.collect()
    gc.freeze()
    lag: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(common.lag_monitor(lag, stop))
    for _ in range(args.calls):
        for engine in NUMBERS:  # alternate, so both engines see the same load
            run = runs[engine]
            cpu0, wall0 = common.server_cpu(pids), time.monotonic()
            await one_call(server, openai, twilio, engine, next(callers), run)
            await asyncio.sleep(1.0)  # the record, the Live session's close and the summary settle
            run.cpu_s += common.server_cpu(pids) - cpu0
            run.wall_s += time.monotonic() - wall0
    stop.set()
    await monitor
    for run in runs.values():
        await costs(server.env, run)
        run.cpu_s -= idle * run.wall_s
    print(report(runs, idle, lag, args.calls))
    return runs


def report(runs: dict[str, EngineRun], idle: float, lag: list[float], calls: int) -> str:
    rt, live = runs["realtime"], runs["live"]
    pct = common.pct

    def cells(values: list[float]) -> str:
        return f"{pct(values, 50):.1f} | {pct(values, 95):.1f} | {max(values):.1f}"

    lines = [
        f"{calls} calls per engine (alternating), one granian worker; idle service {idle * 100:.1f}% of a core "
        f"(subtracted); bench loop lag p50/p95 {pct(lag, 50):.1f}/{pct(lag, 95):.1f} ms",
        "",
        "| measure | Realtime p50 | p95 | max | GPT-Live p50 | p95 | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| greeting: webhook POST -> first agent media (ms) | {cells(rt.greeting_ms)} | {cells(live.greeting_ms)} |",
        f"| relay: agent delta sent -> media at caller (ms) | {cells(rt.relay_ms)} | {cells(live.relay_ms)} |",
        "",
        "| per call | Realtime | GPT-Live |",
        "|---|---:|---:|",
        f"| server CPU per call (s, net of idle) | {rt.cpu_s / calls:.3f} | {live.cpu_s / calls:.3f} |",
        f"| server CPU per call-minute (s) | {rt.cpu_s / rt.minutes:.3f} | {live.cpu_s / live.minutes:.3f} |",
        f"| cost per call-minute (USD) | {rt.cost_usd / rt.minutes:.4f} | {live.cost_usd / live.minutes:.4f} |",
        f"| call length (s, mean) | {rt.minutes * 60 / calls:.1f} | {live.minutes * 60 / calls:.1f} |",
    ]
    for run in runs.values():
        if run.unmatched:
            lines.append(f"WARNING: {run.unmatched} {run.engine} media frames not matched to a delta")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3, help="calls per engine (the short form: 3)")
    parser.add_argument("--lead-ms", type=int, default=0, help="how far ahead the Live double sends its audio")
    args = parser.parse_args()
    live_double.AUDIO_LEAD_MS = args.lead_ms
    sys.setswitchinterval(0.0005)
    with (
        tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp,
        OpenAIDouble() as openai,
        common.BenchTwilioDouble() as twilio,
    ):
        env = phone_env(Path(tmp), openai, twilio)
        with run_server(env) as server:
            asyncio.run(seed(server.env))
            twilio.status_callback_url = server.url + "/twilio/status"
            asyncio.run(main_async(args, server, openai, twilio))
            log = server.log()
        if "Traceback" in log:
            print("WARNING: the server logged a traceback:\n" + log[-3000:])


async def seed(env: dict[str, str]) -> None:
    db = Database(load_settings(env))
    try:
        for engine, number in NUMBERS.items():
            await create_owner(db, name=f"Bench Salon {engine}", phone_number=number, greeting=GREETING,
                               voice_engine=engine)
    finally:
        await db.dispose()


if __name__ == "__main__":
    main()
