"""Call-path latency: what the service itself adds between a phone caller and the realtime model.

Starts the real service (granian, one worker, migrations applied) between the OpenAI double and the Twilio
double, places phone calls through the signed voice webhook and a real media stream, and measures from the
doubles' own time.monotonic() stamps (the service is another process on the same machine, same clock):

  relay          OpenAI double sends `response.output_audio.delta` -> Twilio double receives that `media`
  caller->model  Twilio double sends a `media` frame -> OpenAI double receives the `input_audio_buffer.append`
  barge-in       OpenAI double sends `input_audio_buffer.speech_started` -> Twilio double receives `clear`
  greeting       voice webhook POST sent -> first agent `media` frame at the caller (prewarmed link)
  server CPU     utime+stime of the granian processes (/proc/PID/stat) over the run, per call-minute

Each call: a ~3.6 s greeting plays out, the caller asks something (1.2 s of speech), the answer starts and
the caller barges in after ~1 s of it, the reply plays out, the caller hangs up. Agent audio chunks carry a
unique 4-byte stamp so every delta is matched to its media frame by payload; caller frames are matched in
stream order (TCP and the bridge keep order) and their payloads checked equal.

    .venv/bin/python bench/bench_call_latency.py [--calls 10] [--concurrent 20] [--recording]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import re
import resource
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.engine import Database  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.doubles import openai_double  # noqa: E402
from tests.doubles.openai_double import AudioFormat, OpenAIDouble, RealtimeSessionLog  # noqa: E402
from tests.doubles.twilio_double import MediaStream, TwilioDouble, caller_audio  # noqa: E402
from tests.support.data import create_owner  # noqa: E402
from tests.support.server import RunningServer, phone_env, run_server  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

BUSINESS_NUMBER = "+15550003000"
# Every agent turn says this (~3.6 s of audio at the double's 60 ms a character): identical steps keep the
# shared script correct however concurrent calls interleave.
AGENT_LINE = "Thanks for calling, we are open from nine to five on weekdays."
TICKS = os.sysconf("SC_CLK_TCK")
WEBHOOK_LINE = re.compile(r"POST /twilio/voice 200 ([0-9.]+)ms")


# -- unique agent audio ---------------------------------------------------------------------------------------
_plain_tone = openai_double.speech_like_tone
_stamps = itertools.count(1)


def _stamped_tone(duration_ms: int, fmt: AudioFormat) -> bytes:
    """The double's tone with a unique counter in the first 4 bytes of every delta-sized chunk."""
    audio = bytearray(_plain_tone(duration_ms, fmt))
    step = openai_double.DELTA_MS * fmt.bytes_per_ms
    for start in range(0, len(audio), step):
        audio[start : start + 4] = next(_stamps).to_bytes(4, "big")
    return bytes(audio)


openai_double.speech_like_tone = _stamped_tone  # looked up by name on every response


class BenchTwilioDouble(TwilioDouble):
    """Webhooks through a client with a ready SSL context: httpx builds one per client (~20 ms of CPU),
    which with 20 calls starting at once would stall every stream on the callers' loop for ~0.4 s."""

    _ssl = ssl.create_default_context()

    async def _post_webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None, signed: bool = True
    ) -> tuple[float, httpx.Response]:
        headers = {"X-Twilio-Signature": signature or self.sign(url, params), "User-Agent": "TwilioProxy/1.1"}
        async with httpx.AsyncClient(timeout=10, verify=self._ssl) as client:
            at = time.monotonic()
            return at, await client.post(url, data=params, headers=headers)


# -- measurements ---------------------------------------------------------------------------------------------
@dataclass
class CallResult:
    relay_ms: list[float] = field(default_factory=list)
    caller_ms: list[float] = field(default_factory=list)
    relay_sent: list[float] = field(default_factory=list)  # when each measured frame was sent, index for index
    caller_sent: list[float] = field(default_factory=list)
    first_media_at: float = 0.0
    barge_ms: list[float] = field(default_factory=list)
    greeting: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # stream start -> hang-up
    unmatched_media: int = 0
    caller_mismatch: int = 0
    queued_frames: int = 0  # caller frames sent before the bridge was forwarding (set-up), left out


