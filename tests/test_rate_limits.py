"""The shared rate-limit counter (issue 10): atomic across processes' connections, windows that expire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import RateLimitWindow
from app.db.rate_limits import RateLimits, limit_key
from app.settings import Settings


async def test_concurrent_hits_from_two_processes_databases_are_each_counted_once(
    any_db: Database, db_mode_settings: Settings
) -> None:
    other = Database(db_mode_settings)  # a second engine on the same database: what a second process holds
    try:
        first, second = RateLimits(any_db), RateLimits(other)
        window = timedelta(minutes=1)
        counts = await asyncio.gather(*(
            (first if k % 2 else second).hit("sign-in", "203.0.113.9", limit=30, window=window) for k in range(40)
        ))
        assert sorted(c.hits for c in counts) == list(range(1, 41))
        assert sum(1 for c in counts if not c.allowed) == 10
        assert min(c.remaining for c in counts) == 0
        # Another client and another limit count apart.
        assert (await first.hit("sign-in", "198.51.100.7", limit=30, window=window)).hits == 1
        assert (await first.hit("test-sessions", "203.0.113.9", limit=20, window=window)).hits == 1
        async with any_db.session() as s:
            keys = list(await s.scalars(select(RateLimitWindow.key)))
        assert all("203.0.113.9" not in key for key in keys)  # the address itself is never stored
    finally:
        await other.dispose()


async def test_a_window_starts_over_once_it_has_expired_and_old_rows_are_purged(any_db: Database) -> None:
    limits = RateLimits(any_db)
    window = timedelta(minutes=1)
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for k in range(3):
        count = await limits.hit("sign-in", "client", limit=2, window=window, now=start + timedelta(seconds=k))
    assert count.hits == 3 and not count.allowed and count.reset_at == start + window
    later = await limits.hit("sign-in", "client", limit=2, window=window, now=start + timedelta(seconds=61))
    assert later.hits == 1 and later.allowed and later.reset_at == start + timedelta(seconds=121)
    assert await limits.purge(older_than=start + timedelta(hours=2)) == 1
    async with any_db.session() as s:
        assert await s.scalar(select(func.count()).select_from(RateLimitWindow)) == 0
    assert limit_key("sign-in", "client") != limit_key("test-sessions", "client")
