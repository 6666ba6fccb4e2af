"""What the receptionist knows when the stream of a call the business placed opens: its first words (who is
calling and why) and the purpose handed to the models. Read by the Twilio media route (a small hook)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Appointment, Business, Customer, OutboundCall, OutboundKind, Session
from app.outbound.dialer import customer_language, opening_text, purpose_text
from app.outbound.lines import lines_for


@dataclass(frozen=True, slots=True)
class Opening:
    greeting: str
    purpose: str


async def outbound_opening(db: Database, session: Session) -> Opening | None:
    """The opening of an outbound receptionist call on this session; None for a call someone made to us."""
    if not session.twilio_call_sid:
        return None
    async with db.session() as s:
        row = await s.scalar(select(OutboundCall).where(OutboundCall.call_sid == session.twilio_call_sid,
                                                        OutboundCall.business_id == session.business_id))
        if row is None or row.kind == OutboundKind.CLICK_TO_CALL.value:
            return None
        business = await s.get(Business, row.business_id)
        customer = await s.get(Customer, row.customer_id) if row.customer_id else None
        appointment = await s.get(Appointment, row.appointment_id) if row.appointment_id else None
    if business is None:
        return None
    lines = lines_for(row.language or customer_language(customer))
    return Opening(greeting=opening_text(lines, business, row, customer, appointment),
                   purpose=purpose_text(lines, business, row, appointment))
