"""What a call cost, in one definition: OpenAI's usage (`Call.cost_usd`, priced by app.billing.pricing) plus
what Twilio charged for its phone legs (`Call.telephony_cost_usd`, fetched by app.telephony.call_cost) once
Twilio has rated them. Every page, sum and export reads a call's total from here, so they all agree.

A phone cost that is not known (Twilio has not priced the call yet, never did, or priced it in a currency other
than USD) is never counted as 0 in the words shown: the total then says so ("+ phone cost pending").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.call_cost import (
    COST_COLUMNS,
    PENDING,
    PHONE_COST_OPEN,
    RATED,
    TOTAL_COST_USD,
    UNRATED,
    phone_cost_open_count,
)
from app.db.models import Call, Session
from app.i18n.text import Text, tr
from app.jobs import enqueue

__all__ = ["COST_COLUMNS", "PENDING", "PHONE_COST_OPEN", "RATED", "TOTAL_COST_USD", "UNRATED", "CallCost",
           "phone_call_over", "phone_cost_open_count"]

#: the job that reads Twilio's price (handled in app.telephony.call_cost)
PHONE_COST_JOB = "phone_cost"
#: Twilio rarely has a price the moment a call ends: the first look waits this long
FIRST_LOOK = timedelta(seconds=5)


async def phone_call_over(s: AsyncSession, call_sid: str | None, *, now: datetime | None = None) -> None:
    """A Twilio call of ours is over (its status callback said so, or the service ended it): in the caller's
    transaction its phone cost becomes pending and the job that reads Twilio's price is queued, keyed by the
    CallSid, so however many places say so it runs once."""
    if not call_sid:
        return
    session_id = await s.scalar(select(Session.id).where(Session.twilio_call_sid == call_sid))
    if session_id is None:
        return  # not a call of ours (or a retried webhook's leg Twilio replaced)
    await enqueue(s, PHONE_COST_JOB, {"call_sid": call_sid}, key=f"phone-cost:{call_sid}",
                  run_after=(now or datetime.now(UTC)) + FIRST_LOOK)
    await s.execute(update(Call).where(Call.session_id == session_id, Call.telephony_cost_state.is_(None))
                    .values(telephony_cost_state=PENDING))


@dataclass(frozen=True, slots=True)
class CallCost:
    ai_usd: float
    ai_price_unknown: bool = False
    #: None: no phone leg to price (a browser test call) or a call from before phone costs were kept
    phone_state: str | None = None
    phone_amount: float | None = None
    phone_unit: str | None = None
    phone_usd: float | None = None

    @classmethod
    def of(cls, call: Any) -> CallCost:
        """From a Call or a row holding COST_COLUMNS."""
        return cls(ai_usd=float(call.cost_usd or 0.0), ai_price_unknown=bool(call.price_unknown),
                   phone_state=call.telephony_cost_state, phone_amount=call.telephony_cost,
                   phone_unit=call.telephony_cost_unit, phone_usd=call.telephony_cost_usd)

    @classmethod
    def summed(cls, costs: list[CallCost]) -> CallCost:
        """Several calls (a placed call's attempts) as one: their USD totals added, open if any part is."""
        phoned = [c for c in costs if c.phone_state is not None]
        still_open = [c for c in phoned if c.phone_open]
        first_open = still_open[0] if still_open else None
        pending = any(c.phone_state == PENDING for c in still_open)
        return cls(ai_usd=sum(c.ai_usd for c in costs), ai_price_unknown=any(c.ai_price_unknown for c in costs),
                   phone_state=None if not phoned else PENDING if pending else
                   (first_open.phone_state if first_open else RATED),
                   phone_unit=first_open.phone_unit if first_open else "USD" if phoned else None,
                   phone_usd=None if not phoned or (first_open and first_open.phone_state == RATED)
                   else sum(c.phone_usd or 0.0 for c in phoned))

    @property
    def total_usd(self) -> float:
        """The same sum as TOTAL_COST_USD."""
        return self.ai_usd + (self.phone_usd or 0.0)

    @property
    def phone_open(self) -> bool:
        """Same as PHONE_COST_OPEN: a phone leg whose cost is not in the USD total."""
        return self.phone_state is not None and (self.phone_state != RATED or self.phone_usd is None)

    @property
    def complete(self) -> bool:
        return not self.ai_price_unknown and not self.phone_open

    def ai_words(self) -> str:
        """OpenAI's part, for the call page."""
        if not self.ai_price_unknown:
            return money(self.ai_usd)
        return tr("%(amount)s + price unknown", amount=money(self.ai_usd)) if self.ai_usd else tr("price unknown")

    def phone_words(self) -> str:
        """The phone cost on its own, for the call page: an amount, or why there is none."""
        if self.phone_state is None:
            return tr("no phone leg")
        if self.phone_state == PENDING:
            return tr("pending (Twilio has not priced the call yet)")
        if self.phone_state == UNRATED:
            return tr("not rated (Twilio gave no price)")
        if self.phone_usd is not None:
            return money(self.phone_usd)
        return tr("%(amount)s %(unit)s (not in the USD total)", amount=f"{self.phone_amount or 0:,.4f}",
                  unit=self.phone_unit or "")

    def open_words(self) -> str:
        """What the total leaves out, or '' (a translatable Text: the pages word it in the owner's language)."""
        phone: Text | None = None
        if self.phone_state == PENDING:
            phone = tr("phone cost pending")
        elif self.phone_state == UNRATED:
            phone = tr("phone cost not rated")
        elif self.phone_open:
            phone = tr("phone cost in %(unit)s", unit=self.phone_unit)
        if self.ai_price_unknown and phone is not None:
            return tr("%(first)s + %(second)s", first=tr("price unknown"), second=phone)
        if self.ai_price_unknown:
            return tr("price unknown")
        return phone or ""

    def total_words(self) -> str:
        """The total as the lists show it: "$0.0312", or "$0.0150 + phone cost pending"."""
        left_out = self.open_words()
        if not left_out:
            return money(self.total_usd)
        return tr("%(first)s + %(second)s", first=money(self.total_usd), second=left_out) if self.total_usd \
            else left_out

def money(value: float | None) -> str:
    """Cents hide what a call costs (a minute of phone line is $0.0085): under a dollar, four decimals."""
    amount = value or 0.0
    return f"${amount:,.4f}" if 0 < amount < 1 else f"${amount:,.2f}"
