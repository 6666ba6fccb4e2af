"""The stereo call recording: mu-law decoding, time placement, barge-in cuts, and the file the owner gets."""

from __future__ import annotations

import uuid
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.db.engine import Database
from app.db.models import Call, Channel, Session
from app.settings import Settings
from app.telephony.mulaw_recording import SAMPLE_RATE, StereoRecording, decode_ulaw
from app.voice.recording_store import save_recording
from tests.doubles.twilio_double import caller_audio
from tests.support.data import create_owner


def ulaw_encode(samples: np.ndarray) -> bytes:
    """Reference G.711 mu-law encoder (sign, biased magnitude, segment, mantissa; bits inverted)."""
    pcm = np.clip(samples.astype(np.int32), -32635, 32635)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.abs(pcm) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def test_decode_ulaw_matches_g711() -> None:
    table = decode_ulaw(bytes(range(256)))
    assert table[0xFF] == 0 and table[0x7F] == 0  # both zero codes
    assert table[0x00] == -32124 and table[0x80] == 32124  # the extremes
    assert table[0xF0] == 120 and table[0x70] == -120
    # Encoding then decoding a ramp stays within one quantisation step of the input.
    ramp = np.linspace(-30000, 30000, 4001).astype(np.int16)
    decoded = decode_ulaw(ulaw_encode(ramp)).astype(np.int32)
    error = np.abs(decoded - ramp)
    step = np.maximum(8, np.abs(ramp.astype(np.int32)) // 16)
    assert np.all(error <= step)


def tone(ms: int, amplitude: int = 8000) -> bytes:
    t = np.arange(ms * 8) / SAMPLE_RATE
    return ulaw_encode((amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def test_pieces_land_on_their_own_channel_at_their_time() -> None:
    recording = StereoRecording()
    recording.add_caller(1000, tone(200))
    recording.add_agent(250.5, tone(100))
    frames = recording.render()
    assert frames.shape == (1200 * 8, 2)
    left, right = frames[:, 0], frames[:, 1]
    assert rms(left[: 1000 * 8]) == 0 and rms(left[1000 * 8 :]) > 4000
    start = round(250.5 * 8)
    assert rms(right[:start]) == 0 and rms(right[start : start + 800]) > 4000 and rms(right[start + 800 :]) == 0


def test_barge_in_cut_and_late_playback() -> None:
    recording = StereoRecording()
    recording.add_agent(0, tone(100))
    recording.add_agent(100, tone(100))
    recording.add_agent(200, tone(100))
    recording.cut_agent(150)  # cleared 150 ms in: the rest was never heard
    assert [p.start_ms for p in recording.agent] == [0, 100]
    assert recording.render().shape[0] == 150 * 8
    recording.add_agent(400, tone(100))
    recording.delay_agent(400, 60)  # a mark came back 60 ms late
    assert recording.agent[-1].start_ms == 460
    assert recording.render().shape[0] == 560 * 8


def test_out_of_range_times_are_ignored() -> None:
    recording = StereoRecording()
    recording.add_caller(-20, tone(20))
    recording.add_agent(10**12, tone(20))
    recording.add_caller(0, b"")
    assert recording.is_empty


async def test_save_recording_writes_a_stereo_wav_and_points_the_call_at_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _user, business = await create_owner(db, recording_enabled=True)
    async with db.session() as s, s.begin():
        session = Session(business_id=business.id, channel=Channel.TWILIO.value)
        s.add(session)
        await s.flush()
        call = Call(session_id=session.id, business_id=business.id, channel=Channel.TWILIO.value,
                    started_at=datetime.now(UTC))
        s.add(call)
    speech = caller_audio("hours")
    recording = StereoRecording()
    for offset in range(0, len(speech), 160):  # as Twilio sends it: 20 ms frames, timestamps in ms
        recording.add_caller(offset // 8, speech[offset : offset + 160])
    recording.add_agent(len(speech) / 8 + 100, tone(500))

    path = await save_recording(db, tmp_path / "recordings", business.id, call.id, recording)
    assert path == (tmp_path / "recordings" / str(business.id) / f"{call.id}.wav").resolve()
    async with db.session() as s:
        stored = await s.get(Call, call.id)
        assert stored is not None and stored.recording_path == str(path)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, SAMPLE_RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    speech_end = len(speech)
    assert np.array_equal(frames[:speech_end, 0], decode_ulaw(speech))
    assert rms(frames[:speech_end, 1]) == 0  # the agent was silent while the caller spoke
    assert rms(frames[speech_end + 800 :, 1]) > 4000 and rms(frames[speech_end + 800 :, 0]) == 0
    assert not list(path.parent.glob("*.part"))


async def test_an_empty_recording_writes_nothing(db: Database, tmp_path: Path) -> None:
    _user, business = await create_owner(db)
    target = tmp_path / "recordings"
    assert await save_recording(db, target, business.id, uuid.uuid4(), StereoRecording()) is None
    assert not target.exists()


async def test_a_moved_call_s_second_part_is_joined_after_the_first(db: Database, tmp_path: Path) -> None:
    """A call that moved to another instance: each instance saves its part at the call's one path, the second
    joined after the first, so the owner hears the whole call in one file."""
    _user, business = await create_owner(db, recording_enabled=True)
    call_id = uuid.uuid4()
    first, second = StereoRecording(), StereoRecording()
    first.add_caller(0, caller_audio("hours")[:8000])  # a second of the caller before the move
    second.add_agent(0, tone(500))  # and the agent's answer after it
    target = tmp_path / "recordings"
    path = await save_recording(db, target, business.id, call_id, first)
    assert path is not None
    before = first.render().shape[0]
    assert await save_recording(db, target, business.id, call_id, second, continues=True) == path
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, SAMPLE_RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert frames.shape[0] == before + second.render().shape[0]
    assert np.array_equal(frames[:before], first.render().astype("<i2"))  # the first part, untouched
    assert rms(frames[before:, 1]) > 4000 and rms(frames[before:, 0]) == 0  # then the agent's answer
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no part files left behind
