"""Start-up of the inbox's jobs: the notification kinds join the process's one job worker."""

from __future__ import annotations

from litestar import Litestar

from app.inbox.sender import Notifier


async def start_inbox(app: Litestar) -> None:
    """After the call runtime (which builds and starts `app.state.jobs`)."""
    notifier = Notifier(app.state.db, app.state.settings)
    notifier.register(app.state.jobs)
    app.state.notifier = notifier
    await notifier.schedule_all_digests()
    app.state.jobs.poke()  # notifications left by a previous process go out now, not at the next poll
