"""Process-wide call machinery started with the app (filled in by the call engine)."""

from __future__ import annotations

from litestar import Litestar


async def start_runtime(app: Litestar) -> None:
    return None


async def stop_runtime(app: Litestar) -> None:
    return None
