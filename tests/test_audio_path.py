"""The cheap audio path (issue 10): coalesced marks keep barge-in truncation exact, and base64 payloads pass
through untouched in both directions (what reaches OpenAI and Twilio is the very string that was sent)."""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.telephony.twilio_transport import FRAME_MS, MARK_EVERY_MS, TwilioTransport
from app.voice.bridge import CallBridge, CallLimits, truncation_point
from app.voice.realtime import RealtimeLink, _underlying_send
from tests.support.media_socket import Clock, FakeSocket

SID = "MZ" + "2" * 32


@dataclass
class TwilioPlayback:
    """Twilio's side of the stream: audio plays in the order it came, each chunk from when it arrived or when
    the one before it ended, whichever is later; a mark comes back the moment the audio before it has played."""

    chunks: list[tuple[float, float]] = field(default_factory=list)  # (start, duration) ms
    marks: list[tuple[float, str]] = field(default_factory=list)  # (due, name)
    end: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def take(self, frames: list[str], now: float) -> None:
        for text in frames:
            frame = json.loads(text)
            if frame["event"] == "media":
                duration = len(base64.b64decode(frame["media"]["payload"])) / 8
                start = max(now, self.end)
                self.chunks.append((start, duration))
                self.end = start + duration
            elif frame["event"] == "mark":
                # back once the audio before it has played, plus the network's way back (under LATE_MARK_MS)
                self.marks.append((self.end + self.rng.uniform(0, 15), frame["mark"]["name"]))

    def heard(self, now: float) -> float:
        return sum(min(max(0.0, now - start), duration) for start, duration in self.chunks)


async def _one_call(seed: int) -> list[tuple[int, float, int]]:
    """A model answering in deltas of 10-60 ms, sometimes ahead of playback, sometimes behind it (playback runs
    dry); at random moments: (estimated heard ms, what Twilio really played, ms produced)."""
    rng = random.Random(seed)
    clock, socket, twilio = Clock(start=10.0), FakeSocket(), TwilioPlayback(rng=random.Random(seed + 1000))
    t = TwilioTransport(socket, stream_sid=SID, call_sid="CA1", calls=None, clock=clock)  # type: ignore[arg-type]
    now = produced = 0.0
    samples: list[tuple[int, float, int]] = []
    next_delta = 0.0
    for _ in range(120):
        probe = now + rng.uniform(0, 30)
        due = sorted((at, name) for at, name in twilio.marks if at <= min(next_delta, probe))
        for at, name in due:  # marks come back in order, when their audio has played
            clock.set_ms(at)
            t._on_mark(name)
            twilio.marks.remove((at, name))
        if probe < next_delta:
            now = probe
            clock.set_ms(now)
            samples.append((t.heard_ms("item"), twilio.heard(now), int(produced)))
            continue
        now = next_delta
        clock.set_ms(now)
        sent = len(socket.sent)
        duration = rng.choice([10, 20, 20, 40, 60])
        await t.send_audio("item", base64.b64encode(b"\xff" * (duration * 8)).decode())
        produced += duration
        twilio.take(socket.sent[sent:], now)
        # ahead of real time most of the time, behind it now and then
        next_delta = now + (rng.uniform(0, duration * 0.8) if rng.random() < 0.8 else duration + rng.uniform(0, 50))
    return samples


@pytest.mark.parametrize("seed", range(12))
async def test_coalesced_marks_truncate_within_a_frame_and_never_past_what_was_produced(seed: int) -> None:
    samples = await _one_call(seed)
    assert len(samples) > 20
    for estimate, really_heard, produced in samples:
        cut = truncation_point(estimate, produced)
        assert cut <= produced  # never over what was produced (the API refuses that)
        assert estimate <= really_heard + 1  # never ahead of the caller's ear (1: rounding to whole ms)
        assert really_heard - estimate <= FRAME_MS + 1  # and within one frame of it


