"""Barge-in and the supervisor's fallback, through the real SDK and the OpenAI double."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Call, CallEvent
from app.settings import Settings
from app.voice.bridge import truncation_point
from app.voice.supervisor import FALLBACK
from tests.doubles.openai_double import OpenAIDouble
from tests.support.voice import ASSETS, place_call, silence, wav_pcm
from tests.support.waiting import wait_until

pytest_plugins = ("tests.support.voice_fixtures",)

LONG_GREETING = (
    "Thanks for calling Sam's Salon. We do haircuts and colour, we're open six days a week, "
    "and we'd love to help you look your best. How can I help you today?"
)


def test_truncation_point_is_what_was_heard_clamped_to_what_was_produced() -> None:
    assert truncation_point(1200, 3000) == 1200
    assert truncation_point(3400, 3000) == 3000  # reported playback ahead of production: clamp
    assert truncation_point(-5, 3000) == 0
    assert truncation_point(0, 0) == 0


async def test_barge_in_truncates_at_what_the_caller_heard(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    double.realtime.say(LONG_GREETING).caller("Wait, sorry, actually make it the afternoon.").say("Sure.")
    live = await place_call(call_settings, call_db)
    rt = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    await asyncio.to_thread(rt.wait_for_sent, "response.output_audio.delta", 5.0, 20)  # ~1 s in
    await live.transport.speak(wav_pcm(ASSETS / "interrupt-24k.wav")[: 48 * 1500])
    truncate = await asyncio.to_thread(rt.wait_for_received, "conversation.item.truncate", 5.0)

    # Playback stopped at once, and the cut is where the caller's speaker actually was.
    assert len(live.transport.clears) == 1
    item_id, heard_at_clear = live.transport.cleared_heard[0]
    assert truncate["item_id"] == item_id
    assert abs(truncate["audio_end_ms"] - heard_at_clear) <= 20  # within one frame
    produced_ms = live.bridge.produced_ms(item_id)
    assert truncate["audio_end_ms"] <= produced_ms
    assert len(LONG_GREETING) * 60 > produced_ms  # really cut short
    await asyncio.sleep(0.3)
    assert not [e for e in rt.sent_of_type("error") if e["error"].get("code") == "invalid_value"]
    assert rt.sent_of_type("conversation.item.truncated")
    # Nothing more of the interrupted item reaches the caller after the clear.
    cleared_at = live.transport.clears[0]
    assert sum(seg.ms for seg in live.transport.segments if seg.item_id == item_id and seg.start >= cleared_at) == 0

    await live.transport.speak(silence(600))
    await asyncio.to_thread(rt.wait_for_sent, "response.done", 10.0, 2)
    live.transport.leave("hangup")
    await asyncio.wait_for(live.task, 10)
    async with call_db.session() as s:
        events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == live.call_id)))
    barge = [e for e in events if e.text == "caller interrupted"]
    assert len(barge) == 1 and barge[0].data["audio_end_ms"] == truncate["audio_end_ms"]


async def test_supervisor_timeout_gives_the_honest_fallback(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    call_settings = dataclasses.replace(call_settings, supervisor_timeout_seconds=1)
    double.realtime.say("Hello!").caller("Do you have anything free on Friday?").tool(
        "getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "free on Friday?"},
        say_first="One moment.",
    ).say_from_tool_output()
    double.responses.for_model("gpt-4.1").delay(2.5).text("We have ten a.m. free.")
    live = await place_call(call_settings, call_db)
    rt = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    await asyncio.to_thread(rt.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(3)
    await live.transport.speak(wav_pcm(ASSETS / "book-24k.wav")[: 48 * 1600] + silence(700))
    output = await asyncio.to_thread(rt.wait_for_received, "conversation.item.create", 8.0)
    assert FALLBACK in output["item"]["output"]
    await asyncio.to_thread(rt.wait_for_sent, "response.done", 10.0, 3)
    await wait_until(lambda: ("agent", FALLBACK, True) in live.transport.captions)  # the caller heard it
    live.transport.leave("hangup")
    await asyncio.wait_for(live.task, 10)
    async with call_db.session() as s:
        call = await s.get(Call, live.call_id)
        events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == live.call_id)))
    assert call is not None and f"Agent: {FALLBACK}" in call.transcript
    assert any(e.kind == "error" and "timed out" in e.text for e in events)
    turn = next(t for t in call.latencies if "supervisor_ms" in t)
    assert 950 <= turn["supervisor_ms"] < 2000
