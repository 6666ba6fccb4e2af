"""The GPT-Live engine in process: the runtime and the real SDK against the Live double (on the OpenAI
double's server). Client delegation to our supervisor, call control, barge-in, usage and cost, fallback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from app.billing.pricing import live_cost_usd
from app.db.engine import Database
from app.db.models import Appointment
from app.settings import Settings
from tests.doubles.live_double import LiveSessionLog
from tests.doubles.openai_double import OpenAIDouble
from tests.support.voice import (
    ASSETS,
    LiveCall,
    PlaybackTransport,
    call_record,
    next_open_weekday,
    place_call,
    silence,
    wav_pcm,
)

pytest_plugins = ("tests.support.voice_fixtures",)


async def finished(live: LiveCall, timeout: float = 20) -> Any:
    return await asyncio.wait_for(live.task, timeout)


async def live_session(double: OpenAIDouble, index: int = 0) -> LiveSessionLog:
    return await asyncio.to_thread(double.wait_for_live_session, index, 5.0)


async def greeted(double: OpenAIDouble, live: LiveCall) -> LiveSessionLog:
    log = await live_session(double)
    await asyncio.to_thread(log.wait_for_sent, "session.usage.updated", 10.0, 1)  # after the greeting
    await live.transport.wait_played(5)
    return log


def assert_protocol_clean(log: LiveSessionLog) -> None:
    assert log.protocol_errors == []
    assert not log.sent_of_type("error")


async def test_live_session_starts_with_client_delegation_and_greets(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    double.live.say("Thanks for calling Sam's Salon, how can I help?")
    live = await place_call(call_settings, call_db, voice_engine="live")
    log = await greeted(double, live)
    start = log.received[0]
    assert start["type"] == "session.start"
    assert start["session"]["model"] == "gpt-live-1.1"
    assert start["session"]["delegation"] == {"type": "client"}
    assert start["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 24000}  # the browser
    assert "Sam's Salon" in start["session"]["instructions"]
    greeting = log.received_of_type("session.commentary.append")[0]
    assert greeting["delegation_id"] is None and "Thanks for calling Sam's Salon" in greeting["content"]
    assert sum(live.transport.received.values()) > 0  # the greeting's audio reached the caller
    assert double.realtime_sessions == [] or all(s.closed.is_set() for s in double.realtime_sessions)
    live.transport.leave("hangup")
    await finished(live)
    call, _events = await call_record(call_db, live)
    assert call.engine == "live"
    assert "Agent: Thanks for calling Sam's Salon, how can I help?" in call.transcript
    assert call.usage["live"]["model"] == "gpt-live-1.1"
    assert_protocol_clean(log)
    assert log.received[-1]["type"] == "session.close"  # closed properly, final usage collected


async def test_booking_through_a_client_delegation_then_goodbye_hangs_up(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    day = next_open_weekday()
    double.live.say("Hello!").caller("I'd like to book a haircut tomorrow at ten.").delegate(
        say_first="One moment."
    ).say_from_commentary().caller("That's all, thank you. Goodbye.").delegate().say_from_commentary()
    double.responses.for_model("gpt-4.1").function_call(
        "book_appointment", {"service": "Haircut", "start": f"{day.isoformat()}T10:00", "customer_name": "Ann Lee",
                             "customer_phone": "+15553334444"}
    ).text("You're booked for a haircut at ten.").function_call("end_call", {}).text("Goodbye, have a lovely day!")
    live = await place_call(call_settings, call_db, voice_engine="live")
    log = await greeted(double, live)

    await live.transport.speak(wav_pcm(ASSETS / "book-24k.wav") + silence(700))
    answer = await asyncio.to_thread(log.wait_for_received, "session.commentary.append", 10.0, 2)
    delegation = log.sent_of_type("session.delegation.created")[0]["delegation"]
    assert answer["delegation_id"] == delegation["id"] and answer["content"] == "You're booked for a haircut at ten."
    # The model kept talking while the supervisor worked: the filler went out before the answer came back.
    filler_at = log.sent_at[log.sent.index(log.sent_of_type("session.output_audio.delta")[-1])]
    assert log.sent_of_type("session.output_transcript.delta")
    await asyncio.to_thread(log.wait_for_sent, "session.usage.updated", 10.0, 3)
    await live.transport.wait_played(8)

    await live.transport.speak(wav_pcm(ASSETS / "bye-24k.wav") + silence(700))
    ending = await finished(live)
    assert ending.reason == "goodbye"
    assert live.transport.hung_up == ["goodbye"]
    assert live.transport.hung_up_at is not None and live.transport.hung_up_at >= live.transport.audio_end - 0.01
    assert filler_at > 0

    call, events = await call_record(call_db, live)
    assert (call.status, call.end_reason, call.engine) == ("completed", "goodbye", "live")
    assert "Caller: I'd like to book a haircut tomorrow at ten." in call.transcript
    assert "Agent: You're booked for a haircut at ten." in call.transcript
    assert "Agent: Goodbye, have a lovely day!" in call.transcript
    tools = [(e.data.get("name"), e.data.get("source")) for e in events if e.kind == "tool_call"]
    assert ("getNextResponseFromSupervisor", "receptionist") in tools
    assert ("book_appointment", "supervisor") in tools and ("end_call", "supervisor") in tools
    async with call_db.session() as s:
        booked = list((await s.scalars(select(Appointment).where(Appointment.call_id == call.id))).unique())
    assert len(booked) == 1 and booked[0].service == "Haircut"
    # Cost: the Live session's seconds at the per-minute price plus the supervisor's tokens.
    usage = call.usage
    closed = log.sent_of_type("session.closed")[0]
    assert usage["live"]["active_seconds"] == closed["usage"]["seconds"] > 0
    assert usage["live"]["cost_usd"] == pytest.approx(live_cost_usd("gpt-live-1.1", closed["usage"]["seconds"]))
    assert usage["supervisor"]["text_input"] > 0
    assert call.cost_usd == pytest.approx(usage["live"]["cost_usd"] + usage["supervisor"]["cost_usd"], abs=1e-6)
    assert "realtime" not in usage and "transcription" not in usage  # both are part of Live's session time
    # The supervisor on Live has the call-control tools beside the business tools.
    tools_sent = {t["name"] for t in double.response_requests[0]["tools"]}
    assert {"end_call", "transfer_to_human", "book_appointment"} <= tools_sent
    assert_protocol_clean(log)


async def test_barge_in_clears_queued_audio_and_records_what_was_heard(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    long = "We are open every weekday from nine in the morning until five in the afternoon, " * 3
    double.live.say(long).caller("Wait, sorry.").say("Sure, go ahead.")
    live = await place_call(call_settings, call_db, voice_engine="live")
    log = await live_session(double)
    await asyncio.to_thread(log.wait_for_sent, "session.output_audio.delta", 10.0, 20)
    await live.transport.speak(wav_pcm(ASSETS / "book-24k.wav")[: 48 * 900] + silence(800))
    await asyncio.to_thread(log.wait_for_sent, "session.output_transcript.delta", 10.0, 1)
    await asyncio.to_thread(lambda: log.wait_for_sent("session.usage.updated", 10.0, 2))
    assert log.interruptions == 1  # Live stopped by itself
    await live.transport.wait_played(5)
    live.transport.leave("hangup")
    await finished(live)
    assert live.transport.clears, "queued agent audio was not cleared at the barge-in"
    _call, events = await call_record(call_db, live)
    interrupted = [e for e in events if e.text == "caller interrupted"]
    assert len(interrupted) == 1
    assert 0 < interrupted[0].data["audio_end_ms"] <= interrupted[0].data["produced_ms"]
    assert not log.received_of_type("conversation.item.truncate")  # nothing Live doesn't have
    assert_protocol_clean(log)


async def test_transfer_chosen_by_the_supervisor_hands_the_call_over_after_its_words(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    double.live.say("Hello!").caller("Can I speak to a real person, please?").delegate().say_from_commentary()
    double.responses.for_model("gpt-4.1").function_call("transfer_to_human", {}).text("Connecting you now.")
    transport = PlaybackTransport(channel="twilio", can_transfer=True, audio_format={"type": "audio/pcmu"},
                                  bytes_per_ms=8)
    live = await place_call(call_settings, call_db, transport=transport, transfer_number="+12125550111",
                            voice_engine="live")
    log = await greeted(double, live)
    assert log.received[0]["session"]["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
    from tests.doubles.openai_double import PCMU, speech_like_tone

    await _speak_pcmu(transport, speech_like_tone(1200, PCMU) + bytes([0xFF]) * 8 * 700)  # words, then quiet
    assert (await finished(live)).reason == "transferred"
    assert transport.transfers == ["+12125550111"]
    call, _events = await call_record(call_db, live)
    assert "Agent: Connecting you now." in call.transcript and call.engine == "live"
    assert_protocol_clean(log)


async def _speak_pcmu(transport: PlaybackTransport, audio: bytes) -> None:
    from app.voice.transport import AudioIn

    for offset in range(0, len(audio), 160):
        await transport.inbox.put(AudioIn(audio[offset:offset + 160]))
        await asyncio.sleep(0.02)


async def test_silence_prompts_once_then_says_goodbye_on_live(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    from app.voice.bridge import CallLimits

    double.live.say("Hello!").say("Are you still there?").say("Goodbye for now!")
    limits = CallLimits(silence_prompt_seconds=1.0, silence_goodbye_seconds=1.0)
    live = await place_call(call_settings, call_db, voice_engine="live", limits=limits)
    ending = await finished(live)
    assert ending.reason == "silence"
    log = await live_session(double)
    prompts = [e["content"] for e in log.received_of_type("session.commentary.append")]
    assert len(prompts) == 3 and "quiet" in prompts[1] and "end the call" in prompts[2]
    assert live.transport.hung_up == ["silence"]
    call, _events = await call_record(call_db, live)
    assert "Agent: Goodbye for now!" in call.transcript
    assert_protocol_clean(log)


async def test_refused_live_session_falls_back_to_realtime_and_says_so(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    double.live.refuse("model_not_enabled")
    double.realtime.say("Hello from Realtime!")
    live = await place_call(call_settings, call_db, voice_engine="live")
    log = await live_session(double)
    realtime = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    await asyncio.to_thread(realtime.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(5)
    assert log.refused and sum(live.transport.received.values()) > 0
    live.transport.leave("hangup")
    await finished(live)
    call, events = await call_record(call_db, live)
    assert call.engine == "realtime"
    fallback = [e for e in events if e.text == "GPT-Live unavailable: answered on Realtime"]
    assert len(fallback) == 1 and "model_not_enabled" in fallback[0].data["reason"]
    assert "Agent: Hello from Realtime!" in call.transcript
    assert "live" not in call.usage and call.usage["realtime"]["audio_output"] > 0
    assert log.protocol_errors == [] and [e["type"] for e in log.received] == ["session.start"]


async def test_operator_default_picks_live_and_the_owner_can_pick_realtime(
    data_dir: Any, call_env: dict[str, str], double: OpenAIDouble
) -> None:
    from tests.conftest import make_settings, migrated_database

    settings = make_settings(data_dir, **call_env, VOICE_ENGINE_DEFAULT="live")
    double.live.say("Live here.")
    double.realtime.say("Realtime here.")
    async with migrated_database(settings) as db:
        by_default = await place_call(settings, db)
        await greeted(double, by_default)
        by_default.transport.leave("hangup")
        await finished(by_default)
        before = len(double.realtime_sessions)  # the Live call kept a Realtime link ready, then closed it
        chosen = await place_call(settings, db, voice_engine="realtime", email="other@example.com")
        rt = await asyncio.to_thread(double.wait_for_session, before, 5.0)
        await asyncio.to_thread(rt.wait_for_sent, "response.done", 10.0, 1)
        chosen.transport.leave("hangup")
        await finished(chosen)
        first, _ = await call_record(db, by_default)
        second, _ = await call_record(db, chosen)
    assert (first.engine, second.engine) == ("live", "realtime")
    assert len(double.live_sessions) == 1


def test_live_prices_per_second_with_overrides() -> None:
    assert live_cost_usd("gpt-live-1.1", 60) == pytest.approx(0.05)
    assert live_cost_usd("gpt-live-1.1", 90) == pytest.approx(0.075)  # per second, not rounded up
    assert live_cost_usd("gpt-live-1", 60, 60) == pytest.approx(0.07)
    overrides = {"gpt-live-1.1": {"active_minute": 0.04}, "gpt-realtime": {"audio_input": 1.0}}
    assert live_cost_usd("gpt-live-1.1", 60, 60, overrides) == pytest.approx(0.06)
    assert live_cost_usd("gpt-live-1.1-2026-11-01", 60) == pytest.approx(0.05)  # dated snapshot
    assert live_cost_usd("unknown-live", 60) == 0.0
    assert json.dumps(overrides)  # plain JSON, as PRICE_OVERRIDES carries it


def test_the_default_realtime_model_is_current_and_priced() -> None:
    from app.billing.pricing import TokenUsage, cost_usd
    from app.settings import load_settings

    model = load_settings({}).realtime_model
    assert model == "gpt-realtime-2.1"
    million = TokenUsage(text_input=10**6, text_cached_input=10**6, text_output=10**6,
                         audio_input=10**6, audio_cached_input=10**6, audio_output=10**6)
    assert cost_usd(model, million) == pytest.approx(4 + 0.4 + 24 + 32 + 0.4 + 64)


def test_voice_engine_default_is_validated() -> None:
    from app.settings import SettingsError, load_settings

    assert load_settings({"VOICE_ENGINE_DEFAULT": "LIVE"}).voice_engine_default == "live"
    with pytest.raises(SettingsError, match="VOICE_ENGINE_DEFAULT"):
        load_settings({"VOICE_ENGINE_DEFAULT": "turbo"})
