"""The one way a call's recording becomes a file: timed pieces placed on a stereo timeline (caller left, agent
right) and written as PCM16 WAV, for phone calls (mu-law, 8 kHz) and browser test calls (PCM16, 24 kHz) alike."""

from __future__ import annotations

import wave
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np


class Piece(Protocol):
    @property
    def start_ms(self) -> float: ...

    @property
    def end_ms(self) -> float: ...


P = TypeVar("P", bound=Piece)


def place(columns: Sequence[Iterable[P]], samples_of: Callable[[P], np.ndarray], *, sample_rate: int,
          max_ms: float) -> np.ndarray:
    """(samples, len(columns)) int16, each piece at its start; cut at `max_ms` rather than allocating without
    bound. Later pieces overwrite: a re-sent or overlapping chunk must not double the amplitude."""
    pieces = [list(column) for column in columns]
    end_ms = max((p.end_ms for column in pieces for p in column), default=0.0)
    total = int(min(end_ms, max_ms) * sample_rate / 1000)
    frames = np.zeros((total, len(pieces)), dtype=np.int16)
    for index, column in enumerate(pieces):
        for piece in column:
            start = round(piece.start_ms * sample_rate / 1000)
            samples = samples_of(piece)[: max(0, total - start)]
            frames[start : start + len(samples), index] = samples
    return frames


def write_wav(path: Path, frames: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".wav.part")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(frames.shape[1] if frames.ndim == 2 else 1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(frames.astype("<i2").tobytes())
    partial.replace(path)  # a reader never sees a half-written file
