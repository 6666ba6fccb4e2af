"""A realtime socket that drops mid-call is bridged: a new session with the call restored, a short resume
line, the gap in the record, the words the caller heard of the cut answer kept; a long call rolls over to a
fresh session before OpenAI's limit without the caller hearing it. Through the runtime, the real SDK and the
OpenAI double."""

from __future__ import annotations

import asyncio

from app.billing.pricing import TokenUsage, from_realtime
from app.db.engine import Database
from app.settings import Settings
from app.voice.bridge import RECONNECTS_PER_WINDOW, CallLimits
from app.voice.resume import RESUME_LINE, heard_part, restore_events
from tests.doubles.openai_double import OpenAIDouble
from tests.support.voice import ASSETS, LiveCall, call_record, place_call, silence, wav_pcm

pytest_plugins = ("tests.support.voice_fixtures",)

LONG = ("We are open every weekday from nine in the morning until five in the evening, and on Saturdays "
        "from ten until two, and we are closed on Sundays and on public holidays.")


def realtime_usage(double: OpenAIDouble) -> dict[str, int]:
    """What the double billed on every realtime session of the call, as the app counts it."""
    total = TokenUsage()
    for log in double.realtime_sessions:
        for event in log.sent_of_type("response.done"):
            total.add(from_realtime(event["response"].get("usage")))
    return total.as_dict()


async def speak(live: LiveCall, name: str = "book") -> None:
    await live.transport.speak(wav_pcm(ASSETS / f"{name}-24k.wav")[: 48 * 1500] + silence(800))