async def test_fewer_marks_than_deltas() -> None:
    clock, socket = Clock(start=10.0), FakeSocket()
    t = TwilioTransport(socket, stream_sid=SID, call_sid="CA1", calls=None, clock=clock)  # type: ignore[arg-type]
    for _ in range(50):  # one second of 20 ms deltas, all at once (the model runs ahead of playback)
        await t.send_audio("item", base64.b64encode(b"\x7f" * 160).decode())
    await t.audio_done()
    events = [json.loads(text)["event"] for text in socket.sent]
    assert events.count("media") == 50
    assert events.count("mark") == 1000 // MARK_EVERY_MS


# -- pass-through -----------------------------------------------------------------------------------------------
class RecordingSocket:
    """The websockets connection under the SDK's realtime connection."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)


class SdkConnection:
    def __init__(self) -> None:
        self._connection = RecordingSocket()
        self._on_reconnecting = None


class RecordingLink:
    def __init__(self) -> None:
        self.appended: list[bytes | str] = []

    async def append_audio(self, chunk: bytes | str) -> None:
        self.appended.append(chunk)


class QuietRecorder:
    caller_turns = 0

    def add_latency(self, entry: dict[str, Any]) -> None:
        pass


def _bridge(transport: TwilioTransport, link: Any) -> CallBridge:
    async def no_supervisor(_conversation: str, _context: str) -> Any:
        raise AssertionError("not asked")

    return CallBridge(transport=transport, link=link, recorder=QuietRecorder(),  # type: ignore[arg-type]
                      ask_supervisor=no_supervisor, session_update={}, greeting="", limits=CallLimits())


async def test_caller_audio_reaches_openai_as_the_string_twilio_sent() -> None:
    socket = FakeSocket()
    transport = TwilioTransport(socket, stream_sid=SID, call_sid="CA1", calls=None)  # type: ignore[arg-type]
    link = RecordingLink()
    bridge = _bridge(transport, link)
    rng = random.Random(7)
    payloads = [base64.b64encode(bytes(rng.randrange(256) for _ in range(160))).decode() for _ in range(20)]
    for sequence, payload in enumerate(payloads):
        socket.incoming.put_nowait(json.dumps({"event": "media", "streamSid": SID, "sequenceNumber": str(sequence),
                                               "media": {"track": "inbound", "payload": payload}}))
    socket.incoming.put_nowait(json.dumps({"event": "stop", "streamSid": SID}))
    await bridge._caller_pump()
    assert link.appended == payloads
    assert all(isinstance(chunk, str) for chunk in link.appended)

    # ...and on the realtime socket the append carries that string, byte for byte.
    realtime = RealtimeLink.__new__(RealtimeLink)
    sdk = SdkConnection()
    realtime._conn = sdk  # type: ignore[assignment]
    realtime._socket_send = _underlying_send(sdk)  # type: ignore[arg-type]
    assert realtime._socket_send is not None
    for chunk in link.appended:
        await realtime.append_audio(chunk)
    connection = sdk._connection
    assert [json.loads(text) for text in connection.sent] == [
        {"type": "input_audio_buffer.append", "audio": payload} for payload in payloads]
    assert all(payload in text for payload, text in zip(payloads, connection.sent, strict=True))


async def test_model_audio_reaches_twilio_as_the_string_openai_sent() -> None:
    socket = FakeSocket()
    transport = TwilioTransport(socket, stream_sid=SID, call_sid="CA1", calls=None)  # type: ignore[arg-type]
    bridge = _bridge(transport, RecordingLink())
    rng = random.Random(8)
    # Deltas of every length class: no padding, one and two padding characters.
    deltas = [base64.b64encode(bytes(rng.randrange(256) for _ in range(n))).decode() for n in (160, 161, 400, 800, 2)]
    for delta in deltas:
        await bridge._on_event({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1",
                                "output_index": 0, "content_index": 0, "delta": delta})
    media = [json.loads(text) for text in socket.sent if '"event":"media"' in text]
    assert [frame["media"]["payload"] for frame in media] == deltas
    assert all(frame["streamSid"] == SID for frame in media)
    assert bridge.produced_bytes["item_1"] == sum(len(base64.b64decode(d)) for d in deltas)
