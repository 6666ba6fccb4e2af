"""What the owner's outbound pages read and change, always within one business (like `OwnerScope`: every
query starts from `self.business_id`, so another business's id is simply not found)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing.call_cost import COST_COLUMNS, CallCost
from app.db.models import (
    Appointment,
    Call,
    Customer,
    Message,
    OutboundCall,
    OutboundKind,
    OutboundSettings,
    OutboundStatus,
)
from app.db.services import NotFound
from app.outbound.store import DEFAULTS, outbound_settings, schedule_dial

OPEN = (OutboundStatus.SCHEDULED.value, OutboundStatus.DIALING.value)


@dataclass(frozen=True, slots=True)
class OutboundRow:
    call: OutboundCall
    customer_name: str
    appointment: Appointment | None
    attempt_call_ids: list[UUID]
    #: what its attempts cost together (OpenAI + Twilio's legs; issue 16 item 6), None before any attempt
    cost: CallCost | None = None


class OutboundScope:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], business_id: UUID) -> None:
        self._sessions = sessions
        self.business_id = business_id

    async def settings(self) -> OutboundSettings:
        async with self._sessions() as s:
            return await outbound_settings(s, self.business_id)

    async def save_settings(self, values: dict[str, Any]) -> OutboundSettings:
        async with self._sessions() as s, s.begin():
            row = await s.scalar(select(OutboundSettings).where(OutboundSettings.business_id == self.business_id))
            if row is None:
                row = OutboundSettings(business_id=self.business_id, **DEFAULTS)
                s.add(row)
            for name, value in values.items():
                setattr(row, name, value)
        return row

    async def _rows(self, query: Any) -> list[OutboundRow]:
        async with self._sessions() as s:
            calls = list(await s.scalars(query))
            customers = {c.id: c for c in await s.scalars(select(Customer).where(
                Customer.business_id == self.business_id,
                Customer.id.in_([c.customer_id for c in calls if c.customer_id])))}
            appointments = {a.id: a for a in (await s.scalars(select(Appointment).where(
                Appointment.business_id == self.business_id,
                Appointment.id.in_([c.appointment_id for c in calls if c.appointment_id])))).unique()}
            attempts: dict[UUID, list[UUID]] = {}
            costs: dict[UUID, list[CallCost]] = {}
            for attempt in (await s.execute(
                    select(Call.id, Call.outbound_call_id, *COST_COLUMNS).where(
                        Call.business_id == self.business_id,
                        Call.outbound_call_id.in_([c.id for c in calls])).order_by(Call.started_at))).all():
                attempts.setdefault(attempt.outbound_call_id, []).append(attempt.id)
                costs.setdefault(attempt.outbound_call_id, []).append(CallCost.of(attempt))
        return [OutboundRow(c, customers[c.customer_id].name if c.customer_id in customers else "",
                            appointments.get(c.appointment_id) if c.appointment_id else None,
                            attempts.get(c.id, []), CallCost.summed(costs[c.id]) if c.id in costs else None)
                for c in calls]

    async def scheduled(self) -> list[OutboundRow]:
        return await self._rows(select(OutboundCall).where(OutboundCall.business_id == self.business_id,
                                                           OutboundCall.status.in_(OPEN))
                                .order_by(OutboundCall.scheduled_for).limit(200))

    async def recent(self, limit: int = 30) -> list[OutboundRow]:
        return await self._rows(select(OutboundCall).where(OutboundCall.business_id == self.business_id,
                                                           OutboundCall.status.not_in(OPEN))
                                .order_by(OutboundCall.updated_at.desc()).limit(limit))

    async def cancel(self, row_id: UUID) -> str:
        """Cancel a call not yet on the line: "cancelled"; one on the line finishes but is not retried:
        "on_the_line"; one already over: "finished"."""
        async with self._sessions() as s, s.begin():
            row = await s.scalar(select(OutboundCall).where(OutboundCall.business_id == self.business_id,
                                                            OutboundCall.id == row_id))
            if row is None:
                raise NotFound("not found")
            result = await s.execute(
                update(OutboundCall).where(OutboundCall.id == row_id,
                                           OutboundCall.status == OutboundStatus.SCHEDULED.value)
                .values(status=OutboundStatus.CANCELLED.value, finished_at=datetime.now(UTC),
                        last_error="cancelled by the owner"))
            if not result.rowcount and row.status == OutboundStatus.DIALING.value:
                # On the line now: this attempt goes on, but no retry follows it.
                await s.execute(update(OutboundCall).where(OutboundCall.id == row_id)
                                .values(max_attempts=OutboundCall.attempts))
                return "on_the_line"
        return "cancelled" if result.rowcount else "finished"  # type: ignore[attr-defined]

    async def customers(self) -> list[Customer]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Customer).where(Customer.business_id == self.business_id)
                                        .order_by(Customer.name, Customer.phone).limit(500)))

    async def customer(self, customer_id: UUID) -> Customer:
        async with self._sessions() as s:
            customer = await s.scalar(select(Customer).where(Customer.business_id == self.business_id,
                                                             Customer.id == customer_id))
        if customer is None:
            raise NotFound("customer not found")
        return customer

    async def schedule_callback(self, customer: Customer, at: datetime, purpose: str) -> OutboundCall:
        async with self._sessions() as s, s.begin():
            prefs = await outbound_settings(s, self.business_id)
            row = OutboundCall(business_id=self.business_id, kind=OutboundKind.CALLBACK.value,
                               status=OutboundStatus.SCHEDULED.value, to_phone=customer.phone,
                               customer_id=customer.id, purpose=purpose, scheduled_for=at,
                               language=getattr(customer, "language", None) or "en",
                               max_attempts=prefs.max_attempts, retry_minutes=prefs.retry_minutes)
            s.add(row)
            await s.flush()
            await schedule_dial(s, row.id, at)
        return row

    async def set_call_opt_out(self, customer_id: UUID, opted_out: bool) -> Customer:
        async with self._sessions() as s, s.begin():
            customer = await s.scalar(select(Customer).where(Customer.business_id == self.business_id,
                                                             Customer.id == customer_id))
            if customer is None:
                raise NotFound("customer not found")
            customer.calls_opted_out_at = datetime.now(UTC) if opted_out else None
        return customer

    async def call_back_target(self, source: str, source_id: UUID) -> tuple[str, UUID | None, UUID | None]:
        """The number to call back (only one the business already has) and the customer/message it belongs to,
        for "Call back" on a message, a call or a customer."""
        async with self._sessions() as s:
            if source == "message":
                message = await s.scalar(select(Message).where(Message.business_id == self.business_id,
                                                               Message.id == source_id))
                if message is None or not message.caller_phone:
                    raise NotFound("no number to call back")
                customer_id = message.customer_id or await self._customer_id(s, message.caller_phone)
                return message.caller_phone, customer_id, message.id
            if source == "call":
                call = await s.scalar(select(Call).where(Call.business_id == self.business_id, Call.id == source_id))
                if call is None or not call.caller_phone:
                    raise NotFound("no number to call back")
                return call.caller_phone, call.customer_id or await self._customer_id(s, call.caller_phone), None
            if source == "customer":
                customer = await s.scalar(select(Customer).where(Customer.business_id == self.business_id,
                                                                 Customer.id == source_id))
                if customer is None:
                    raise NotFound("customer not found")
                return customer.phone, customer.id, None
        raise NotFound("nothing to call back")

    async def _customer_id(self, s: AsyncSession, phone: str) -> UUID | None:
        return await s.scalar(select(Customer.id).where(Customer.business_id == self.business_id,
                                                        Customer.phone == phone))

    async def latest(self, row_id: UUID) -> OutboundCall | None:
        async with self._sessions() as s:
            return await s.scalar(select(OutboundCall).where(OutboundCall.business_id == self.business_id,
                                                             OutboundCall.id == row_id))
