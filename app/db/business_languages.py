"""The business's languages (issue 16), scoped to one business by construction: the only write is an UPDATE of
that business's own row, keyed by the id the owner dependency resolved."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Business
from app.i18n.languages import validate


class LanguageScope:
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], business_id: UUID) -> None:
        self._session_maker = session_maker
        self.business_id = business_id

    async def choose(self, primary: str, others: Iterable[str]) -> list[str]:
        """Store the languages (primary first); LanguageError, and nothing stored, when they can't be offered."""
        codes = validate(primary, others)
        async with self._session_maker() as s, s.begin():
            await s.execute(update(Business).where(Business.id == self.business_id).values(languages=codes))
        return codes
