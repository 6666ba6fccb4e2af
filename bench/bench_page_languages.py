"""What the owner's language costs a page (issue 16): the overview, the calls list, a call and the settings page
rendered in-process (Litestar's test client, the real app and templates, an SQLite file) for an English and a
Spanish business with the same data, p50/p95 over repeated requests. Run it on a branch without the
catalogues too (`PYTHONPATH=<checkout>`) for the floor: the English figures there are the pages before gettext.

    .venv/bin/python bench/bench_page_languages.py [--calls 200] [--requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402

from app.auth.cookies import COOKIE_NAME, SessionSigner  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.main import create_app  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.support.dashboard import seed_call  # noqa: E402
from tests.support.data import create_owner  # noqa: E402
from tests.support.template_db import copy_migrated  # noqa: E402

PAGES = ("/", "/calls", "/calls/{call}", "/settings")


async def _run(data_dir: Path, calls: int, requests: int) -> dict[str, dict[str, list[float]]]:
    settings = load_settings({"DATA_DIR": str(data_dir), "SESSION_SECRETS": "bench-secret-0123456789abcdef",
                              "LOG_LEVEL": "WARNING"})
    db = Database(settings)
    owners = {}
    for label, languages in (("en", ["en-US"]), ("es", ["es-MX", "en-US"])):
        try:
            user, business = await create_owner(db, languages=languages)
        except TypeError:  # a checkout without Business.languages
            user, business = await create_owner(db)
        now = datetime.now(UTC)
        last = None
        for n in range(calls):
            _session, last = await seed_call(db, business.id, started_at=now - timedelta(minutes=7 * n + 1),
                                             summary="Wants a haircut on Tuesday.")
        owners[label] = (user.id, last.id if last else None)
    await db.dispose()
    signer = SessionSigner(settings.session_secrets)
    cookies = {label: {"cookie": f"{COOKIE_NAME}={signer.sign(user_id)}"} for label, (user_id, _c) in owners.items()}
    times: dict[str, dict[str, list[float]]] = {label: {} for label in owners}
    async with AsyncTestClient(create_app(settings)) as client:
        for path in PAGES:
            for label, (_u, call_id) in owners.items():
                for _ in range(3):  # warm the template cache and the connection pool
                    response = await client.get(path.format(call=call_id), headers=cookies[label])
                    assert response.status_code == 200, (path, response.status_code)
                times[label][path] = []
            for _ in range(requests):  # the two languages interleaved, so load on the machine hits both alike
                for label, (_u, call_id) in owners.items():
                    started = time.perf_counter()
                    response = await client.get(path.format(call=call_id), headers=cookies[label])
                    times[label][path].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, path
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-page-languages-"))
    copy_migrated(data_dir / "receptionist.db")  # outside the event loop: it may run the migrations
    times = asyncio.run(_run(data_dir, args.calls, args.requests))
    print(f"{args.calls} calls per business, {args.requests} requests per page (ms)")
    print(f"{'page':<16}" + "".join(f"{lang + ' p50':>10}{lang + ' p95':>10}" for lang in times))
    for path in PAGES:
        row = f"{path:<16}"
        for lang in times:
            samples = sorted(times[lang][path])
            row += f"{statistics.median(samples):>10.1f}{samples[int(len(samples) * 0.95) - 1]:>10.1f}"
        print(row)


if __name__ == "__main__":
    main()
