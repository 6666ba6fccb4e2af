"""Recording retention: audio older than the business's chosen number of days is deleted on schedule.

Runs inside housekeeping (every minute) but does real work at most once an hour per process: one query
for the businesses that set a retention, then per business an indexed range of its old calls that still
have a file, a bounded batch at a time. Files are removed off the event loop; the call keeps its
transcript and summary, only `recording_path` is cleared, so the call page stops offering the audio.
A file already gone (deleted by hand, another instance) counts as deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import Business, Call

log = logging.getLogger(__name__)

RETENTION_EVERY_SECONDS = 3600
BATCH = 500
_last_run = 0.0


def _remove(paths: list[str], recordings_dir: Path) -> None:
    root = recordings_dir.resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_relative_to(root):  # never delete anything outside the recordings folder
            path.unlink(missing_ok=True)


async def delete_expired_recordings(db: Database, recordings_dir: Path, *, now: datetime | None = None) -> int:
    """Delete recordings past each business's retention; returns how many calls lost their audio."""
    now = now or datetime.now(UTC)
    async with db.session() as s:
        keeping = list((await s.execute(
            select(Business.id, Business.recording_retention_days).where(
                Business.recording_retention_days.is_not(None))
        )).tuples())
    deleted = 0
    for business_id, days in keeping:
        cutoff = now - timedelta(days=int(days or 0))
        while True:
            async with db.session() as s:
                rows = list((await s.execute(
                    select(Call.id, Call.recording_path)
                    .where(Call.business_id == business_id, Call.started_at < cutoff, Call.recording_path.is_not(None))
                    .limit(BATCH)
                )).tuples())
            if not rows:
                break
            await asyncio.to_thread(_remove, [path for _id, path in rows if path], recordings_dir)
            async with db.session() as s, s.begin():
                await s.execute(
                    update(Call).where(Call.business_id == business_id, Call.id.in_([i for i, _p in rows]))
                    .values(recording_path=None)
                )
            deleted += len(rows)
            if len(rows) < BATCH:
                break
    if deleted:
        log.info("retention: deleted %d recordings", deleted)
    return deleted


async def retention_pass(db: Database, recordings_dir: Path) -> None:
    """Housekeeping's hook: the real pass at most once an hour per process."""
    global _last_run
    if time.monotonic() - _last_run < RETENTION_EVERY_SECONDS and _last_run:
        return
    _last_run = time.monotonic()
    await delete_expired_recordings(db, recordings_dir)