async def test_two_drops_mid_answer_are_bridged(call_settings: Settings, call_db: Database,
                                                double: OpenAIDouble) -> None:
    double.realtime.say("Hello, Sam's Salon.")
    double.realtime.caller("What are your hours?")
    double.realtime.say(LONG, drop_after_ms=1500)
    double.realtime.say(RESUME_LINE)
    double.realtime.caller("What are your hours, please?")
    double.realtime.say(LONG, drop_after_ms=1000)
    double.realtime.say(RESUME_LINE)
    double.realtime.caller("Thanks, goodbye.")
    double.realtime.tool("end_call", {}, say_first="Goodbye!")
    live = await place_call(call_settings, call_db)
    first = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    await asyncio.to_thread(first.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(5)
    await speak(live)
    second = await asyncio.to_thread(double.wait_for_session, 1, 10.0)
    assert first.dropped
    await asyncio.to_thread(second.wait_for_sent, "response.done", 10.0, 1)  # the resume line
    await live.transport.wait_played(8)
    await speak(live)
    third = await asyncio.to_thread(double.wait_for_session, 2, 10.0)
    await asyncio.to_thread(third.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(8)
    await speak(live, "bye")
    ending = await asyncio.wait_for(live.task, 30)
    assert (ending.status, ending.reason) == ("completed", "goodbye")
    assert live.bridge.reconnects == 2

    # The new sessions got the call back: configuration, the conversation so far, and the resume line.
    assert third.session_config["instructions"] == first.session_config["instructions"]
    restored = [e["item"] for e in third.received_of_type("conversation.item.create")]
    texts = [part["text"] for item in restored for part in item["content"]]
    assert texts[0] == "Hello, Sam's Salon." and "What are your hours?" in texts
    created = third.received_of_type("response.create")[0]
    assert RESUME_LINE in created["response"]["instructions"]

    call, events = await call_record(call_db, live)
    gaps = [e for e in events if e.text.startswith("realtime connection")]
    assert [e.text for e in gaps] == ["realtime connection lost: reconnecting", "realtime connection restored"] * 2
    assert all(e.data["gap_ms"] < 3000 for e in gaps if "gap_ms" in e.data)
    # What the caller heard of each cut answer is kept, truncated; no turn is lost.
    cut = [e for e in events if e.kind == "agent" and e.data.get("truncated")]
    assert len(cut) == 2 and all(LONG.startswith(e.text) and 0 < len(e.text) < len(LONG) for e in cut)
    lines = call.transcript.splitlines()
    assert lines[0] == "Agent: Hello, Sam's Salon." and f"Agent: {RESUME_LINE}" in lines
    assert sum(1 for line in lines if line.startswith("Caller:")) == 3 and lines[-1] == "Agent: Goodbye!"
    # Cost covers every session's billed responses.
    billed = realtime_usage(double)
    assert {k: call.usage["realtime"][k] for k in billed} == billed and call.cost_usd > 0
    assert sum(1 for log in double.realtime_sessions if log.sent_of_type("response.done")) == 3
    assert len({log.id for log in double.realtime_sessions}) == 3


async def test_a_long_call_rolls_over_to_a_new_session_unnoticed(call_settings: Settings, call_db: Database,
                                                                 double: OpenAIDouble) -> None:
    double.realtime.say("Hello, Sam's Salon.")
    double.realtime.caller("What are your hours?")
    double.realtime.say("Nine to five.")
    double.realtime.caller("Thanks, goodbye.")
    double.realtime.tool("end_call", {}, say_first="Goodbye!")
    live = await place_call(call_settings, call_db, limits=CallLimits(realtime_session_seconds=2.0))
    first = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    second = await asyncio.to_thread(double.wait_for_session, 1, 10.0)  # rolled over after ~2 s of quiet
    await asyncio.to_thread(first.closed.wait, 5)
    assert not first.dropped and not second.received_of_type("response.create")  # nothing said about it
    await speak(live)
    await asyncio.to_thread(second.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(5)
    await speak(live, "bye")
    ending = await asyncio.wait_for(live.task, 30)
    assert ending.reason == "goodbye" and live.bridge.rollovers >= 1 and live.bridge.reconnects == 0
    call, events = await call_record(call_db, live)
    assert "realtime session rolled over" in [e.text for e in events]
    assert "Agent: Nine to five." in call.transcript and RESUME_LINE not in call.transcript


async def test_a_link_that_keeps_dropping_goes_to_the_fallback_instead_of_reconnecting_forever(
        call_settings: Settings, call_db: Database, double: OpenAIDouble) -> None:
    # An upstream that accepts every new session and cuts it at once: each reconnect "succeeds", so only a
    # budget per window stops a storm of billed sessions and resume lines.
    double.realtime.say("Hello, Sam's Salon.", drop_after_ms=300)
    for _ in range(RECONNECTS_PER_WINDOW + 2):
        double.realtime.say(RESUME_LINE, drop_after_ms=100)
    live = await place_call(call_settings, call_db)
    ending = await asyncio.wait_for(live.task, 60)
    assert (ending.status, ending.reason) == ("failed", "realtime_lost")
    assert live.bridge.reconnects == RECONNECTS_PER_WINDOW
    assert len(double.realtime_sessions) == RECONNECTS_PER_WINDOW + 1
    _call, events = await call_record(call_db, live)
    assert "realtime connection keeps dropping" in [e.text for e in events]


def test_restore_events_and_heard_part() -> None:
    events = restore_events({"type": "realtime"}, [("caller", "hi"), ("agent", "hello")],
                            {"call_1": ("getNextResponseFromSupervisor", "{}")})
    assert [e["type"] for e in events] == ["session.update"] + ["conversation.item.create"] * 3
    assert events[1]["item"]["content"] == [{"type": "input_text", "text": "hi"}]
    assert events[2]["item"]["content"] == [{"type": "output_text", "text": "hello"}]
    assert events[3]["item"] == {"type": "function_call", "call_id": "call_1",
                                 "name": "getNextResponseFromSupervisor", "arguments": "{}"}
    assert heard_part("one two three four", 500, 1000) == "one two"
    assert heard_part("one two", 5000, 1000) == "one two" and heard_part("x", 0, 0) == ""


