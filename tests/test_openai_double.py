"""The OpenAI double, driven only through the real openai SDK, the way the app drives it.

Every server event the double sends is also validated against the SDK's Realtime server event union
with pydantic (the SDK itself builds events without validation), so a missing or mistyped field fails here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from openai import APITimeoutError, AsyncOpenAI, AuthenticationError, BadRequestError, InternalServerError
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    RealtimeConversationItemFunctionCall,
    ResponseAudioDeltaEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    SessionCreatedEvent,
)
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from openai.types.responses import Response, ResponseFunctionToolCall
from pydantic import BaseModel
from websockets.exceptions import InvalidStatus

from tests.doubles.openai_double import OpenAIDouble, RealtimeSessionLog

ASSETS = Path(__file__).parent / "assets"
# The SDK's server event union, by event type, so a bad event fails with its own model's short error.
SERVER_EVENT_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(RealtimeServerEvent)[0])
}
BYTES_PER_MS = {"audio/pcmu": 8, "audio/pcm": 48}
PCMU = {"type": "audio/pcmu"}
PCM = {"type": "audio/pcm", "rate": 24000}
SUPERVISOR_ARGS = {"relevantContextFromLastUserMessage": "wants a haircut tomorrow at ten"}


def wav_data(name: str) -> bytes:
    """The raw data chunk of a WAV (the stdlib wave module refuses mu-law files)."""
    raw = (ASSETS / name).read_bytes()
    position = 12
    while position < len(raw):
        chunk_id, size = raw[position : position + 4], struct.unpack("<I", raw[position + 4 : position + 8])[0]
        if chunk_id == b"data":
            return raw[position + 8 : position + 8 + size]
        position += 8 + size + (size & 1)
    raise ValueError(f"{name} has no data chunk")


def last_loud_ms(name: str) -> int:
    """Where the speech of a PCM16 24 kHz clip ends: the end of its last 20 ms frame with RMS > 500."""
    samples = np.frombuffer(wav_data(name), dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 480 * 480].reshape(-1, 480)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 500)
    return int(loud[-1] + 1) * 20


@pytest.fixture(scope="module")
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key="test-key") as server:
        yield server


@pytest.fixture(autouse=True)
def clean(double: OpenAIDouble) -> Iterator[None]:
    double.reset()
    yield
    for log in double.realtime_sessions:
        assert_valid_events(log)


@pytest.fixture
def client(double: OpenAIDouble) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test-key", base_url=double.base_url, max_retries=0)


@pytest.fixture
async def conn(client: AsyncOpenAI, double: OpenAIDouble) -> AsyncIterator[AsyncRealtimeConnection]:
    async with client.realtime.connect(model="gpt-realtime") as connection:
        created = await connection.recv()
        assert isinstance(created, SessionCreatedEvent)
        yield connection


def assert_valid_events(log: RealtimeSessionLog) -> None:
    for event in log.sent:
        assert event["type"] in SERVER_EVENT_MODELS, f"not a Realtime server event: {event['type']}"
        SERVER_EVENT_MODELS[event["type"]].model_validate(event)


async def read_until(conn: AsyncRealtimeConnection, done: Callable[[Any], bool], timeout: float = 5.0) -> list[Any]:
    """Events up to and including the first one `done` accepts."""
    events: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await conn.recv()
            events.append(event)
            if done(event):
                return events


def of_type(event_type: str) -> Callable[[Any], bool]:
    return lambda event: event.type == event_type


async def configure(conn: AsyncRealtimeConnection, fmt: dict[str, Any], **session: Any) -> Any:
    await conn.session.update(
        session={
            "type": "realtime",
            "audio": {
                "input": {"format": fmt, "transcription": {"model": "gpt-4o-mini-transcribe"}},
                "output": {"format": fmt},
            },
            **session,
        }
    )
    (updated,) = await read_until(conn, of_type("session.updated"))
    return updated


async def stream_audio(conn: AsyncRealtimeConnection, data: bytes, bytes_per_ms: int) -> None:
    chunk = 20 * bytes_per_ms
    for start in range(0, len(data), chunk):
        await conn.input_audio_buffer.append(audio=base64.b64encode(data[start : start + chunk]).decode())


# -- session ----------------------------------------------------------------------------------


async def test_session_update_round_trip(conn: AsyncRealtimeConnection, double: OpenAIDouble) -> None:
    log = double.realtime_sessions[0]
    assert log.model == "gpt-realtime"
    assert log.headers["Authorization"] == "Bearer test-key"
    assert "OpenAI-Beta" not in log.headers
    assert log.sent[0]["session"]["id"].startswith("sess_")

    tool = {
        "type": "function",
        "name": "getNextResponseFromSupervisor",
        "description": "Ask the supervisor.",
        "parameters": {"type": "object", "properties": {"relevantContextFromLastUserMessage": {"type": "string"}}},
    }
    updated = await configure(conn, PCMU, instructions="You are the receptionist.", tools=[tool], tool_choice="auto")
    session = updated.session
    assert session.instructions == "You are the receptionist."
    assert session.audio.input.format.type == "audio/pcmu"
    assert session.audio.output.format.type == "audio/pcmu"
    assert session.audio.output.voice == "marin"  # untouched defaults survive the merge
    assert session.audio.input.turn_detection.type == "server_vad"
    assert session.tools[0].name == "getNextResponseFromSupervisor"
    assert log.session_config["instructions"] == "You are the receptionist."
    assert log.session_config["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}

    # A tagged object replaces the old one whole rather than mixing fields of two VAD kinds.
    await conn.session.update(
        session={"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
    )
    (updated,) = await read_until(conn, of_type("session.updated"))
    assert updated.session.audio.input.turn_detection.model_dump(exclude_none=True) == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }
    assert updated.session.instructions == "You are the receptionist."

    # Beta-protocol fields and a missing session.type are refused like the GA API does.
    await conn.send_raw(
        json.dumps({"type": "session.update", "session": {"type": "realtime", "input_audio_format": "g711_ulaw"}})
    )
    (error,) = await read_until(conn, of_type("error"))
    assert error.error.code == "unknown_parameter"
    assert error.error.param == "session.input_audio_format"
    await conn.send_raw(json.dumps({"type": "session.update", "event_id": "evt_1", "session": {"instructions": "x"}}))
    (error,) = await read_until(conn, of_type("error"))
    assert (error.error.code, error.error.param, error.error.event_id) == (
        "missing_required_parameter",
        "session.type",
        "evt_1",
    )
    assert log.session_config["instructions"] == "You are the receptionist."


async def test_unknown_event_type_is_an_error(conn: AsyncRealtimeConnection) -> None:
    await conn.send_raw(json.dumps({"type": "session.frobnicate"}))
    (error,) = await read_until(conn, of_type("error"))
    assert error.error.type == "invalid_request_error"
    assert error.error.code == "unknown_event"


async def test_conversation_items_are_echoed_and_checked(conn: AsyncRealtimeConnection) -> None:
    await conn.conversation.item.create(
        item={"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]}
    )
    added, done = await read_until(conn, of_type("conversation.item.done"))
    assert added.item.id == done.item.id and added.item.id.startswith("item_")
    assert added.previous_item_id is None
    await conn.conversation.item.create(
        item={"id": "item_mine", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    )
    added, _ = await read_until(conn, of_type("conversation.item.done"))
    assert (added.item.id, added.previous_item_id) == ("item_mine", done.item.id)

    # The beta protocol's assistant content type and a duplicate id are refused.
    await conn.conversation.item.create(
        item={"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hello."}]}
    )
    (error,) = await read_until(conn, of_type("error"))
    assert error.error.param == "item.content[0].type"
    await conn.conversation.item.create(
        item={"id": "item_mine", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    )
    (error,) = await read_until(conn, of_type("error"))
    assert error.error.code == "duplicate_item_id"


# -- caller audio and VAD ---------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "wav"), [(PCMU, "book-8k-ulaw.wav"), (PCM, "book-24k.wav")])
async def test_vad_detects_real_speech_and_answers(
    conn: AsyncRealtimeConnection, double: OpenAIDouble, fmt: dict[str, Any], wav: str
) -> None:
    double.realtime.caller("I'd like to book a haircut").say("Sure.")
    await configure(conn, fmt)
    audio = wav_data(wav)
    bytes_per_ms = BYTES_PER_MS[fmt["type"]]
    total_ms = len(audio) // bytes_per_ms

    await stream_audio(conn, audio, bytes_per_ms)
    events = await read_until(conn, of_type("response.done"))

    types = [event.type for event in events]
    expected_order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    assert [t for t in types if t in expected_order][: len(expected_order)] == expected_order
    assert types.count("input_audio_buffer.speech_started") == 1  # the pauses between words don't split the turn
    started, stopped, committed = (events[types.index(t)] for t in expected_order[:3])
    # The clips have 300 ms of silence first, and audio_start_ms includes 300 ms of prefix padding.
    assert 0 <= started.audio_start_ms <= 150
    # The turn ends 500 ms (silence_duration_ms) after the last loud frame of the clip.
    assert abs(stopped.audio_end_ms - (last_loud_ms("book-24k.wav") + 500)) <= 60
    assert stopped.audio_end_ms <= total_ms
    assert started.item_id == stopped.item_id == committed.item_id
    assert committed.previous_item_id is None
    transcription = events[types.index("conversation.item.input_audio_transcription.completed")]
    assert isinstance(transcription, ConversationItemInputAudioTranscriptionCompletedEvent)
    assert transcription.transcript == "I'd like to book a haircut"
    assert transcription.item_id == committed.item_id
    assert transcription.usage.type == "tokens" and transcription.usage.total_tokens > 0
    transcript_done = next(e for e in events if e.type == "response.output_audio_transcript.done")
    assert transcript_done.transcript == "Sure."
    assert events[-1].response.status == "completed"
    assert double.realtime_sessions[0].input_audio_bytes == len(audio)


async def test_silence_is_not_speech_and_manual_commit(conn: AsyncRealtimeConnection, double: OpenAIDouble) -> None:
    await configure(conn, PCM)
    await stream_audio(conn, wav_data("silence-3s-24k.wav"), 48)
    await conn.input_audio_buffer.commit()
    events = await read_until(conn, of_type("conversation.item.input_audio_transcription.completed"))
    assert [event.type for event in events] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert events[-1].transcript == "(inaudible)"  # no caller line was scripted

    await conn.input_audio_buffer.commit()
    (error,) = await read_until(conn, of_type("error"))
    assert error.error.code == "input_audio_buffer_commit_empty"
    await conn.input_audio_buffer.clear()
    (cleared,) = await read_until(conn, of_type("input_audio_buffer.cleared"))
    assert cleared.type == "input_audio_buffer.cleared"
    assert not double.realtime_sessions[0].sent_of_type("response.created")


async def test_vad_without_create_response_waits_for_the_client(
    conn: AsyncRealtimeConnection, double: OpenAIDouble
) -> None:
    double.realtime.caller("What time do you open?").say("Nine.")
    await configure(conn, PCMU)
    await conn.session.update(
        session={
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": False}}},
        }
    )
    await read_until(conn, of_type("session.updated"))
    await stream_audio(conn, wav_data("book-8k-ulaw.wav"), 8)
    events = await read_until(conn, of_type("conversation.item.input_audio_transcription.completed"))
    assert events[-1].transcript == "What time do you open?"
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    )
    events = await read_until(conn, of_type("conversation.item.done"))
    assert "response.created" not in [event.type for event in events]

    await conn.response.create()
    events = await read_until(conn, of_type("response.done"))
    assert next(e for e in events if e.type == "response.output_audio_transcript.done").transcript == "Nine."


async def test_barge_in_cancels_the_active_response(conn: AsyncRealtimeConnection, double: OpenAIDouble) -> None:
    double.realtime.say("Thanks for calling the salon, how can I help you today?").caller("book").say("Sure.")
    await configure(conn, PCMU)
    await conn.response.create()
    await read_until(conn, of_type("response.output_audio.delta"))

    await stream_audio(conn, wav_data("book-8k-ulaw.wav"), 8)
    events = await read_until(conn, lambda e: e.type == "response.done" and e.response.status == "cancelled")
    assert events[-1].response.status_details.reason == "turn_detected"
    assert "input_audio_buffer.speech_started" in [event.type for event in events]
    interrupted = events[-1].response.output[0]
    assert interrupted.status == "incomplete"

    events = await read_until(conn, of_type("response.done"))
    assert events[-1].response.status == "completed"
    assert next(e for e in events if e.type == "response.output_audio_transcript.done").transcript == "Sure."


async def test_speech_without_interrupt_response_queues_the_answer(
    conn: AsyncRealtimeConnection, double: OpenAIDouble
) -> None:
    double.realtime.say("Thanks for calling the salon.").caller("book").say("Sure.")
    await configure(conn, PCMU)
    await conn.session.update(
        session={
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}},
        }
    )
    await read_until(conn, of_type("session.updated"))
    await conn.response.create()
    await read_until(conn, of_type("response.output_audio.delta"))
    await stream_audio(conn, wav_data("book-8k-ulaw.wav"), 8)

    events = await read_until(conn, of_type("response.done"))
    types = [event.type for event in events]
    assert events[-1].response.status == "completed"  # the caller talked over it, but it was not interrupted
    assert types.index("input_audio_buffer.speech_stopped") < len(types) - 1
    events = await read_until(conn, of_type("response.done"))
    assert next(e for e in events if e.type == "response.output_audio_transcript.done").transcript == "Sure."


# -- agent speech ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [PCMU, PCM])
async def test_say_streams_paced_audio(
    conn: AsyncRealtimeConnection, double: OpenAIDouble, fmt: dict[str, Any]
) -> None:
    text = "Thanks for calling, hello."
    double.realtime.say(text)
    await configure(conn, fmt)
    await conn.response.create()

    arrivals: list[float] = []
    events: list[Any] = []
    async with asyncio.timeout(5):
        while not events or events[-1].type != "response.done":
            events.append(await conn.recv())
            if events[-1].type == "response.output_audio.delta":
                arrivals.append(time.monotonic())

    deltas = [event for event in events if isinstance(event, ResponseAudioDeltaEvent)]
    audio = b"".join(base64.b64decode(event.delta) for event in deltas)
    expected_ms = 60 * len(text)
    assert len(audio) == expected_ms * BYTES_PER_MS[fmt["type"]]
    assert len(deltas) == math.ceil(expected_ms / 50)
    # 50 ms of audio per delta, sent in real time.
    assert arrivals[-1] - arrivals[0] >= (len(deltas) - 1) * 0.05 * 0.6
    transcript = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    assert transcript == text
    if fmt["type"] == "audio/pcm":
        samples = np.frombuffer(audio, dtype="<i2").astype(np.float64)
        assert np.sqrt(np.mean(samples**2)) > 1000  # a loud tone, not silence

    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert types[-6:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    done = events[-1]
    assert isinstance(done, ResponseDoneEvent)
    usage = done.response.usage
    assert usage.output_token_details.audio_tokens == round(expected_ms / 100)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert done.response.output[0].content[0].transcript == text
    assert all(event.item_id == deltas[0].item_id for event in deltas)
    assert deltas[0].item_id.startswith("item_") and done.response.id.startswith("resp_")


async def test_empty_script_says_okay(conn: AsyncRealtimeConnection) -> None:
    await conn.response.create()
    events = await read_until(conn, of_type("response.done"))
    assert next(e for e in events if e.type == "response.output_audio_transcript.done").transcript == "Okay."
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    assert len(audio) == 300 * 48  # the 300 ms minimum, in the default PCM16 24 kHz output format


async def test_second_response_create_while_active_is_refused(conn: AsyncRealtimeConnection) -> None:
    await conn.response.create()
    await conn.response.create()
    events = await read_until(conn, of_type("error"))
    assert events[-1].error.code == "conversation_already_has_active_response"
    await read_until(conn, of_type("response.done"))


async def test_tool_call_then_say_from_tool_output(conn: AsyncRealtimeConnection, double: OpenAIDouble) -> None:
    double.realtime.tool("getNextResponseFromSupervisor", SUPERVISOR_ARGS, say_first="One moment.")
    double.realtime.say_from_tool_output().say_from_tool_output().say_from_tool_output()
    await configure(conn, PCMU)
    await conn.response.create()
    events = await read_until(conn, of_type("response.done"))

    call_done = next(e for e in events if isinstance(e, ResponseFunctionCallArgumentsDoneEvent))
    assert call_done.name == "getNextResponseFromSupervisor"
    assert call_done.call_id.startswith("call_")
    assert json.loads(call_done.arguments) == SUPERVISOR_ARGS
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == call_done.arguments
    said_first = next(e for e in events if e.type == "response.output_audio_transcript.done")
    assert said_first.transcript == "One moment."
    output = events[-1].response.output
    assert [item.type for item in output] == ["message", "function_call"]
    function_call = output[1]
    assert isinstance(function_call, RealtimeConversationItemFunctionCall)
    assert (function_call.call_id, function_call.arguments) == (call_done.call_id, call_done.arguments)

    async def answer(output_text: str) -> str:
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_done.call_id, "output": output_text}
        )
        *_, added, done = await read_until(conn, of_type("conversation.item.done"))
        assert added.type == "conversation.item.added" and added.item.id == done.item.id
        assert added.item.id.startswith("item_")
        # Text-only replies keep this quick; the text is what say_from_tool_output chose.
        await conn.response.create(response={"output_modalities": ["text"]})
        events = await read_until(conn, of_type("response.done"))
        return next(e for e in events if e.type == "response.output_text.done").text

    assert await answer(json.dumps({"nextResponse": "We have 10am free."})) == "We have 10am free."
    assert await answer(json.dumps({"message": "Booked for Friday."})) == "Booked for Friday."
    assert await answer("Plain words.") == "Plain words."


# -- truncate and cancel ---------------------------------------------------------------------


async def test_truncate_and_cancel(conn: AsyncRealtimeConnection, double: OpenAIDouble) -> None:
    double.realtime.say("Thanks for calling the salon, how can I help you today?")
    await configure(conn, PCMU)
    await conn.response.create()
    events = await read_until(conn, lambda e: e.type == "response.output_audio.delta" and len(e.delta) > 0)
    for _ in range(5):
        events += await read_until(conn, of_type("response.output_audio.delta"))
    item_id = events[-1].item_id

    await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=3000)
    events = await read_until(conn, of_type("error"))
    match = re.fullmatch(r"Audio content of (\d+)ms is already shorter than 3000ms", events[-1].error.message)
    assert match, events[-1].error.message
    assert 300 <= int(match.group(1)) < 3000
    assert events[-1].error.code == "invalid_value"

    await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=200)
    events = await read_until(conn, of_type("conversation.item.truncated"))
    assert (events[-1].item_id, events[-1].audio_end_ms) == (item_id, 200)

    await conn.conversation.item.truncate(item_id="item_nope", content_index=0, audio_end_ms=10)
    events = await read_until(conn, of_type("error"))
    assert "not found" in events[-1].error.message

    await conn.response.cancel()
    events = await read_until(conn, of_type("response.done"))
    assert events[-1].response.status == "cancelled"
    assert events[-1].response.status_details.reason == "client_cancelled"

    await conn.response.cancel()
    *_, error = await read_until(conn, of_type("error"))
    assert error.error.code == "response_cancel_not_active"
    assert [t["audio_end_ms"] for t in double.realtime_sessions[0].truncations] == [3000, 200, 10]


async def test_cancel_with_no_active_response_is_an_error(conn: AsyncRealtimeConnection) -> None:
    await conn.response.cancel()
    (error,) = await read_until(conn, of_type("error"))
    assert error.error.code == "response_cancel_not_active"


# -- connection failures ---------------------------------------------------------------------


async def test_bad_api_key_is_refused(double: OpenAIDouble) -> None:
    wrong = AsyncOpenAI(api_key="wrong-key", base_url=double.base_url, max_retries=0)
    with pytest.raises(InvalidStatus) as refused:
        async with wrong.realtime.connect(model="gpt-realtime"):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(AuthenticationError) as denied:
        await wrong.responses.create(model="gpt-4.1", input="hi")
    assert denied.value.status_code == 401
    assert denied.value.code == "invalid_api_key"
    assert double.realtime_sessions == [] and double.response_requests == []


async def test_beta_header_is_refused(client: AsyncOpenAI) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with client.realtime.connect(model="gpt-realtime", extra_headers={"OpenAI-Beta": "realtime=v1"}):
            pass
    assert refused.value.response.status_code == 400


async def test_fail_realtime_connect(client: AsyncOpenAI, double: OpenAIDouble) -> None:
    double.fail_realtime_connect = True
    with pytest.raises(InvalidStatus) as refused:
        async with client.realtime.connect(model="gpt-realtime"):
            pass
    assert refused.value.response.status_code == 500
    assert double.realtime_sessions == []

    double.fail_realtime_connect = False
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"


async def test_session_expires(client: AsyncOpenAI, double: OpenAIDouble) -> None:
    double.realtime.expire_after(0.2, once=True)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        received = [event.type async for event in connection]  # ends when the server closes
        expired = [e for e in double.realtime_sessions[0].sent if e["type"] == "error"]
    assert received == ["session.created", "error"]
    assert expired[0]["error"]["code"] == "session_expired"
    assert double.realtime_sessions[0].closed.wait(2)

    async with client.realtime.connect(model="gpt-realtime") as connection:  # once=True: the next one lives
        await connection.response.create(response={"output_modalities": ["text"]})
        events = await read_until(connection, of_type("response.done"), timeout=2)
        assert not [event for event in events if event.type == "error"]


# -- Responses API ---------------------------------------------------------------------------


async def test_responses_function_call_then_text(client: AsyncOpenAI, double: OpenAIDouble) -> None:
    double.responses.for_model("gpt-4.1").function_call("check_availability", {"date": "2026-11-26"}).text(
        "We have 10am free."
    )
    tools = [
        {
            "type": "function",
            "name": "check_availability",
            "description": "Free slots.",
            "parameters": {"type": "object", "properties": {"date": {"type": "string"}}},
        }
    ]
    raw = await client.responses.with_raw_response.create(
        model="gpt-4.1", input="Can I come tomorrow?", tools=tools, parallel_tool_calls=False
    )
    Response.model_validate(raw.http_response.json())  # every required field is really there
    first = raw.parse()
    call = first.output[0]
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.name == "check_availability" and json.loads(call.arguments) == {"date": "2026-11-26"}
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert first.id.startswith("resp_") and first.status == "completed"
    assert first.parallel_tool_calls is False and first.tools[0].name == "check_availability"

    second = await client.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "user", "content": "Can I come tomorrow?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"slots": ["10:00"]}'},
        ],
        tools=tools,
    )
    assert second.output_text == "We have 10am free."
    assert second.usage.total_tokens == second.usage.input_tokens + second.usage.output_tokens
    assert [request["model"] for request in double.response_requests] == ["gpt-4.1", "gpt-4.1"]
    assert double.response_requests[1]["input"][2]["output"] == '{"slots": ["10:00"]}'

    # A tool result whose call is missing from the history is refused, as the real API does.
    with pytest.raises(BadRequestError, match="No tool call found"):
        await client.responses.create(
            model="gpt-4.1", input=[{"type": "function_call_output", "call_id": call.call_id, "output": "{}"}]
        )


async def test_responses_delay_and_error(client: AsyncOpenAI, double: OpenAIDouble) -> None:
    double.responses.for_model("gpt-4.1").delay(1.0).text("Too late.").error(500).text("Back again.")
    with pytest.raises(APITimeoutError):
        await client.with_options(timeout=0.3).responses.create(model="gpt-4.1", input="hello")
    with pytest.raises(InternalServerError) as failed:
        await client.responses.create(model="gpt-4.1", input="hello")
    assert failed.value.status_code == 500
    assert (await client.responses.create(model="gpt-4.1", input="hello")).output_text == "Back again."

    double.responses.for_model("gpt-4.1").delay(0.3).text("Slow but fine.")
    started = time.monotonic()
    reply = await client.responses.create(model="gpt-4.1", input="hello")
    assert reply.output_text == "Slow but fine."
    assert time.monotonic() - started >= 0.3


async def test_responses_defaults(client: AsyncOpenAI, double: OpenAIDouble) -> None:
    transcript = "Agent: Thanks for calling.\nCaller: I'd like to book a haircut\nAgent: Sure."
    summary = await client.responses.create(
        model="gpt-4.1-mini", instructions="Summarize this phone call in one line.", input=transcript
    )
    assert summary.output_text == "Summary: I'd like to book a haircut"
    as_messages = await client.responses.create(
        model="gpt-4.1-mini",
        input=[
            {"role": "system", "content": "Write a one-line summary of the call."},
            {"role": "user", "content": "I need to cancel my appointment on Friday."},
        ],
    )
    assert as_messages.output_text == "Summary: I need to cancel my appointment on Friday."
    plain = await client.responses.create(model="gpt-4.1", input="What time is it?")
    assert plain.output_text == "Okay."