@dataclass
class Phase:
    name: str
    calls: list[CallResult]
    wall_s: float
    server_cpu_s: float
    bench_cpu_s: float
    bench_lag_ms: list[float]
    double_lag_ms: list[float]
    idle_cpu_share: float  # server CPU-s per second while no call is up
    webhook_server_ms: list[float]  # the service's own access-log time for each voice webhook

    def merged(self, attr: str) -> list[float]:
        return [v for c in self.calls for v in getattr(c, attr)]

    def after_setup(self, attr: str) -> list[float]:
        """Frames sent once every call of the phase was greeting its caller (no call set-up under way)."""
        settled = max(c.first_media_at for c in self.calls)
        sent = attr.replace("_ms", "_sent")
        return [v for c in self.calls for v, at in zip(getattr(c, attr), getattr(c, sent), strict=True) if at > settled]

    @property
    def call_minutes(self) -> float:
        return sum(c.seconds for c in self.calls) / 60

    @property
    def call_cpu_s(self) -> float:
        """Server CPU net of what the idle service spends over the same wall time."""
        return self.server_cpu_s - self.idle_cpu_share * self.wall_s


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def snapshot(log: RealtimeSessionLog) -> tuple[list[tuple[float, dict[str, Any]]], list[tuple[float, dict[str, Any]]]]:
    with log._changed:
        return list(zip(log.sent_at, log.sent, strict=True)), list(zip(log.received_at, log.received, strict=True))


def measure(log: RealtimeSessionLog, stream: MediaStream, webhook_at: float, answered_at: float) -> CallResult:
    result = CallResult()
    sent, received = snapshot(log)

    # 1. relay: each delta's stamped payload is unique
    delta_at = {e["delta"]: at for at, e in sent if e.get("type") == "response.output_audio.delta"}
    media_in = [(r.at, r.message["media"]["payload"]) for r in stream.received if r.message.get("event") == "media"]
    for at, payload in media_in:
        sent_at = delta_at.get(payload)
        if sent_at is None:
            result.unmatched_media += 1
        else:
            result.relay_ms.append((at - sent_at) * 1000)
            result.relay_sent.append(sent_at)

    # 2. caller -> model, in stream order
    frames_out = [(at, m["media"]["payload"]) for at, m in stream.sent if m.get("event") == "media"]
    appends = [(at, e["audio"]) for at, e in received if e.get("type") == "input_audio_buffer.append"]
    first_arrival = appends[0][0] if appends else float("inf")
    for (out_at, payload), (in_at, audio) in zip(frames_out, appends, strict=False):
        if payload != audio:
            result.caller_mismatch += 1
        elif out_at < first_arrival:
            result.queued_frames += 1
        else:
            result.caller_ms.append((in_at - out_at) * 1000)
            result.caller_sent.append(out_at)

    # 3. barge-in: each clear against the speech_started sent just before it
    starts = [at for at, e in sent if e.get("type") == "input_audio_buffer.speech_started"]
    for clear_at in stream.clears:
        before = [at for at in starts if at <= clear_at]
        if before:
            result.barge_ms.append((clear_at - before[-1]) * 1000)

    # 4. greeting and where its time goes
    start_at = next(at for at, m in stream.sent if m.get("event") == "start")
    created_at = next(at for at, e in sent if e.get("type") == "session.created")
    create_at = next(at for at, e in received if e.get("type") == "response.create")
    first_delta = min(at for at, e in sent if e.get("type") == "response.output_audio.delta")
    first_media = media_in[0][0]
    result.first_media_at = first_media
    result.greeting = {
        "total": (first_media - webhook_at) * 1000,
        "webhook": (answered_at - webhook_at) * 1000,
        "prewarm": (created_at - webhook_at) * 1000,
        "stream_open": (start_at - answered_at) * 1000,
        "setup": (create_at - start_at) * 1000,
        "model": (first_delta - create_at) * 1000,
        "relay": (first_media - first_delta) * 1000,
    }
    return result


# -- one call -------------------------------------------------------------------------------------------------
def short_utterance(name: str, speech_ms: int) -> bytes:
    """0.3 s of silence, then `speech_ms` of a recorded line."""
    return caller_audio(name)[: (300 + speech_ms) * 8]


def count_sent(log: RealtimeSessionLog, event_type: str) -> int:
    with log._changed:
        return sum(1 for e in log.sent if e.get("type") == event_type)


def find_session(double: OpenAIDouble, phone: str) -> RealtimeSessionLog | None:
    for log in list(double.realtime_sessions):
        if phone in str(log.session_config.get("instructions", "")):
            return log
    return None


