"""Browser test-call recordings: the caller's microphone and the agent's audio as one stereo PCM16 WAV.

Recorded like phone calls (caller left, agent right), at the browser call's own 24 kHz so nothing is
resampled. The caller's timeline is the microphone stream itself (the page sends audio continuously, so
the bytes received so far are the position); the agent's audio is placed when it is sent, after what is
already queued (the page plays it straight away, in order), and what a barge-in cleared is cut at that
moment. Nothing is decoded or mixed during the call; the WAV is rendered and written off the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.voice import stereo_wav

SAMPLE_RATE = 24_000
BYTES_PER_MS = 48
# A test call longer than this is cut in the file rather than allocating without bound.
MAX_RECORDING_MS = 60 * 60 * 1000


@dataclass(slots=True)
class _Piece:
    start_ms: float
    payload: bytes

    @property
    def end_ms(self) -> float:
        return self.start_ms + len(self.payload) / BYTES_PER_MS


@dataclass
class PcmStereoRecording:
    caller: list[_Piece] = field(default_factory=list)
    agent: list[_Piece] = field(default_factory=list)
    _caller_ms: float = 0.0
    _agent_end_ms: float = 0.0
    _started: float = field(default_factory=time.monotonic)

    def _now_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000

    def add_caller(self, payload: bytes) -> None:
        if payload and self._caller_ms < MAX_RECORDING_MS:
            self.caller.append(_Piece(self._caller_ms, payload))
        self._caller_ms += len(payload) / BYTES_PER_MS

    def add_agent(self, payload: bytes) -> None:
        start = max(self._now_ms(), self._agent_end_ms)
        if payload and start < MAX_RECORDING_MS:
            piece = _Piece(start, payload)
            self.agent.append(piece)
            self._agent_end_ms = piece.end_ms

    def cut_agent(self) -> None:
        """Playback was cleared now: agent audio queued after this moment was never heard."""
        at = self._now_ms()
        kept: list[_Piece] = []
        for piece in self.agent:
            if piece.end_ms <= at:
                kept.append(piece)
            elif piece.start_ms < at:
                heard = int((at - piece.start_ms) * BYTES_PER_MS) // 2 * 2
                kept.append(_Piece(piece.start_ms, piece.payload[:heard]))
        self.agent = kept
        self._agent_end_ms = min(self._agent_end_ms, at)

    @property
    def is_empty(self) -> bool:
        return not self.caller and not self.agent

    def render(self) -> np.ndarray:
        """(samples, 2) int16: column 0 the caller, column 1 the agent."""
        return stereo_wav.place((self.caller, self.agent), lambda piece: np.frombuffer(piece.payload, dtype="<i2"),
                                sample_rate=SAMPLE_RATE, max_ms=MAX_RECORDING_MS)

    def write_wav(self, path: Path) -> None:
        stereo_wav.write_wav(path, self.render(), SAMPLE_RATE)
