"""Which confirmation calls are due: for every service the owner turned them on for (N hours before), each
upcoming booked appointment gets one outbound row and its dial job, once per start time (a unique key on the
appointment and its start, so the planner can run any number of times, in any number of processes).

An appointment booked inside its own window (less than N hours before it) gets no call: booking it was the
confirmation. One moved later gets a new row for its new start; the old row's job finds it moved and drops it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert

from app.db.engine import Database
from app.db.models import (
    Appointment,
    AppointmentStatus,
    Customer,
    OutboundCall,
    OutboundKind,
    OutboundSettings,
    OutboundStatus,
)
from app.jobs import job_id_for
from app.outbound.store import schedule_dial

#: how far ahead rows are made (so the owner sees what is scheduled), and the least notice a call is worth
LOOKAHEAD = timedelta(days=14)
MIN_LEAD = timedelta(minutes=30)


async def plan_confirmations(db: Database, *, now: datetime | None = None, business_id: UUID | None = None) -> int:
    """Create the due confirmation calls; returns how many were new."""
    now = now or datetime.now(UTC)
    created = 0
    async with db.session() as s:
        query = select(OutboundSettings)
        if business_id is not None:
            query = query.where(OutboundSettings.business_id == business_id)
        configured = [(p.business_id, dict(p.confirmation_hours or {}), p.max_attempts, p.retry_minutes)
                      for p in await s.scalars(query) if p.confirmation_hours]
    for biz, hours, max_attempts, retry_minutes in configured:
        async with db.session() as s, s.begin():
            rows = (await s.execute(
                select(Appointment, Customer)
                .join(Customer, Customer.id == Appointment.customer_id)
                .where(Appointment.business_id == biz, Appointment.status == AppointmentStatus.BOOKED.value,
                       Appointment.service.in_(list(hours)), Appointment.starts_at > now + MIN_LEAD,
                       Appointment.starts_at < now + LOOKAHEAD)
            )).unique().all()
            for appointment, customer in rows:
                due = appointment.starts_at - timedelta(hours=int(hours[appointment.service]))
                if appointment.created_at is not None and appointment.created_at > due:
                    continue
                if customer.calls_opted_out_at is not None:
                    continue
                at = max(due, now)
                stamp = appointment.starts_at.astimezone(UTC).isoformat()
                row_id = job_id_for(f"confirmation:{appointment.id}:{stamp}")
                result = await s.execute(insert(OutboundCall).values(
                    id=row_id, business_id=biz, kind=OutboundKind.CONFIRMATION.value,
                    status=OutboundStatus.SCHEDULED.value, to_phone=customer.phone, customer_id=customer.id,
                    appointment_id=appointment.id, appointment_starts_at=appointment.starts_at, purpose="",
                    language=getattr(customer, "language", None) or "en", scheduled_for=at, attempts=0,
                    max_attempts=max_attempts, retry_minutes=retry_minutes, created_at=now, updated_at=now,
                ).on_conflict_do_nothing())
                if result.rowcount:  # type: ignore[attr-defined]
                    await schedule_dial(s, row_id, at)
                    created += 1
    return created
