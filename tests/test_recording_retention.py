"""Recordings past the business's retention are deleted (file and link); younger ones and other businesses' stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.db.engine import Database
from app.db.models import Business, Call
from app.settings import Settings
from app.voice.retention import delete_expired_recordings
from tests.support.dashboard import seed_call
from tests.support.data import create_owner


async def test_old_recordings_are_deleted_and_the_call_stays(settings: Settings, db: Database) -> None:
    _u, keeper = await create_owner(db)
    _u2, forever = await create_owner(db)
    async with db.session() as s, s.begin():
        await s.execute(update(Business).where(Business.id == keeper.id).values(recording_retention_days=30))
    now = datetime.now(UTC)
    files = {}
    calls = {}
    for name, business, age in (("old", keeper, 31), ("young", keeper, 29), ("kept", forever, 400)):
        path = settings.recordings_dir / str(business.id) / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
        files[name] = path
        _s, calls[name] = await seed_call(
            db, business.id, started_at=now - timedelta(days=age), recording_path=str(path))
    outside = settings.recordings_dir.parent / "not-a-recording.wav"
    outside.write_bytes(b"keep me")
    _s, rogue = await seed_call(db, keeper.id, started_at=now - timedelta(days=90), recording_path=str(outside))

    assert await delete_expired_recordings(db, settings.recordings_dir, now=now) == 2
    assert not files["old"].exists() and files["young"].exists() and files["kept"].exists()
    assert outside.exists()  # a path outside the recordings folder is unlinked from the call, never deleted
    async with db.session() as s:
        assert (await s.get(Call, calls["old"].id)).recording_path is None  # type: ignore[union-attr]
        assert (await s.get(Call, calls["old"].id)).transcript  # type: ignore[union-attr]
        assert (await s.get(Call, calls["young"].id)).recording_path == str(files["young"])  # type: ignore[union-attr]
        assert (await s.get(Call, rogue.id)).recording_path is None  # type: ignore[union-attr]
    assert await delete_expired_recordings(db, settings.recordings_dir, now=now) == 0
