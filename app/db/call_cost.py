"""A call's total cost as SQL, in one definition (the figures' sums, the lists): OpenAI's usage plus what Twilio
charged for the phone legs where Twilio has priced them. The same definition in Python, with the words the
pages show, is app.billing.call_cost.CallCost."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, case, func, or_

from app.db.models import Call

PENDING = "pending"
RATED = "rated"
UNRATED = "unrated"

#: SQL: a call's total cost in USD, as far as it is known (what the figures sum).
TOTAL_COST_USD: ColumnElement[float] = Call.cost_usd + func.coalesce(Call.telephony_cost_usd, 0.0)

#: SQL: the call has a phone leg whose cost is not (yet) in its USD total.
PHONE_COST_OPEN: ColumnElement[bool] = and_(
    Call.telephony_cost_state.is_not(None),
    or_(Call.telephony_cost_state != RATED, Call.telephony_cost_usd.is_(None)),
)

#: the columns a page must read to show a call's cost with `CallCost.of`
COST_COLUMNS = (Call.cost_usd, Call.price_unknown, Call.telephony_cost_state, Call.telephony_cost,
                Call.telephony_cost_unit, Call.telephony_cost_usd)


def phone_cost_open_count() -> ColumnElement[int]:
    """SQL aggregate: how many of the rows have a phone cost not (yet) in their total."""
    return func.coalesce(func.sum(case((PHONE_COST_OPEN, 1), else_=0)), 0)
