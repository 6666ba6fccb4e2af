"""Fault injection over the call engine: OpenAI realtime sockets dropped at random points mid-answer (once or
twice a call), reconnects refused (the call goes to the fallback), caller sockets dropped without a goodbye,
and a service stop with calls live. Each call runs through the real runtime, the openai SDK and the OpenAI
double on a real database; the run reports calls finalised exactly once, transcript turns lost, calls that
reconnected and calls that reached the fallback.

    .venv/bin/python bench/bench_faults.py            # short form: 12 calls, about a minute
    .venv/bin/python bench/bench_faults.py --calls 300      # the long form

A turn is lost when a caller line the model heard, or an agent answer it finished, is missing from the
call's transcript; a cut answer counts as kept when the words the caller heard are in the transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from app.db import migrate
from app.db.engine import Database
from app.db.models import Call, CallEvent
from app.settings import load_settings
from app.voice.resume import RESUME_LINE
from tests.doubles.openai_double import OpenAIDouble
from tests.support.server import base_env
from tests.support.voice import ASSETS, place_call, silence, wav_pcm

LONG = ("We are open every weekday from nine in the morning until five in the evening, and on Saturdays "
        "from ten until two, and closed on Sundays.")
FAULTS = ("drop_once", "drop_twice", "refused", "caller_drop", "none", "stop")


def answers(double: OpenAIDouble) -> int:
    """Responses the model finished or lost to a drop, over every session of the call."""
    done = sum(len(log.sent_of_type("response.done")) for log in double.realtime_sessions)
    return done + sum(1 for log in double.realtime_sessions if log.dropped)


async def one_call(settings: Any, db: Database, double: OpenAIDouble, fault: str, rng: random.Random) -> dict[str, Any]:
    # One double, one script: the calls of a run go one after another.
    double.reset()
    script = double.realtime
    script.say("Hello, Sam's Salon.")
    script.caller("What are your hours?")
    drops = {"drop_once": 1, "drop_twice": 2, "refused": 1}.get(fault, 0)
    for _ in range(drops):
        script.say(LONG, drop_after_ms=rng.randint(200, 2500))
        script.say(RESUME_LINE)
        script.caller("What are your hours, please?")
    script.say("Nine to five on weekdays.")
    script.caller("Thanks, goodbye.")
    script.tool("end_call", {}, say_first="Goodbye!")
    if fault == "refused":
        double.refuse_connects = 0
    live = await place_call(settings, db)
    speech = wav_pcm(ASSETS / "book-24k.wav")[: 48 * 1500] + silence(800)
    try:
        first = await asyncio.to_thread(double.wait_for_session, 0, 10.0)
        await asyncio.to_thread(first.wait_for_sent, "response.done", 15.0, 1)
        await live.transport.wait_played(5)
        if fault == "refused":
            double.refuse_connects = 2
        rounds = drops + 2 if fault != "refused" else 1
        for index in range(rounds):
            if live.task.done():
                break
            if fault == "caller_drop" and index == 1:
                live.transport.leave("disconnected")
                break
            if fault == "stop" and index == 1:
                await live.runtime.stop()
                break
            before = answers(double)
            await live.transport.speak(speech if index < rounds - 1 else wav_pcm(ASSETS / "bye-24k.wav")
                                       + silence(800))
            # The caller waits for the answer (through any drop and its resume line) before speaking again.
            deadline = time.monotonic() + 20
            while answers(double) < before + (2 if index < drops else 1) and time.monotonic() < deadline:
                if live.task.done():
                    break
                await asyncio.sleep(0.05)
            await live.transport.wait_played(10)
        ending = await asyncio.wait_for(live.task, 40)
    finally:
        await live.runtime.stop()
    heard = [e["transcript"].strip() for log in double.realtime_sessions
             for e in log.sent_of_type("conversation.item.input_audio_transcription.completed")]
    answered = [e["transcript"].strip() for log in double.realtime_sessions
                for e in log.sent_of_type("response.output_audio_transcript.done")]
    async with db.session() as s:
        call = await s.get(Call, live.call_id)
        endings = await s.scalar(select(func.count()).select_from(CallEvent).where(
            CallEvent.call_id == live.call_id, CallEvent.text.like("call ended%")))
    assert call is not None
    lines = call.transcript.splitlines()
    lost = sum(1 for text in heard if text and f"Caller: {text}" not in lines)
    lost += sum(1 for text in answered if text and f"Agent: {text}" not in lines)
    return {"fault": fault, "reason": ending.reason, "finalised_once": call.ended_at is not None and endings == 1,
            "lost": lost, "sessions": len(double.realtime_sessions), "reconnected": live.bridge.reconnects > 0,
            "fallback": ending.reason == "realtime_lost"}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=12, help="calls to run (each fault in turn)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    started = time.monotonic()
    results = []
    with OpenAIDouble(api_key="test-key") as double:
        settings = load_settings(base_env(data, OPENAI_API_KEY="test-key", OPENAI_BASE_URL=double.base_url,
                                          SUPERVISOR_TIMEOUT_SECONDS="3", LOG_LEVEL="ERROR"))
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database(settings)
        try:
            for index in range(args.calls):
                fault = FAULTS[index % len(FAULTS)]
                results.append(await one_call(settings, db, double, fault, rng))
                print(results[-1], flush=True)
        finally:
            await db.dispose()
    by_fault = Counter(r["fault"] for r in results)
    print(f"\n{len(results)} calls in {time.monotonic() - started:.0f} s; faults: {dict(by_fault)}")
    print(f"finalised exactly once: {sum(r['finalised_once'] for r in results)}/{len(results)}")
    print(f"transcript turns lost: {sum(r['lost'] for r in results)}")
    print(f"calls that reconnected: {sum(r['reconnected'] for r in results)}")
    print(f"calls that reached the fallback: {sum(r['fallback'] for r in results)}")
    print(f"endings: {dict(Counter(r['reason'] for r in results))}")
    if not all(r["finalised_once"] for r in results) or any(r["lost"] for r in results):
        raise SystemExit("FAIL: a call was not finalised exactly once, or a turn was lost")


if __name__ == "__main__":
    asyncio.run(main())
