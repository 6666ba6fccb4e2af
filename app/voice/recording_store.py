"""Where a call's recording goes once the call is over, whatever the channel: a WAV under RECORDINGS_DIR,
written off the event loop, and the Call row pointed at it. The channel's own recording (phone: mu-law,
app/telephony/mulaw_recording.py; browser: PCM, app/voice/pcm_recording.py) knows how to render itself."""

from __future__ import annotations

import asyncio
import logging
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


async def save_recording(
    db: Database, recordings_dir: Path, business_id: UUID, call_id: UUID, recording: WavRecording
) -> Path | None:
    """Write the WAV off the event loop and point the Call at it; None when there was no audio."""
    if recording.is_empty:
        return None
    path = recording_path(recordings_dir, business_id, call_id).resolve()
    started = datetime.now(UTC)
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
