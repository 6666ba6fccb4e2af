"""Phone call recordings: both directions of a Twilio call (mu-law) as one stereo WAV (caller left, agent right).

During the call nothing is decoded: the transport hands over the raw mu-law chunks with the time each was
spoken (caller: Twilio's media `timestamp`) or played (agent: from the playback clock and returned marks).
At the end the chunks are decoded with a lookup table, placed on one 8 kHz timeline and written off the
event loop.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.voice import stereo_wav
from app.voice.transport import base64_bytes

SAMPLE_RATE = 8000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
# A call longer than this is cut in the file rather than allocating without bound on a bad timestamp.
MAX_RECORDING_MS = 4 * 60 * 60 * 1000


def _ulaw_table() -> np.ndarray:
    """G.711 mu-law byte -> 16-bit linear sample, for all 256 codes."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


ULAW_TO_PCM16 = _ulaw_table()


def decode_ulaw(data: bytes) -> np.ndarray:
    return ULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]


@dataclass(slots=True)
class _Piece:
    start_ms: float
    #: mu-law bytes, or their base64 as the model sent it (decoded only when the file is written, off the loop)
    payload: bytes | str
    nbytes: int

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.nbytes / SAMPLES_PER_MS

    def audio(self) -> bytes:
        return base64.b64decode(self.payload) if isinstance(self.payload, str) else self.payload


@dataclass
class StereoRecording:
    """Timed mu-law pieces of one call; times are ms since the media stream started."""

    caller: list[_Piece] = field(default_factory=list)
    agent: list[_Piece] = field(default_factory=list)

    def add_caller(self, timestamp_ms: float, payload: bytes) -> None:
        if payload and 0 <= timestamp_ms < MAX_RECORDING_MS:
            self.caller.append(_Piece(float(timestamp_ms), payload, len(payload)))

    def add_agent(self, start_ms: float, payload: bytes | str) -> None:
        """`payload`: mu-law bytes or their base64 (kept as it is: nothing is decoded on the audio path)."""
        if payload and 0 <= start_ms < MAX_RECORDING_MS:
            nbytes = base64_bytes(payload) if isinstance(payload, str) else len(payload)
            self.agent.append(_Piece(float(start_ms), payload, nbytes))

    def cut_agent(self, at_ms: float) -> None:
        """Playback was cleared at `at_ms`: agent audio scheduled after it was never heard."""
        kept: list[_Piece] = []
        for piece in self.agent:
            if piece.end_ms <= at_ms:
                kept.append(piece)
            elif piece.start_ms < at_ms:
                heard = round((at_ms - piece.start_ms) * SAMPLES_PER_MS)
                cut = piece.audio()[:heard]
                kept.append(_Piece(piece.start_ms, cut, len(cut)))
        self.agent = kept

    def delay_agent(self, from_ms: float, delay_ms: float) -> None:
        """Playback ran late (a mark came back after its scheduled time): shift what was still queued."""
        if delay_ms <= 0:
            return
        for piece in self.agent:
            if piece.start_ms >= from_ms:
                piece.start_ms += delay_ms

    @property
    def is_empty(self) -> bool:
        return not self.caller and not self.agent

    def render(self) -> np.ndarray:
        """(samples, 2) int16: column 0 the caller, column 1 the agent."""
        return stereo_wav.place((self.caller, self.agent), lambda piece: decode_ulaw(piece.audio()),
                                sample_rate=SAMPLE_RATE, max_ms=MAX_RECORDING_MS)

    def write_wav(self, path: Path) -> None:
        stereo_wav.write_wav(path, self.render(), SAMPLE_RATE)
