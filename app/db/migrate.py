"""Apply or roll back the Alembic migrations in `migrations/` for the configured database."""

from __future__ import annotations

from advanced_alchemy.alembic.commands import AlembicCommands

from app.db.engine import build_sqlalchemy_config
from app.settings import Settings


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Blocking (Alembic runs its own event loop): call from a thread when inside async code."""
    AlembicCommands(sqlalchemy_config=build_sqlalchemy_config(settings)).upgrade(revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    AlembicCommands(sqlalchemy_config=build_sqlalchemy_config(settings)).downgrade(revision)