async def one_call(server: RunningServer, openai: OpenAIDouble, twilio: TwilioDouble, phone: str) -> CallResult:
    call, answer = await twilio.place_call(server.url + "/twilio/voice", to=BUSINESS_NUMBER, from_=phone)
    assert answer.stream_url, answer.body
    stream = await twilio.open_stream(call, answer)
    found: list[RealtimeSessionLog] = []

    def session_configured() -> bool:
        log = find_session(openai, phone)
        if log is not None:
            found.append(log)
        return log is not None

    await wait_until(session_configured, 20)
    log = found[0]

    def played_out(responses: int) -> Callable[[], bool]:
        return lambda: count_sent(log, "response.done") >= responses and not stream.playing

    await wait_until(played_out(1), 30)  # the greeting has played
    await asyncio.sleep(0.3)
    deltas = count_sent(log, "response.output_audio.delta")
    await stream.speak(short_utterance("hours", 1200))  # a question: VAD start/stop, the answer begins
    await wait_until(lambda: count_sent(log, "response.output_audio.delta") >= deltas + 20, 30)  # ~1 s of answer
    await stream.say(short_utterance("interrupt", 800))  # barge-in
    await wait_until(played_out(3), 30)  # the interrupted answer, then the reply, has played
    await asyncio.sleep(0.3)
    await stream.hang_up()
    start_at = next(at for at, m in stream.sent if m.get("event") == "start")
    result = measure(log, stream, call.webhook_sent_at or 0.0, call.webhook_answered_at or 0.0)
    result.seconds = time.monotonic() - start_at
    return result


# -- the machine ----------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (all threads)


