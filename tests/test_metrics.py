"""Seeing the load: `GET /metrics` on the real service after a real phone call (Twilio and OpenAI doubles).
The endpoint needs the operator's bearer token (a tunnel makes anyone look local), and is absent without
METRICS_TOKEN."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.engine import Database
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.twilio_double import TwilioDouble
from tests.support.data import create_owner
from tests.support.server import RunningServer, base_env, phone_env, run_server

NUMBER = "+15550004000"
TOKEN = "metrics-token-0123456789"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, OpenAIDouble, TwilioDouble]]:
    data_dir = tmp_path_factory.mktemp("metrics")
    with OpenAIDouble() as openai, TwilioDouble() as twilio:
        env = phone_env(data_dir, openai, twilio, METRICS_TOKEN=TOKEN)
        with run_server(env) as server:
            async def seed() -> None:
                db = Database(load_settings(server.env))
                try:
                    await create_owner(db, phone_number=NUMBER, greeting="Metrics salon, hello.")
                finally:
                    await db.dispose()

            asyncio.run(seed())
            yield server, openai, twilio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_call_shows_in_the_metrics(world: tuple[RunningServer, OpenAIDouble, TwilioDouble]) -> None:
    server, openai, twilio = world
    openai.realtime.say("Metrics salon, hello.")
    call, answer = await twilio.place_call(server.url + "/twilio/voice", to=NUMBER, from_="+15553334444")
    stream = await twilio.open_stream(call, answer)
    log = await asyncio.to_thread(openai.wait_for_session, 0, 5.0)
    await asyncio.to_thread(log.wait_for_sent, "response.done")
    produced_ms = sum(len(base64.b64decode(e["delta"])) for e in log.sent_of_type("response.output_audio.delta")) / 8
    await stream.wait_for(lambda: stream.played_ms() >= produced_ms - 1, timeout=15)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        live = samples((await client.get("/metrics")).text)
        assert live[("receptionist_live_calls", ())] == 1
        await stream.hang_up()
        for _ in range(100):
            after = samples((await client.get("/metrics")).text)
            if after[("receptionist_live_calls", ())] == 0 and any(
                name == "receptionist_calls_ended_total" for name, _ in after
            ):
                break
            await asyncio.sleep(0.05)
    assert after[("receptionist_calls_started_total", (("channel", "twilio"),))] == 1
    ended = {labels: v for (name, labels), v in after.items() if name == "receptionist_calls_ended_total"}
    # The caller heard the greeting and hung up without a word: an abandoned call.
    assert ended == {(("reason", "caller_hung_up"), ("status", "abandoned")): 1}
    assert after[("receptionist_greeting_ms_count", ())] == 1
    assert after[("receptionist_event_loop_lag_ms_count", ())] > 0


async def test_metrics_need_the_operators_token(world: tuple[RunningServer, OpenAIDouble, TwilioDouble]) -> None:
    server, _openai, _twilio = world
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401


def test_no_metrics_without_a_token(tmp_path: Path) -> None:
    with run_server(base_env(tmp_path)) as server:
        assert httpx.get(server.url + "/metrics").status_code == 404
