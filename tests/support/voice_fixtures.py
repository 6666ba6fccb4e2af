"""Fixtures for call-engine tests (a module-wide OpenAI double, settings pointing at it, a migrated
database). Test modules load them with `pytest_plugins = ("tests.support.voice_fixtures",)`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.db.engine import Database
from app.settings import Settings
from tests.doubles.openai_double import OpenAIDouble


@pytest.fixture(scope="module")
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key="test-key") as d:
        yield d


@pytest.fixture
def call_env(double: OpenAIDouble) -> dict[str, str]:
    """Extra environment for the call's settings; a test may add to it before `call_settings` is built."""
    double.reset()
    return {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": double.base_url, "SUPERVISOR_TIMEOUT_SECONDS": "3"}


@pytest.fixture
def call_settings(data_dir: Path, call_env: dict[str, str]) -> Settings:
    from tests.conftest import make_settings

    return make_settings(data_dir, **{k: v for k, v in call_env.items() if v})


@pytest.fixture
async def call_db(call_settings: Settings) -> AsyncIterator[Database]:
    from tests.conftest import migrated_database

    async with migrated_database(call_settings) as database:
        yield database
