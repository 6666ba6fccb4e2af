"""What Twilio charged for a call's phone legs, read from Twilio once it has rated them (issue 16 item 6).

Twilio prices a call a little after it ends: the Call resource's `price` is null until then (seconds to
minutes), then a negative decimal string ("-0.01300") in `price_unit` (ISO 4217, the account's currency). A
`<Dial>` — a transfer, the fallback's forward, a click-to-call's leg to the customer — is a call of its own,
billed apart, whose `parent_call_sid` is the call's. So a call's phone cost is the call's price plus its
child legs' (`Calls.json?ParentCallSid=`), as absolute amounts.

- `app.billing.call_cost.phone_call_over()` is called where the service learns that a Twilio call is over:
  Twilio's status callback (`/twilio/status`, `/twilio/outbound/{id}/status`) and the finalisation of a call
  (app.voice.lifecycle), whichever comes first; the job is keyed by the CallSid, so it runs once.
- The `phone_cost` job fetches the call and its legs through the twilio SDK (app.telephony.rest). A price still
  null (or a leg still going on: a transferred call's Twilio call outlives its record) is looked at again with
  the queue's backoff (5 s after the call, then 5, 10, 20 s … up to every 10 minutes) for RATING_WINDOW after
  the call ended, then the call is left "unrated" (shown as not rated, never as 0). A Twilio outage
  (5xx, no connection) is retried the same way for as long as the job's attempts last (about a day): nothing
  is lost. Other currencies are kept as they come, with their unit, outside the USD totals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update

from app.billing.call_cost import PHONE_COST_JOB, RATED, UNRATED
from app.db.engine import Database
from app.db.models import Call, Job, Session
from app.jobs import JobQueue, Permanent
from app.telephony.rest import CallLeg, TwilioCalls, TwilioRefused, TwilioUnavailable

log = logging.getLogger(__name__)

#: how long after the call ended a missing price is still waited for
RATING_WINDOW = timedelta(hours=3)
#: a status callback can arrive before the bridge has finalised the call's record: wait this long for it
RECORD_WAIT = timedelta(minutes=40)
BACKOFF_BASE = 5.0
#: with the queue's backoff (capped at 10 minutes) about 26 hours of retries: RATING_WINDOW and an outage of a day
MAX_ATTEMPTS = 160
#: Twilio's final call statuses; a leg in any other is still going on and can't be priced yet
FINAL = {"completed", "busy", "no-answer", "canceled", "failed"}


class NotYet(Exception):
    """Twilio (or the call's own record) isn't there yet: look again later."""


@dataclass(frozen=True, slots=True)
class PhoneCost:
    amount: Decimal
    unit: str

    @property
    def usd(self) -> float | None:
        return float(self.amount) if self.unit == "USD" else None


def sum_legs(legs: Sequence[CallLeg]) -> PhoneCost | None:
    """The legs' prices added (absolute values, Twilio's are negative), or None while any leg is unpriced.
    Raises ValueError for what can never be summed (an unreadable price, legs in two currencies)."""
    if not legs:
        raise ValueError("no call legs")
    total = Decimal(0)
    units: set[str] = set()
    for leg in legs:
        if leg.status not in FINAL or leg.price is None or leg.price == "":
            return None
        try:
            total += abs(Decimal(leg.price))
        except InvalidOperation as exc:
            raise ValueError(f"unreadable price {leg.price!r}") from exc
        units.add((leg.price_unit or "USD").upper())
    if len(units) > 1:
        raise ValueError(f"legs priced in {sorted(units)}")
    return PhoneCost(total, units.pop())


class PhoneCosts:
    """The `phone_cost` job kind of one process."""

    def __init__(self, db: Database, calls: TwilioCalls | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self._calls = calls
        self._clock = clock

    def register(self, jobs: JobQueue) -> None:
        jobs.register(PHONE_COST_JOB, self.run, max_attempts=MAX_ATTEMPTS, backoff_base=BACKOFF_BASE)

    async def run(self, job: Job) -> None:
        call_sid = str(job.payload.get("call_sid") or "")
        if not call_sid.startswith("CA"):
            raise Permanent("phone cost job without a CallSid")
        now = self._clock()
        async with self._db.session() as s:
            call = (await s.execute(
                select(Call.id, Call.ended_at, Call.telephony_cost_state)
                .join(Session, Session.id == Call.session_id).where(Session.twilio_call_sid == call_sid)
            )).first()
        if call is None or call.ended_at is None:
            if now - job.created_at.astimezone(UTC) > RECORD_WAIT:
                # No record of it to cost (a retried webhook's leg, a call that never reached the service).
                if call is not None:
                    await self._store(call.id, UNRATED)
                return
            raise NotYet("the call's record is not final yet")
        if call.telephony_cost_state == RATED:
            return
        if self._calls is None:
            await self._store(call.id, UNRATED)
            return
        try:
            legs = await self._calls.call_legs(call_sid)
        except TwilioRefused as exc:
            # 404: Twilio has no such call (deleted from the account, another account's): it will never be priced.
            log.warning("phone cost of call %s: %s", call.id, exc)
            await self._store(call.id, UNRATED)
            return
        except TwilioUnavailable:
            if job.attempts >= MAX_ATTEMPTS:  # the last try: say "not rated" rather than "pending" for ever
                await self._store(call.id, UNRATED)
            raise
        try:
            cost = sum_legs(legs)
        except ValueError as exc:
            log.warning("phone cost of call %s can't be summed: %s", call.id, exc)
            await self._store(call.id, UNRATED)
            return
        if cost is None:
            if now - call.ended_at.astimezone(UTC) > RATING_WINDOW:
                log.info("phone cost of call %s: Twilio gave no price within %s", call.id, RATING_WINDOW)
                await self._store(call.id, UNRATED)
                return
            raise NotYet("Twilio has not priced the call yet")
        await self._store(call.id, RATED, cost)
        log.info("phone cost of call %s: %s %s over %d leg(s)", call.id, cost.amount, cost.unit, len(legs))

    async def _store(self, call_id: Any, state: str, cost: PhoneCost | None = None) -> None:
        async with self._db.write() as s:
            await s.execute(update(Call).where(Call.id == call_id).values(
                telephony_cost_state=state,
                telephony_cost=float(cost.amount) if cost else None,
                telephony_cost_unit=cost.unit if cost else None,
                telephony_cost_usd=cost.usd if cost else None,
            ))