def process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def server_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def bench_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def lag_monitor(samples: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    """How late this event loop wakes: the doubles' own share of any measured latency."""
    while not stop.is_set():
        due = time.monotonic() + period
        await asyncio.sleep(period)
        samples.append((time.monotonic() - due) * 1000)


async def idle_share(pids: list[int], seconds: float = 5.0) -> float:
    before = server_cpu(pids)
    await asyncio.sleep(seconds)
    return (server_cpu(pids) - before) / seconds


def webhook_times(server: RunningServer) -> list[float]:
    return [float(m.group(1)) for m in WEBHOOK_LINE.finditer(server.log())]


async def run_phase(
    name: str, make_calls: Callable[[], Coroutine[Any, Any, list[CallResult]]], server: RunningServer,
    openai: OpenAIDouble, pids: list[int], idle: float,
) -> Phase:
    webhooks_before = len(webhook_times(server))
    stop_main, bench_lag, double_lag = asyncio.Event(), [], []
    stop_double = asyncio.Event()
    assert openai._loop is not None
    double_monitor = asyncio.run_coroutine_threadsafe(lag_monitor(double_lag, stop_double), openai._loop)
    main_monitor = asyncio.create_task(lag_monitor(bench_lag, stop_main))
    cpu0, bench0, wall0 = server_cpu(pids), bench_cpu(), time.monotonic()
    calls = await make_calls()
    await asyncio.sleep(1.0)  # let the finished calls' records and summaries settle into the CPU count
    cpu1, bench1, wall1 = server_cpu(pids), bench_cpu(), time.monotonic()
    stop_main.set()
    openai._loop.call_soon_threadsafe(stop_double.set)
    await main_monitor
    await asyncio.wrap_future(double_monitor)
    return Phase(name, calls, wall1 - wall0, cpu1 - cpu0, bench1 - bench0, bench_lag, double_lag, idle,
                 webhook_times(server)[webhooks_before:])


async def seed(env: dict[str, str], recording: bool) -> None:
    db = Database(load_settings(env))
    try:
        await create_owner(db, name="Bench Salon", phone_number=BUSINESS_NUMBER, recording_enabled=recording,
                           greeting="Thanks for calling Bench Salon.")
    finally:
        await db.dispose()


# -- report ---------------------------------------------------------------------------------------------------
def row(label: str, values: list[float]) -> str:
    if not values:
        return f"| {label} | 0 | - | - | - | - |"
    return (f"| {label} | {len(values)} | {pct(values, 50):.1f} | {pct(values, 95):.1f} | {pct(values, 99):.1f} "
            f"| {max(values):.1f} |")


def report(phase: Phase) -> str:
    greet = {key: [c.greeting[key] for c in phase.calls] for key in phase.calls[0].greeting}
    per_call_min = phase.call_cpu_s / phase.call_minutes if phase.call_minutes else float("nan")
    lines = [
        f"### {phase.name}: {len(phase.calls)} calls, {phase.call_minutes:.1f} call-minutes in {phase.wall_s:.0f} s",
        "",
        "| measure | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
        row("relay: delta sent -> media at caller", phase.merged("relay_ms")),
        row("caller -> model: media sent -> append received", phase.merged("caller_ms")),
        *([] if len(phase.calls) < 2 or "sequential" in phase.name else [
            row("  relay, after every call was set up", phase.after_setup("relay_ms")),
            row("  caller -> model, after every call was set up", phase.after_setup("caller_ms")),
        ]),
        row("barge-in: speech_started sent -> clear at caller", phase.merged("barge_ms")),
        row("greeting: webhook POST -> first agent media", greet["total"]),
        row("  webhook answered (TwiML)", greet["webhook"]),
        row("    of which in the service (its access log)", phase.webhook_server_ms),
        row("  prewarm: realtime session.created (from POST)", greet["prewarm"]),
        row("  caller side: TwiML -> stream `start` sent (double)", greet["stream_open"]),
        row("  service set-up: `start` -> response.create at model", greet["setup"]),
        row("  model: response.create -> first delta (double)", greet["model"]),
        row("  relay of the first delta", greet["relay"]),
        "",
        f"server CPU: {phase.server_cpu_s:.2f} s in {phase.wall_s:.0f} s, {phase.call_cpu_s:.2f} s net of idle "
        f"({phase.idle_cpu_share * 100:.1f}% of a core) over {phase.call_minutes:.2f} call-minutes = "
        f"**{per_call_min:.2f} CPU-s per call-minute** ({per_call_min / 60 * 100:.1f}% of one core per live call; "
        f"one worker's Python thread saturates at ~{60 / per_call_min:.0f} calls)",
        f"bench process CPU: {phase.bench_cpu_s:.1f} s ({phase.bench_cpu_s / phase.wall_s * 100:.0f}% of a core); "
        f"loop lag p50/p95/max: bench {pct(phase.bench_lag_ms, 50):.1f}/{pct(phase.bench_lag_ms, 95):.1f}/"
        f"{max(phase.bench_lag_ms):.1f} ms, OpenAI double {pct(phase.double_lag_ms, 50):.1f}/"
        f"{pct(phase.double_lag_ms, 95):.1f}/{max(phase.double_lag_ms):.1f} ms",
    ]
    problems = {
        "agent media frames not matched to a delta": sum(c.unmatched_media for c in phase.calls),
        "caller frames whose payload differed at the model": sum(c.caller_mismatch for c in phase.calls),
    }
    queued = sum(c.queued_frames for c in phase.calls)
    lines.append(f"caller frames queued during call set-up (left out of caller -> model): {queued}")
    lines += [f"WARNING: {count} {what}" for what, count in problems.items() if count]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------------------
async def main_async(args: argparse.Namespace, server: RunningServer, openai: OpenAIDouble,
                     twilio: TwilioDouble) -> list[Phase]:
    pids = process_tree(server.process.pid)
    phones = (f"+1555800{k:04d}" for k in itertools.count())
    total = args.calls + args.concurrent + 1
    for _ in range(total * 3 + 10):
        openai.realtime.say(AGENT_LINE)
    for _ in range(total * 2 + 10):
        openai.realtime.caller("What time do you open?")

    await one_call(server, openai, twilio, next(phones))  # warm-up: imports, first connections, caches
    await asyncio.sleep(2.0)
    idle = await idle_share(pids)
    # This process holds the doubles: keep its full garbage collections (~0.1 s over everything imported)
    # out of the measurements.
    gc.collect()
    gc.freeze()
    phases = []
    if args.calls:
        async def sequential() -> list[CallResult]:
            results = []
            for _ in range(args.calls):
                results.append(await one_call(server, openai, twilio, next(phones)))
                await asyncio.sleep(args.gap)  # the ended call's record and summary are written meanwhile
            return results

        phases.append(await run_phase(f"{args.calls} sequential calls", sequential, server, openai, pids, idle))
        print(report(phases[-1]), "\n", flush=True)
    if args.concurrent:
        async def concurrent() -> list[CallResult]:
            batch = [next(phones) for _ in range(args.concurrent)]
            return list(await asyncio.gather(*(one_call(server, openai, twilio, p) for p in batch)))

        phases.append(await run_phase(f"{args.concurrent} concurrent calls", concurrent, server, openai, pids, idle))
        print(report(phases[-1]), "\n", flush=True)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10, help="sequential calls (0: none)")
    parser.add_argument("--concurrent", type=int, default=0, help="then this many calls at once (0: none)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between sequential calls")
    parser.add_argument("--recording", action="store_true", help="the business records its calls")
    args = parser.parse_args()
    # Two doubles share this process's GIL with the callers' loop: hand it over faster than the 5 ms default,
    # so a thread that has a frame to stamp isn't kept waiting.
    sys.setswitchinterval(0.0005)

    with (
        tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp,
        OpenAIDouble() as openai,
        BenchTwilioDouble() as twilio,
    ):
        data_dir = Path(tmp)
        env = phone_env(data_dir, openai, twilio)
        with run_server(env) as server:
            asyncio.run(seed(server.env, args.recording))
            twilio.status_callback_url = server.url + "/twilio/status"
            asyncio.run(main_async(args, server, openai, twilio))
            log = server.log()
        if "Traceback" in log:
            print("WARNING: the server logged a traceback:\n" + log[-3000:])


if __name__ == "__main__":
    main()
