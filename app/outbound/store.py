"""The outbound_call table's transitions, each one conditional write (so two workers, two processes, or a job
and a status callback never both apply one), and the owner's outbound settings.

    scheduled ──claim_slot──▶ dialing ──(answered; settled)──▶ done
        ▲                        │
        └──── retry (no answer, busy, failed, while attempts are left) ◀─┘
    scheduled|dialing ──▶ cancelled (the owner) | failed (attempts used up, refused, opted out)

The per-business cap on calls at once is held by the database, not by a process: `claim_slot` moves a row to
`dialing` only while fewer than `max_concurrent` of the business's receptionist calls are dialing, in one
UPDATE whose subquery counts them. SQLite (and libSQL) run each write statement under the database's write
lock, so two workers claiming at once are serialised and the second sees the first's row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import Database
from app.db.models import OutboundCall, OutboundKind, OutboundSettings, OutboundStatus
from app.i18n.pages import tr
from app.jobs import enqueue

DIAL_JOB = "outbound_dial"
SETTLE_JOB = "outbound_settle"

#: a dialing slot whose status callback never came (lost, or the call's process died) is given back after this
STALE_DIALING = timedelta(hours=1)

DEFAULTS: dict[str, Any] = {
    "owner_phone": "", "calling_start": "09:00", "calling_end": "19:00", "confirmation_hours": {},
    "max_attempts": 3, "retry_minutes": 30, "max_concurrent": 2,
}

#: what the owner sees for each outcome (in the owner's language on the pages: app.i18n.pages)
OUTCOME_WORDS = {
    "confirmed": tr("confirmed"), "rescheduled": tr("rescheduled"), "cancelled": tr("cancelled"),
    "voicemail_left": tr("voicemail left"), "no_answer": tr("no answer"), "busy": tr("busy"),
    "failed": tr("failed"), "connected": tr("connected"), "talked": tr("talked"),
    "owner_no_answer": tr("you didn't pick up"), "opted_out": tr("opted out of calls"),
    "refused": tr("number refused"), "fax": tr("fax machine"), "unconfirmed": tr("unconfirmed"),
}


async def outbound_settings(s: AsyncSession, business_id: UUID) -> OutboundSettings:
    row = await s.scalar(select(OutboundSettings).where(OutboundSettings.business_id == business_id))
    return row if row is not None else OutboundSettings(business_id=business_id, **DEFAULTS)


def dial_key(row_id: UUID, at: datetime) -> str:
    return f"outbound:{row_id}:{at.astimezone(UTC).isoformat()}"


async def schedule_dial(s: AsyncSession, row_id: UUID, at: datetime) -> None:
    """The dial job for `row_id` at `at`, in `s`'s transaction (the same time twice is one job)."""
    await enqueue(s, DIAL_JOB, {"outbound_call_id": str(row_id)}, key=dial_key(row_id, at), run_after=at)


async def claim_slot(db: Database, row: OutboundCall, *, cap: int, now: datetime) -> bool:
    """Move a scheduled row to dialing (one more attempt) if the business has a free slot; False if not (or
    the row is no longer scheduled: cancelled by the owner meanwhile)."""
    busy = (
        select(func.count())
        .select_from(OutboundCall)
        .where(OutboundCall.business_id == row.business_id, OutboundCall.status == OutboundStatus.DIALING.value,
               OutboundCall.kind != OutboundKind.CLICK_TO_CALL.value,
               OutboundCall.dialing_since > now - STALE_DIALING)
        .scalar_subquery()
    )
    async with db.session() as s, s.begin():
        result = await s.execute(
            update(OutboundCall)
            .where(OutboundCall.id == row.id, OutboundCall.status == OutboundStatus.SCHEDULED.value, busy < cap)
            .values(status=OutboundStatus.DIALING.value, dialing_since=now, attempts=OutboundCall.attempts + 1,
                    call_sid=None, answered_by=None, voicemail_text=None)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_call_sid(db: Database, row_id: UUID, call_sid: str) -> None:
    """Remember the attempt's CallSid (a status callback that came first may already have)."""
    async with db.session() as s, s.begin():
        await s.execute(update(OutboundCall).where(OutboundCall.id == row_id, OutboundCall.call_sid.is_(None),
                                                   OutboundCall.status == OutboundStatus.DIALING.value)
                        .values(call_sid=call_sid))


async def release_for_retry(s: AsyncSession, row_id: UUID, *, at: datetime, error: str | None = None) -> bool:
    """A dialing row back to scheduled for another attempt at `at` (its dial job queued in the same
    transaction); False if it was not dialing (cancelled, or a repeated callback already did this)."""
    result = await s.execute(
        update(OutboundCall).where(OutboundCall.id == row_id, OutboundCall.status == OutboundStatus.DIALING.value)
        .values(status=OutboundStatus.SCHEDULED.value, scheduled_for=at, dialing_since=None, call_sid=None,
                last_error=error)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await schedule_dial(s, row_id, at)
    return True


async def finish(s: AsyncSession, row_id: UUID, status: OutboundStatus, outcome: str | None, *,
                 error: str | None = None, from_statuses: tuple[OutboundStatus, ...] = (
                     OutboundStatus.SCHEDULED, OutboundStatus.DIALING)) -> bool:
    """End the row once (done, failed or cancelled) with what it came to."""
    result = await s.execute(
        update(OutboundCall)
        .where(OutboundCall.id == row_id, OutboundCall.status.in_([st.value for st in from_statuses]))
        .values(status=status.value, outcome=outcome, last_error=error, finished_at=datetime.now(UTC),
                dialing_since=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
