"""Migrations build every table on an empty database and `downgrade base` removes them, on each engine."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from app.db import migrate
from app.db.engine import Database
from app.db.models import UUIDv7AuditBase
from app.settings import Settings

# The remote database starts empty here: these tests run the chain themselves rather than copy the template.
pytestmark = pytest.mark.unmigrated


async def _tables(settings: Settings) -> set[str]:
    database = Database(settings)
    try:
        async with database.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await database.dispose()


async def test_upgrade_then_downgrade(db_mode_settings: Settings) -> None:
    expected = set(UUIDv7AuditBase.metadata.tables)
    assert expected >= {"user_account", "business", "call_session", "call", "call_event", "customer",
                        "appointment", "billing", "message", "job"}
    await asyncio.to_thread(migrate.upgrade, db_mode_settings)
    assert await _tables(db_mode_settings) >= expected | {"alembic_version"}
    await asyncio.to_thread(migrate.downgrade, db_mode_settings, "base")
    assert (await _tables(db_mode_settings)) & expected == set()
    await asyncio.to_thread(migrate.upgrade, db_mode_settings)  # and back up again
    assert await _tables(db_mode_settings) >= expected


async def test_migrations_match_the_models(db_mode_settings: Settings) -> None:
    """A model change without its migration (or the reverse) shows up here, not in production."""
    await asyncio.to_thread(migrate.upgrade, db_mode_settings)
    database = Database(db_mode_settings)
    try:
        async with database.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": False}),
                                           UUIDv7AuditBase.metadata)
            )
    finally:
        await database.dispose()
    assert diff == []
