"""The GPT-Live double holds the service to the SDK's types: what it sends validates as
`openai.types.live` server events, and client events that don't match the client event types are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI

from tests.doubles.live_double import check_server_event, client_event_problem
from tests.doubles.openai_double import OpenAIDouble


@pytest.fixture(scope="module")
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key="test-key") as d:
        yield d


def test_client_events_are_checked_to_the_letter() -> None:
    assert client_event_problem({"type": "session.commentary.append", "content": "hi", "delegation_id": None}) is None
    # delegation_id is required even though it may be null
    assert client_event_problem({"type": "session.commentary.append", "content": "hi"}) is not None
    assert client_event_problem({"type": "session.commentary.append", "content": "hi", "delegation_id": None,
                                 "extra": 1}) is not None
    assert client_event_problem({"type": "session.start", "session": {"audio": {}}}) is not None  # no model
    assert client_event_problem({"type": "response.cancel"}) is not None  # Realtime's, not Live's


def test_server_events_must_match_the_sdk_types() -> None:
    check_server_event({"type": "session.output_audio.delta", "delta": "AAAA"})
    with pytest.raises(ValueError):
        check_server_event({"type": "session.output_audio.delta", "delta": "AAAA", "event_id": "event_1"})
    with pytest.raises(ValueError):
        check_server_event({"type": "session.usage.updated", "event_id": "e", "usage": {}})  # seconds required


async def test_a_session_over_the_real_sdk(double: OpenAIDouble) -> None:
    double.reset()
    double.live.say("Hello there.")
    client = AsyncOpenAI(api_key="test-key", base_url=double.base_url)
    conn = await client.live.connect().enter()
    try:
        await conn.session.start(session={"model": "gpt-live-1.1", "delegation": {"type": "client"},
                                          "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}})
        started = json.loads(await conn.recv_bytes())
        assert started["type"] == "session.started" and started["session"]["status"] == "active"
        await conn.send_raw(json.dumps({"type": "session.commentary.append", "content": "Greet them"}))
        refused = json.loads(await conn.recv_bytes())
        assert refused["type"] == "error" and "delegation_id" in refused["error"]["message"]
        await conn.session.commentary.append(content="Greet them.", delegation_id=None)
        kinds = set()
        while "session.usage.updated" not in kinds:
            event = json.loads(await conn.recv_bytes())
            kinds.add(event["type"])
        assert {"session.commentary.appended", "session.output_audio.delta", "session.output_transcript.delta"} <= kinds
        await conn.session.close()
        closed = json.loads(await conn.recv_bytes())
        assert closed["type"] == "session.closed" and closed["reason"] == "close_requested"
    finally:
        await conn.close()
        await client.close()
    log = double.live_sessions[0]
    assert len(log.protocol_errors) == 1  # the commentary without its delegation_id
