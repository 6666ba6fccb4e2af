"""What start-up does so that the first calls don't pay for it on the event loop (stalling every live call's
audio): one shared TLS context for realtime connects (asyncio would build a fresh one, reading the CA store,
for each), the OpenAI clients, and the SDK's lazy imports and response schemas."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.voice.realtime import RealtimeLink, connection_options, tls_context
from app.voice.runtime import CallRuntime
from tests.conftest import make_settings, migrated_database


class RecordingRealtime:
    def __init__(self) -> None:
        self.connects: list[dict[str, Any]] = []

    def connect(self, **kwargs: Any) -> Any:
        self.connects.append(kwargs)
        return self

    async def enter(self) -> object:
        return object()


class FakeClient:
    def __init__(self) -> None:
        self.realtime = RecordingRealtime()


async def test_realtime_connects_over_https_share_one_tls_context(data_dir: Path) -> None:
    settings = make_settings(data_dir, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="https://api.openai.com/v1")
    client = FakeClient()
    for _ in range(3):
        link = RealtimeLink(settings, client)  # type: ignore[arg-type]
        await link.wait_connected()
    contexts = [c["websocket_connection_options"]["ssl"] for c in client.realtime.connects]
    assert len(contexts) == 3 and all(c is tls_context() for c in contexts)
    assert isinstance(contexts[0], ssl.SSLContext) and contexts[0].verify_mode == ssl.CERT_REQUIRED
    assert contexts[0].check_hostname


def test_plain_websocket_base_urls_get_no_tls_context(data_dir: Path) -> None:
    settings = make_settings(data_dir, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert connection_options(settings) == {}


async def test_clients_and_tls_context_are_built_at_start_up(data_dir: Path) -> None:
    tls_context.cache_clear()
    settings = make_settings(data_dir, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="https://api.openai.com/v1")
    async with migrated_database(settings) as db:
        runtime = CallRuntime(settings, db)
        await runtime.start()
        try:
            assert tls_context.cache_info().currsize == 1
            assert runtime._realtime_client is not None and runtime._supervisor_client is not None
        finally:
            await runtime.stop()


def _in_a_fresh_interpreter(probe: str, data_dir: Path) -> tuple[str, str]:
    """The last two lines `probe` prints, run in a new interpreter: in this one, earlier tests may have loaded
    and warmed everything already."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", probe, str(data_dir)], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.strip().splitlines()[-2:]
    return before, after


WARM_UP_PROBE = """
import asyncio, sys
from openai.types.responses import Response
from app.voice.runtime import CallRuntime
from tests.conftest import make_settings, migrated_database
from pathlib import Path

async def main() -> None:
    print(Response.__pydantic_complete__, "openai.resources.responses" in sys.modules)
    settings = make_settings(Path(sys.argv[1]), OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    async with migrated_database(settings) as db:
        runtime = CallRuntime(settings, db)
        await runtime.start()
        await runtime.stop()
    print(Response.__pydantic_complete__, "openai.resources.responses" in sys.modules)

asyncio.run(main())
"""


def test_start_up_warms_the_openai_sdk(data_dir: Path) -> None:
    before, after = _in_a_fresh_interpreter(WARM_UP_PROBE, data_dir)
    assert before == "False False" and after == "True True"


HEAP_PROBE = """
import asyncio, gc, sys
from pathlib import Path
from genai_prices.data_snapshot import get_snapshot
from app.main import GC_THRESHOLDS, create_app
from tests.conftest import make_settings, migrated_database

async def main() -> None:
    settings = make_settings(Path(sys.argv[1]), OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    async with migrated_database(settings):
        pass
    app = create_app(settings)
    engine = app.template_engine.engine
    print(len(engine.cache or {}), gc.get_freeze_count() > 0)
    async with app.lifespan():
        compiled = len(engine.cache)  # before this probe asks for any template itself
        prices = get_snapshot()
        print(compiled >= len(engine.list_templates()),
              gc.get_freeze_count() > 0, gc.get_threshold() == GC_THRESHOLDS,
              not any(o is prices or o is prices.providers for o in gc.get_objects()))

asyncio.run(main())
"""


def test_start_up_loads_what_first_use_would_then_freezes_it_out_of_full_collections(data_dir: Path) -> None:
    # A page's or a call's first use of the price table, a template or a language's CLDR data would load it on
    # the event loop, and leave it where every full collection walks it (each one pauses every call's audio).
    before, after = _in_a_fresh_interpreter(HEAP_PROBE, data_dir)
    assert before == "0 False"
    assert after == "True True True True"
