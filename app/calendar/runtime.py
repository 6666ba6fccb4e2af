"""The calendar's background work, started and stopped with the app: the outbox worker (pushes bookings to
Google, runs syncs that notifications queued) and the periodic pass (a sync of every calendar as the safety
net under push notifications, and watch channels renewed before they expire)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from litestar import Litestar

from app.background import BackgroundLoop
from app.calendar.google import GoogleCalendar
from app.calendar.outbox import Outbox
from app.calendar.sync import SYNC_JOB, CalendarSync
from app.db.engine import Database
from app.db.scheduling import CALENDAR_PUSH_JOB, forget_committed_change, on_committed_change
from app.settings import Settings

OUTBOX_POLL_SECONDS = 2.0


class CalendarRuntime:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.google = GoogleCalendar(settings)
        self.sync = CalendarSync(settings, db, self.google)
        self.outbox = Outbox(db, {CALENDAR_PUSH_JOB: self._push, SYNC_JOB: self._sync})
        self._worker = BackgroundLoop("calendar-outbox", self._drain, OUTBOX_POLL_SECONDS)
        self._periodic = BackgroundLoop("calendar-periodic", self.sync.periodic, settings.calendar_sync_seconds)

    async def _push(self, payload: Mapping[str, Any]) -> None:
        await self.sync.push_appointment(UUID(str(payload["appointment_id"])))

    async def _sync(self, payload: Mapping[str, Any]) -> None:
        await self.sync.sync_link(UUID(str(payload["link_id"])), full=bool(payload.get("full")))

    async def _drain(self) -> None:
        while await self.outbox.run_once() and not self._worker.stopping:
            pass

    def wake(self) -> None:
        self._worker.wake()

    async def start(self) -> None:
        on_committed_change(self.wake)
        self._worker.start()
        self._periodic.start()

    async def stop(self) -> None:
        forget_committed_change(self.wake)
        await self._periodic.stop()
        await self._worker.stop()


def get_calendar(app: Litestar) -> CalendarRuntime:
    return app.state["calendar"]


async def start_calendar(app: Litestar) -> None:
    runtime = CalendarRuntime(app.state["settings"], app.state["db"])
    app.state["calendar"] = runtime
    await runtime.start()


async def stop_calendar(app: Litestar) -> None:
    runtime: CalendarRuntime | None = app.state.get("calendar")
    if runtime is not None:
        await runtime.stop()
