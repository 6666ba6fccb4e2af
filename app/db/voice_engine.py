"""The owner's voice engine choice (issue 12), scoped to one business by construction: the only write is an
UPDATE of that business's own row, keyed by the id the owner dependency resolved."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Business
from app.settings import VOICE_ENGINES


class VoiceEngineScope:
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], business_id: UUID) -> None:
        self._session_maker = session_maker
        self.business_id = business_id

    async def choose(self, engine: str | None) -> None:
        """`engine` is "realtime", "live", or None to follow the operator's default."""
        if engine is not None and engine not in VOICE_ENGINES:
            raise ValueError(f"unknown voice engine {engine!r}")
        async with self._session_maker() as s, s.begin():
            await s.execute(update(Business).where(Business.id == self.business_id).values(voice_engine=engine))
