"""Shared fixtures: a fresh, migrated database per test in each database mode, and settings to match."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from app.db import migrate
from app.db.engine import Database
from app.settings import Settings, load_settings
from tests.support.server import base_env
from tests.support.template_db import copy_migrated, local_database_file

DB_MODES = ("sqlite", "libsql-file", "libsql-remote")


def make_settings(data_dir: Path, **env: str) -> Settings:
    return load_settings(base_env(data_dir, **env))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir)


# Remote (Hrana) databases whose file was seeded from the migrated template before the server started.
_seeded_remotes: set[str] = set()


@asynccontextmanager
async def migrated_database(settings: Settings) -> AsyncIterator[Database]:
    """The settings' database, migrated to head, disposed afterwards."""
    path = local_database_file(settings.database_url)
    if path is not None and not path.exists():
        await asyncio.to_thread(copy_migrated, path)
    elif settings.database_url not in _seeded_remotes:
        await asyncio.to_thread(migrate.upgrade, settings)
    database = Database(settings)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The embedded SQLite database, migrated to head."""
    async with migrated_database(settings) as database:
        yield database


@pytest.fixture(params=DB_MODES)
def db_mode_settings(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Settings]:
    """Settings for each database mode: embedded file, libSQL file, libSQL remote (local Hrana server)."""
    mode = request.param
    if mode == "sqlite":
        yield make_settings(data_dir)
    elif mode == "libsql-file":
        yield make_settings(data_dir, DATABASE_URL=f"sqlite+libsql:///{data_dir / 'libsql.db'}")
    else:
        from tests.doubles.hrana_server import HranaServer

        remote = data_dir / "remote.db"
        if request.node.get_closest_marker("unmigrated") is None:
            copy_migrated(remote)
        server = HranaServer(remote, token="test-turso-token")
        server.start()
        if request.node.get_closest_marker("unmigrated") is None:
            _seeded_remotes.add(server.database_url)
        try:
            yield make_settings(data_dir, DATABASE_URL=server.database_url, TURSO_AUTH_TOKEN="test-turso-token")
        finally:
            _seeded_remotes.discard(server.database_url)
            server.stop()


@pytest.fixture
async def any_db(db_mode_settings: Settings) -> AsyncIterator[Database]:
    """A migrated database in each of the three modes."""
    async with migrated_database(db_mode_settings) as database:
        yield database


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (long fuzz and fault runs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
