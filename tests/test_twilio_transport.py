"""TwilioTransport and the stream handshake against a scripted socket and a controllable clock."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.telephony.media import HandshakeFailed, await_start
from app.telephony.mulaw_recording import StereoRecording
from app.telephony.twilio_transport import TwilioTransport
from app.voice.transport import AudioIn, CallerGone, Dtmf
from tests.support.media_socket import Clock, FakeSocket

SID = "MZ" + "1" * 32


def transport(socket: FakeSocket, clock: Clock, recording: StereoRecording | None = None) -> TwilioTransport:
    return TwilioTransport(socket, stream_sid=SID, call_sid="CA1", calls=None, recording=recording,  # type: ignore[arg-type]
                           clock=clock)


def start_frame(**start: Any) -> dict[str, Any]:
    body = {"streamSid": SID, "callSid": "CA1", "accountSid": "AC1", "tracks": ["inbound"],
            "customParameters": {"session": "tok"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}} | start
    return {"event": "start", "sequenceNumber": "1", "streamSid": SID, "start": body}


async def test_handshake_skips_noise_and_reads_the_start() -> None:
    socket = FakeSocket()
    for frame in ("garbage", {"event": "media"}, {"event": "connected", "protocol": "Call"}, start_frame()):
        socket.feed(frame)
    start = await await_start(socket, timeout=1)  # type: ignore[arg-type]
    assert (start.stream_sid, start.call_sid, start.token) == (SID, "CA1", "tok")


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([], "no start in time"),
        ([start_frame(customParameters={})], "no session token"),
        ([start_frame(mediaFormat={"encoding": "audio/x-l16"})], "unsupported encoding audio/x-l16"),
        ([None], "closed before start"),
    ],
)
async def test_handshake_failures(frames: list[Any], reason: str) -> None:
    socket = FakeSocket()
    for frame in frames:
        socket.incoming.put_nowait(None if frame is None else json.dumps(frame))
    with pytest.raises(HandshakeFailed) as failure:
        await await_start(socket, timeout=0.1)  # type: ignore[arg-type]
    assert failure.value.reason == reason


async def test_marks_are_coalesced_and_say_what_was_heard() -> None:
    socket, clock, recording = FakeSocket(), Clock(), StereoRecording()
    t = transport(socket, clock, recording)
    for _ in range(5):
        await t.send_audio("item_a", b"\x10" * 400)  # 50 ms each, queued back to back
    # One mark per MARK_EVERY_MS (100 ms) of audio, not one per chunk; the tail waits for the end of the audio.
    assert [m["event"] for m in socket.outgoing] == ["media", "media", "mark", "media", "media", "mark", "media"]
    await t.audio_done()
    assert socket.outgoing[-1]["event"] == "mark"
    await t.audio_done()  # nothing open: no second mark
    assert [m["event"] for m in socket.outgoing].count("mark") == 3
    assert base64.b64decode(socket.outgoing[0]["media"]["payload"]) == b"\x10" * 400  # untouched
    assert all(m["streamSid"] == SID for m in socket.outgoing)
    names = [m["mark"]["name"] for m in socket.outgoing if m["event"] == "mark"]
    assert len(set(names)) == 3
    assert t.heard_ms("item_a") == 0
    clock.advance(30)
    assert t.heard_ms("item_a") == 30  # inside the first segment, from the clock
    clock.advance(70)
    t._on_mark(names[0])
    assert t.heard_ms("item_a") == 100
    assert not await t.wait_played(0.01)
    clock.advance(150)
    t._on_mark(names[2])  # a lost mark in between: the later one covers it
    assert t.heard_ms("item_a") == 250 and await t.wait_played(0.01)
    assert t.heard_ms("unknown") == 0
    assert [p.start_ms for p in recording.agent] == pytest.approx([0, 50, 100, 150, 200])


async def test_a_new_item_or_a_pause_closes_the_segment() -> None:
    socket, clock = FakeSocket(), Clock()
    t = transport(socket, clock)
    await t.send_audio("item_a", b"\x10" * 160)
    await t.send_audio("item_b", b"\x10" * 160)  # another item: item_a's segment gets its mark first
    assert [m["event"] for m in socket.outgoing] == ["media", "mark", "media"]
    clock.advance(100)  # playback ran dry for 60 ms: the next chunk starts a segment of its own
    await t.send_audio("item_b", b"\x10" * 160)
    assert [m["event"] for m in socket.outgoing] == ["media", "mark", "media", "mark", "media"]
    assert await t.wait_played(0.01) is False  # waiting closes the open segment (its mark goes out)
    assert socket.outgoing[-1]["event"] == "mark"


async def test_clear_freezes_what_was_heard_and_ignores_the_returned_marks() -> None:
    socket, clock, recording = FakeSocket(), Clock(), StereoRecording()
    t = transport(socket, clock, recording)
    for _ in range(4):
        await t.send_audio("item_b", b"\x10" * 400)
    names = [m["mark"]["name"] for m in socket.outgoing if m["event"] == "mark"]
    clock.advance(70)
    await t.clear()
    assert socket.outgoing[-1] == {"event": "clear", "streamSid": SID}
    assert t.heard_ms("item_b") == 70
    for name in names:  # Twilio returns the pending marks after a clear
        t._on_mark(name)
    assert t.heard_ms("item_b") == 70 and await t.wait_played(0.01)
    assert sum(p.nbytes for p in recording.agent) == 70 * 8  # the unheard rest is not in the recording
    assert sum(len(p.audio()) for p in recording.agent) == 70 * 8


async def test_late_marks_move_the_recording_of_what_is_still_queued() -> None:
    socket, clock, recording = FakeSocket(), Clock(), StereoRecording()
    t = transport(socket, clock, recording)
    for _ in range(3):
        await t.send_audio("item_c", b"\x10" * 400)
    names = [m["mark"]["name"] for m in socket.outgoing if m["event"] == "mark"]
    clock.advance(180)  # the first segment (100 ms) finished 80 ms late (network jitter)
    t._on_mark(names[0])
    assert [p.start_ms for p in recording.agent] == pytest.approx([0, 50, 180])


async def test_inbound_events_and_malformed_frames() -> None:
    socket, clock, recording = FakeSocket(), Clock(), StereoRecording()
    t = transport(socket, clock, recording)
    audio = bytes(range(160))
    frames: list[Any] = [
        "not json", {"no": "event"}, {"event": "media", "streamSid": "MZother", "media": {"payload": "AA=="}},
        {"event": "media", "streamSid": SID, "media": {"payload": "!!"}},
        {"event": "media", "streamSid": SID, "media": {"track": "outbound", "payload": "AA=="}},
        {"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "12"}},
        {"event": "start", "streamSid": SID, "start": {}},
        {"event": "media", "streamSid": SID,
         "media": {"track": "inbound", "chunk": "7", "timestamp": "140", "payload": base64.b64encode(audio).decode()}},
        {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track", "digit": "7"}},
        {"event": "stop", "streamSid": SID, "stop": {"accountSid": "AC1", "callSid": "CA1"}},
    ]
    for frame in frames:
        socket.feed(frame)
    events = [event async for event in t.events()]
    # The payload goes on as the very string Twilio sent (no decode/encode round trip).
    assert events == [AudioIn(base64.b64encode(audio).decode()), Dtmf("7"), CallerGone("hung_up")]
    assert t.ignored_frames == 7
    assert [(p.start_ms, p.payload) for p in recording.caller] == [(140.0, audio)]


async def test_a_dropped_socket_ends_the_events() -> None:
    socket, clock = FakeSocket(), Clock()
    t = transport(socket, clock)
    socket.incoming.put_nowait(None)
    assert [event async for event in t.events()] == [CallerGone("disconnected")]
    await t.send_audio("item_d", b"\x10" * 160)  # after the caller left nothing is sent
    assert socket.outgoing == []
