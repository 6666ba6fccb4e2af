"""However a call ends — goodbye, caller hang-up, dropped socket, realtime error, OpenAI unreachable, the
length limit, caller silence, service shutdown — its record is finalised exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Call, CallEvent, CallStatus, Job, Session
from app.settings import Settings
from app.voice.bridge import UNAVAILABLE_MESSAGE, CallLimits
from app.voice.recorder import CallRecorder
from tests.doubles.openai_double import OpenAIDouble
from tests.support.voice import ASSETS, GREETING, LiveCall, PlaybackTransport, place_call, silence, wav_pcm

pytest_plugins = ("tests.support.voice_fixtures",)


async def finished(live: LiveCall, timeout: float = 15) -> Any:
    return await asyncio.wait_for(live.task, timeout)


async def assert_finalised_once(db: Database, live: LiveCall, status: str, reason: str) -> Call:
    async with db.session() as s:
        call = await s.get(Call, live.call_id)
        session = await s.get(Session, live.session_id)
        jobs = list(await s.scalars(select(Job).where(Job.kind == "summary")))
        endings = await s.scalar(
            select(func.count()).select_from(CallEvent).where(
                CallEvent.call_id == live.call_id, CallEvent.kind == "system", CallEvent.text.like("call ended%")
            )
        )
    assert call is not None and session is not None
    assert (call.status, call.end_reason) == (status, reason)
    assert call.ended_at is not None and call.duration_seconds > 0
    assert session.ended_at is not None
    assert session.status == ("failed" if status == "failed" else "completed")
    assert [j.payload["call_id"] for j in jobs] == [str(live.call_id)]
    assert endings == 1
    # A second ending — in this process or another — changes nothing.
    assert await live.bridge.recorder.finalise(CallStatus.FAILED, "late") is False
    other = CallRecorder(db, call_id=live.call_id, session_id=live.session_id, business_id=live.business_id,
                         started_at=call.started_at)
    assert await other.finalise(CallStatus.FAILED, "other process") is False
    async with db.session() as s:
        again = await s.get(Call, live.call_id)
        assert again is not None and (again.status, again.end_reason) == (status, reason)
        assert await s.scalar(select(func.count()).select_from(Job)) == 1
    return call


async def greeted(double: OpenAIDouble, live: LiveCall) -> None:
    rt = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    await asyncio.to_thread(rt.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(5)


async def test_goodbye_hangs_up_after_the_goodbye_played(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    double.realtime.say("Hello!").caller("That's all, thank you. Goodbye.").tool(
        "end_call", {}, say_first="Goodbye, have a lovely day!"
    )
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    await live.transport.speak(wav_pcm(ASSETS / "bye-24k.wav") + silence(700))
    ending = await finished(live)
    assert ending.reason == "goodbye"
    assert live.transport.hung_up == ["goodbye"]
    assert live.transport.hung_up_at is not None and live.transport.hung_up_at >= live.transport.audio_end - 0.01
    call = await assert_finalised_once(call_db, live, "completed", "goodbye")
    assert "Agent: Goodbye, have a lovely day!" in call.transcript


async def test_caller_hangs_up_before_speaking(call_settings: Settings, call_db: Database,
                                               double: OpenAIDouble) -> None:
    double.realtime.say("Hello!")
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    live.transport.leave("hangup")
    assert (await finished(live)).reason == "caller_hangup"
    assert live.transport.hung_up == []  # the caller is already gone
    await assert_finalised_once(call_db, live, "abandoned", "caller_hangup")


async def test_socket_drop_mid_greeting(call_settings: Settings, call_db: Database, double: OpenAIDouble) -> None:
    double.realtime.say(GREETING * 3)
    live = await place_call(call_settings, call_db)
    await asyncio.to_thread(lambda: double.wait_for_session(0, 5.0).wait_for_sent("response.output_audio.delta"))
    live.transport.leave("disconnected")
    assert (await finished(live)).reason == "caller_disconnected"
    await assert_finalised_once(call_db, live, "abandoned", "caller_disconnected")
    rt = double.realtime_sessions[0]
    await asyncio.to_thread(rt.closed.wait, 5)
    assert rt.closed.is_set()  # the realtime socket is not left open (and billing)


async def test_a_realtime_session_lost_for_good_ends_the_call_as_failed(call_settings: Settings, call_db: Database,
                                                                        double: OpenAIDouble) -> None:
    double.realtime.say("Hello!").expire_after(1.0)
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    double.refuse_connects = 2  # both reconnect attempts are refused
    ending = await finished(live)
    assert ending.reason == "realtime_lost" and ending.status == "failed"
    await assert_finalised_once(call_db, live, "failed", "realtime_lost")
    assert double.refused_connects == 2
    async with call_db.session() as s:
        session = await s.get(Session, live.session_id)
    assert session is not None and session.failure_reason


async def test_openai_unreachable_tells_the_caller(call_settings: Settings, call_db: Database,
                                                   double: OpenAIDouble) -> None:
    double.fail_realtime_connect = True
    live = await place_call(call_settings, call_db)
    ending = await finished(live, 15)
    assert ending.reason == "openai_unavailable"
    assert live.transport.notices == [UNAVAILABLE_MESSAGE] and live.transport.hung_up == ["openai_unavailable"]
    await assert_finalised_once(call_db, live, "failed", "openai_unavailable")
    async with call_db.session() as s:
        session = await s.get(Session, live.session_id)
    assert session is not None and "HTTP 500" in (session.failure_reason or "")


async def test_no_api_key_fails_plainly(data_dir: Any, call_env: dict[str, str], double: OpenAIDouble) -> None:
    from app.db import migrate
    from tests.conftest import make_settings

    settings = make_settings(data_dir)  # no OPENAI_API_KEY
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database(settings)
    try:
        live = await place_call(settings, db)
        assert (await finished(live, 5)).reason == "openai_unavailable"
        assert live.transport.notices == [UNAVAILABLE_MESSAGE]
        await assert_finalised_once(db, live, "failed", "openai_unavailable")
        async with db.session() as s:
            session = await s.get(Session, live.session_id)
        assert session is not None and "OPENAI_API_KEY" in (session.failure_reason or "")
        assert double.realtime_sessions == []
    finally:
        await db.dispose()


async def test_length_limit_says_goodbye_then_ends(call_settings: Settings, call_db: Database,
                                                   double: OpenAIDouble) -> None:
    double.realtime.say("Hello!").say("I'm sorry, we have to end the call now. Goodbye!")
    live = await place_call(call_settings, call_db, limits=CallLimits(max_call_seconds=1.5))
    ending = await finished(live)
    assert ending.reason == "max_duration"
    rt = double.realtime_sessions[0]
    creates = rt.received_of_type("response.create")
    assert "time limit" in creates[-1]["response"]["instructions"]
    assert live.transport.hung_up == ["max_duration"]
    call = await assert_finalised_once(call_db, live, "completed", "max_duration")
    assert "Agent: I'm sorry, we have to end the call now. Goodbye!" in call.transcript


async def test_silence_prompts_once_then_says_goodbye(call_settings: Settings, call_db: Database,
                                                      double: OpenAIDouble) -> None:
    double.realtime.say("Hello!").say("Are you still there?").say("I'll end the call now. Goodbye!")
    limits = CallLimits(max_call_seconds=60, silence_prompt_seconds=0.6, silence_goodbye_seconds=0.6)
    live = await place_call(call_settings, call_db, limits=limits)
    assert (await finished(live)).reason == "silence"
    rt = double.realtime_sessions[0]
    instructions = [e.get("response", {}).get("instructions", "") for e in rt.received_of_type("response.create")]
    assert len(instructions) == 3 and "still there" in instructions[1] and "end the call" in instructions[2]
    await assert_finalised_once(call_db, live, "completed", "silence")


async def test_shutdown_finalises_live_calls(call_settings: Settings, call_db: Database,
                                             double: OpenAIDouble) -> None:
    double.realtime.say("Hello!")
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    await live.runtime.stop()
    assert live.task.done() and live.task.result().reason == "service_restart"
    await assert_finalised_once(call_db, live, "failed", "service_restart")


async def test_two_endings_at_once_finalise_once(call_settings: Settings, call_db: Database,
                                                 double: OpenAIDouble) -> None:
    double.realtime.say("Hello!")
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    live.transport.leave("disconnected")
    live.bridge.end(CallStatus.FAILED, "error", "boom")
    results = await asyncio.gather(live.bridge.recorder.finalise(CallStatus.COMPLETED, "racing"), finished(live))
    assert results[0] is True  # whichever came first wins; here the racing call was first
    await assert_finalised_once(call_db, live, "completed", "racing")


async def test_a_cancelled_handler_still_finalises(call_settings: Settings, call_db: Database,
                                                   double: OpenAIDouble) -> None:
    double.realtime.say("Hello!")
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    live.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await live.task
    await assert_finalised_once(call_db, live, "failed", "service_restart")


async def test_transfer_to_a_person_ends_as_transferred(call_settings: Settings, call_db: Database,
                                                        double: OpenAIDouble) -> None:
    double.realtime.say("Hello!").caller("Can I speak to a real person, please?").tool(
        "transfer_to_human", {}, say_first="Of course, transferring you now."
    )
    transport = PlaybackTransport(channel="twilio", can_transfer=True)
    live = await place_call(call_settings, call_db, transport=transport, transfer_number="+15550001111")
    await greeted(double, live)
    await transport.speak(wav_pcm(ASSETS / "person-24k.wav") + silence(700))
    assert (await finished(live)).reason == "transferred"
    assert transport.transfers == ["+15550001111"]
    await assert_finalised_once(call_db, live, "transferred", "transferred")


async def test_browser_cannot_transfer_and_says_so(call_settings: Settings, call_db: Database,
                                                   double: OpenAIDouble) -> None:
    double.realtime.say("Hello!").caller("Can I speak to a real person, please?").tool(
        "transfer_to_human", {}
    ).say_from_tool_output()
    live = await place_call(call_settings, call_db, transfer_number="+15550001111")
    await greeted(double, live)
    await live.transport.speak(wav_pcm(ASSETS / "person-24k.wav") + silence(700))
    rt = double.realtime_sessions[0]
    output = await asyncio.to_thread(rt.wait_for_received, "conversation.item.create", 8.0)
    assert '"transferred": false' in output["item"]["output"] and "browser" in output["item"]["output"]
    await asyncio.to_thread(rt.wait_for_sent, "response.created", 5.0, 3)  # the model explains
    assert live.transport.transfers == ["+15550001111"]  # asked, and the browser said no
    live.transport.leave("hangup")
    await finished(live)
    await assert_finalised_once(call_db, live, "completed", "caller_hangup")


async def test_a_caller_leaving_mid_answer_still_gets_the_answer_counted(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    long_answer = "We are open from nine until five on weekdays, and from ten until two on Saturdays. " * 4
    double.realtime.say("Hello!").caller("When are you open?").say(long_answer)
    live = await place_call(call_settings, call_db)
    await greeted(double, live)
    rt = double.realtime_sessions[0]
    await live.transport.speak(wav_pcm(ASSETS / "book-24k.wav")[: 48 * 1200] + silence(700))
    await asyncio.to_thread(rt.wait_for_sent, "response.output_audio.delta", 10.0,
                            len(rt.sent_of_type("response.output_audio.delta")) + 5)
    live.transport.leave("hangup")  # halfway through the answer
    assert (await finished(live)).reason == "caller_hangup"

    # The answer was cancelled rather than left to run, and what it cost is in the record.
    assert rt.received_of_type("response.cancel")
    done = rt.sent_of_type("response.done")
    assert len(done) == 2 and done[1]["response"]["status"] == "cancelled"
    billed = sum(d["response"]["usage"]["output_token_details"]["audio_tokens"] for d in done)
    call = await assert_finalised_once(call_db, live, "completed", "caller_hangup")
    assert call.usage["realtime"]["audio_output"] == billed
    assert len(rt.received_of_type("response.create")) == 1  # the greeting; nothing more was asked after
