"""Start-up of the inbox's jobs: the notification kinds join the process's one job worker, and a slow loop
makes sure every business with a daily digest has its next one queued (hourly; keyed, so harmless to repeat).
Nothing here touches the database before the app is serving, so a database that is down at start-up only
delays digests (the loop retries) instead of stopping the service."""

from __future__ import annotations

from litestar import Litestar

from app.background import BackgroundLoop
from app.inbox.sender import Notifier

DIGEST_SCHEDULING_SECONDS = 3600.0


async def start_inbox(app: Litestar) -> None:
    """After the call runtime (which builds and starts `app.state.jobs`)."""
    notifier = Notifier(app.state.db, app.state.settings)
    notifier.register(app.state.jobs)
    app.state.notifier = notifier
    loop = BackgroundLoop("digest-scheduling", notifier.schedule_all_digests, DIGEST_SCHEDULING_SECONDS)
    loop.start()
    app.state.inbox_loop = loop
    app.state.jobs.poke()  # notifications left by a previous process go out now, not at the next poll


async def stop_inbox(app: Litestar) -> None:
    loop = app.state.get("inbox_loop")
    if loop is not None:
        await loop.stop()
