"""Servers the browser tests share, one of each kind per test process (session-scoped: a granian start on the
loaded 2-core machine takes 5-30 s). Each module keeps to its own owners (`ensure_owner`), so sharing a server
changes nothing a test sees.

- `voice_server`: OpenAI reached only through the double (`openai_double`), for browser test calls;
- `plain_server`: no OpenAI key, no Google: local sign-in, the owner pages, and the "no OpenAI" notice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles.openai_double import OpenAIDouble
from tests.support.server import RunningServer, base_env, run_server

OPENAI_KEY = "test-key"


@pytest.fixture(scope="session")
def openai_double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key=OPENAI_KEY) as double:
        yield double


@pytest.fixture(scope="session")
def voice_server(tmp_path_factory: pytest.TempPathFactory, openai_double: OpenAIDouble) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("e2e-voice")
    env = base_env(data, OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=openai_double.base_url,
                   SUPERVISOR_TIMEOUT_SECONDS="5", RECORDINGS_DIR=str(data / "recordings"))
    with run_server(env) as running:
        yield running


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("e2e-plain")
    with run_server(base_env(data, RECORDINGS_DIR=str(data / "recordings"))) as running:
        yield running
