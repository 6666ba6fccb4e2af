"""Where a call's recording goes once the call is over, whatever the channel: a WAV under RECORDINGS_DIR,
written off the event loop, and the Call row pointed at it. The channel's own recording (phone: mu-law,
app/telephony/mulaw_recording.py; browser: PCM, app/voice/pcm_recording.py) knows how to render itself."""

from __future__ import annotations

import asyncio
import logging
import os
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID

from sqlalchemy import update

from app.db.engine import Database
from app.db.models import Call

log = logging.getLogger(__name__)


def recording_path(recordings_dir: Path, business_id: UUID, call_id: UUID) -> Path:
    return recordings_dir / str(business_id) / f"{call_id}.wav"


class WavRecording(Protocol):
    """What `save_recording` needs: a phone call's StereoRecording or a browser call's PcmStereoRecording."""

    @property
    def is_empty(self) -> bool: ...

    def write_wav(self, path: Path) -> None: ...


def _write_continuing(recording: WavRecording, path: Path) -> None:
    """Write `recording` after the part of the call already at `path` (a call that moved here from another
    instance: its first part was saved there), end to end, through a temporary file renamed into place so a
    reader never sees half a file. The second or so of the move itself held no audio and is not in the file."""
    if not path.exists():
        recording.write_wav(path)
        return
    part = path.with_name(path.stem + ".part.wav")
    joined = path.with_name(path.stem + ".joined.wav")
    recording.write_wav(part)
    try:
        with wave.open(str(path), "rb") as first, wave.open(str(part), "rb") as second:
            if first.getparams()[:3] != second.getparams()[:3]:
                raise ValueError("the two parts of the recording differ in format")
            with wave.open(str(joined), "wb") as out:
                out.setparams(first.getparams())
                out.writeframes(first.readframes(first.getnframes()))
                out.writeframes(second.readframes(second.getnframes()))
        os.replace(joined, path)
    finally:
        part.unlink(missing_ok=True)
        joined.unlink(missing_ok=True)


async def save_recording(
    db: Database, recordings_dir: Path, business_id: UUID, call_id: UUID, recording: WavRecording,
    *, continues: bool = False,
) -> Path | None:
    """Write the WAV off the event loop and point the Call at it; None when there was no audio. `continues`:
    the call moved here, and this part is joined after the one the other instance saved."""
    if recording.is_empty:
        return None
    path = recording_path(recordings_dir, business_id, call_id).resolve()
    started = datetime.now(UTC)
    if continues:
        await asyncio.to_thread(_write_continuing, recording, path)
    else:
        await asyncio.to_thread(recording.write_wav, path)
    async with db.session() as s, s.begin():
        await s.execute(
            update(Call)
            .where(Call.id == call_id, Call.business_id == business_id)
            .values(recording_path=str(path))
        )
    log.info("recording of call %s written to %s in %.0f ms", call_id, path,
             (datetime.now(UTC) - started).total_seconds() * 1000)
    return path
