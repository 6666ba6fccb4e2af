"""The calendar's background work, started and stopped with the app: two kinds of the process's job queue
(`app.jobs`: pushing a booking change to Google, and a sync a push notification asked for; both written in the
transaction of what caused them, so they survive a crash or an unreachable Google) and the periodic pass (a
sync of every calendar as the safety net under push notifications, and watch channels renewed before they
expire)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from litestar import Litestar

from app.background import BackgroundLoop
from app.calendar.google import GoogleCalendar
from app.calendar.sync import SYNC_JOB, CalendarSync
from app.db.engine import Database
from app.db.models import Job
from app.db.scheduling import CALENDAR_PUSH_JOB, forget_committed_change, on_committed_change
from app.jobs import JobQueue, Permanent
from app.settings import Settings

# Google may be out for hours: 40 attempts at 1 s doubling up to the queue's 10-minute cap is ~6 hours.
MAX_ATTEMPTS = 40
BACKOFF_FIRST_SECONDS = 1.0


def _uuid(payload: Mapping[str, Any], key: str) -> UUID:
    try:
        return UUID(str(payload[key]))
    except (KeyError, ValueError) as exc:
        raise Permanent(f"calendar job without a valid {key}") from exc


class CalendarRuntime:
    def __init__(self, settings: Settings, db: Database, jobs: JobQueue) -> None:
        self.google = GoogleCalendar(settings)
        self.sync = CalendarSync(settings, db, self.google)
        self._jobs = jobs
        jobs.register(CALENDAR_PUSH_JOB, self._push, max_attempts=MAX_ATTEMPTS, backoff_base=BACKOFF_FIRST_SECONDS)
        jobs.register(SYNC_JOB, self._sync, max_attempts=MAX_ATTEMPTS, backoff_base=BACKOFF_FIRST_SECONDS)
        self._periodic = BackgroundLoop("calendar-periodic", self.sync.periodic, settings.calendar_sync_seconds)

    async def _push(self, job: Job) -> None:
        if "block_id" in job.payload:  # an owner's blocked time (app.db.scheduling.record_block_change)
            await self.sync.push_block(_uuid(job.payload, "block_id"), job.payload)
            return
        await self.sync.push_appointment(_uuid(job.payload, "appointment_id"))

    async def _sync(self, job: Job) -> None:
        await self.sync.sync_link(_uuid(job.payload, "link_id"), full=bool(job.payload.get("full")))

    def wake(self) -> None:
        self._jobs.poke()

    async def start(self) -> None:
        on_committed_change(self.wake)
        self._periodic.start()

    async def stop(self) -> None:
        forget_committed_change(self.wake)
        await self._periodic.stop()


def get_calendar(app: Litestar) -> CalendarRuntime:
    return app.state["calendar"]


async def start_calendar(app: Litestar) -> None:
    # After the call runtime's start-up, which builds and starts the process's job queue.
    runtime = CalendarRuntime(app.state["settings"], app.state["db"], app.state["jobs"])
    app.state["calendar"] = runtime
    await runtime.start()


async def stop_calendar(app: Litestar) -> None:
    runtime: CalendarRuntime | None = app.state.get("calendar")
    if runtime is not None:
        await runtime.stop()
