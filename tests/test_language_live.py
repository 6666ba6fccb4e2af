"""Issue 16 on the GPT-Live engine, in process against the Live double: the front model can't report the caller's
language, so the supervisor has `set_language`; its answer is spoken in the new language and the call keeps it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from app.db.engine import Database
from app.db.models import Call
from app.settings import Settings
from tests.doubles.openai_double import OpenAIDouble
from tests.support.voice import ASSETS, place_call, silence, wav_pcm

pytest_plugins = ("tests.support.voice_fixtures",)


async def test_the_supervisor_switches_a_live_call_to_spanish(call_settings: Settings, call_db: Database,
                                                              double: OpenAIDouble) -> None:
    double.live.say("Thanks for calling, how can I help?").caller("Hola, quisiera una cita para mañana.").delegate(
        say_first="Un momento.").say_from_commentary()
    double.responses.for_model("gpt-4.1").function_call("set_language", {"language": "es"}).text(
        "Claro, ¿a qué hora le viene bien mañana?")
    # Two supervisor rounds (the switch, then the answer): a bound that only catches a hang on a loaded machine.
    settings = replace(call_settings, supervisor_timeout_seconds=20)
    live = await place_call(settings, call_db, voice_engine="live", languages=["en-US", "es-MX"])
    log = await asyncio.to_thread(double.wait_for_live_session, 0, 5.0)
    await asyncio.to_thread(log.wait_for_sent, "session.usage.updated", 10.0, 1)
    start = log.received[0]["session"]["instructions"]
    assert "English (United States) [en-US], Spanish (Mexico) [es-MX]" in start
    await live.transport.wait_played(5)
    await live.transport.speak(wav_pcm(ASSETS / "book-24k.wav") + silence(700))
    answer = await asyncio.to_thread(log.wait_for_received, "session.commentary.append", 10.0, 2)
    assert answer["content"] == "Claro, ¿a qué hora le viene bien mañana?"
    first, second = double.response_requests[:2]
    assert "set_language" in {tool["name"] for tool in first["tools"]}
    assert "If the caller's last words are in another language" in first["instructions"]
    switched = next(item for item in second["input"] if item.get("type") == "function_call_output")
    assert json.loads(switched["output"])["language"] == "es-MX"
    live.transport.leave("hangup")
    await asyncio.wait_for(live.task, 20)
    async with call_db.session() as s:
        call = await s.get(Call, live.call_id)
    assert call is not None and call.language == "es-MX" and call.engine == "live"
