"""Start-up of the outbound calls: the dialer's job kinds join the process's one job worker, and a slow loop
plans the confirmation calls (keyed, so harmless in every process at once). After the call runtime."""

from __future__ import annotations

from litestar import Litestar

from app.background import BackgroundLoop
from app.outbound.dialer import Dialer
from app.outbound.planner import plan_confirmations
from app.telephony.rest import TwilioCalls

PLANNING_SECONDS = 300.0


async def start_outbound(app: Litestar) -> None:
    db, settings = app.state.db, app.state.settings
    dialer = Dialer(db, settings, TwilioCalls.from_settings(settings))
    dialer.register(app.state.jobs)
    app.state.outbound = dialer

    async def plan() -> None:
        if await plan_confirmations(db):
            dialer.poke()

    loop = BackgroundLoop("outbound-planning", plan, PLANNING_SECONDS)
    loop.start()
    app.state.outbound_loop = loop


async def stop_outbound(app: Litestar) -> None:
    loop = app.state.get("outbound_loop")
    if loop is not None:
        await loop.stop()
