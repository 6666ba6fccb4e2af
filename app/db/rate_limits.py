"""Rate-limit counters on the database, so every worker and instance counts against the same limit (issue 10).

One request is one statement: an upsert that starts the client's window at 1 when it has none or its window
has expired, and otherwise adds one, returning the count and the window's start. SQLite (and libSQL) evaluate
an `ON CONFLICT DO UPDATE` against the row as it was, under the write lock, so two processes counting the same
client at once get two different counts: none is lost, and none is counted twice. Expired rows are deleted
now and then by whoever counts next (at most once a minute per process).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects.sqlite import insert

from app.db.engine import Database
from app.db.models import RateLimitWindow

PURGE_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Count:
    hits: int
    limit: int
    reset_at: datetime

    @property
    def allowed(self) -> bool:
        return self.hits <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)


def limit_key(name: str, client: str) -> str:
    """The row's key: the limit's name and a hash of the client (no address is stored)."""
    return f"{name}:{hashlib.sha256(client.encode()).hexdigest()[:40]}"


class RateLimits:
    """Counts hits per (limit, client) in fixed windows that start at a client's first hit."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._purged_at = 0.0

    async def hit(self, name: str, client: str, *, limit: int, window: timedelta,
                  now: datetime | None = None) -> Count:
        now = now or datetime.now(UTC)
        expired = RateLimitWindow.window_start <= now - window
        statement = insert(RateLimitWindow).values(
            id=uuid.uuid4(), key=limit_key(name, client), window_start=now, hits=1, created_at=now, updated_at=now,
        ).on_conflict_do_update(
            index_elements=[RateLimitWindow.key],
            set_={"hits": case((expired, 1), else_=RateLimitWindow.hits + 1),
                  "window_start": case((expired, now), else_=RateLimitWindow.window_start),
                  "updated_at": now},
        ).returning(RateLimitWindow.hits, RateLimitWindow.window_start)
        async with self._db.write() as s:
            hits, started = (await s.execute(statement)).one()
        if time.monotonic() - self._purged_at > PURGE_EVERY_SECONDS:
            self._purged_at = time.monotonic()
            await self.purge(older_than=now - max(window, timedelta(hours=1)))
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        return Count(hits=int(hits), limit=limit, reset_at=started + window)

    async def purge(self, *, older_than: datetime) -> int:
        async with self._db.write() as s:
            result = await s.execute(delete(RateLimitWindow).where(RateLimitWindow.window_start < older_than))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
