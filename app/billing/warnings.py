"""The 80 % and 100 % usage warnings (issue 13): recorded once per billing period and threshold, and sent to
the owner through the inbox outbox (email / SMS as their notification settings say) in the same transaction.

Rules (unit-tested in tests/test_billing_warnings.py):
- A threshold is reached when the period's billed minutes are at least that share of the included minutes:
  79.9 % reaches nothing, exactly 80 % reaches 80. A plan with no included minutes warns nothing (every minute
  is overage or forwarded by design; the billing page says so).
- Each threshold is one `UsageWarning` row per (business, period start, threshold): a unique row, so a retried
  job or a second worker inserts it once and only the insert that made the row notifies. A new period has a
  new start, so it warns afresh; the free trial's period starts at a fixed date, so it warns once ever.
- When one call jumps over both thresholds (70 % → 105 %), both rows are recorded (the billing page shows
  the period's history) but only the 100 % warning is sent: an "80 % used" mail arriving together with "all
  used" says nothing new. Its row says "superseded" instead of a channel.
- The notification (`usage_warning`, keyed `usage_warning:<business>:<period start>:<threshold>:<channel>`)
  is created in the transaction that inserts the warning row, so either both exist or neither. That
  transaction runs in the call's `polar-usage` job, which the call's finalising transaction enqueued: a
  finished call that crosses a threshold always warns, exactly once, without adding a read to the
  write-locked finalisation (see app.billing.metering).
- What the words say happens next is frozen at the event: overage billed, or (stop-at-limit) calls forwarded
  to the transfer number the transfer rules accept today, else callers reach voicemail.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.dialects.sqlite import insert

from app.billing.plans import WARNING_THRESHOLDS
from app.billing.usage import PeriodUsage
from app.db.engine import Database
from app.db.models import Business, NotificationChannel, UsageWarning
from app.inbox.outbox import add_notification, owner_targets, preferences
from app.jobs import job_id_for
from app.settings import Settings
from app.telephony.transfers import usable_transfer_number

log = logging.getLogger(__name__)

USAGE_WARNING_EVENT = "usage_warning"
SUPERSEDED = "billing page (superseded by the 100 % warning)"
_CHANNEL_WORDS = {NotificationChannel.EMAIL.value: "email", NotificationChannel.SMS.value: "text"}


def thresholds_reached(minutes: float, included: int) -> list[int]:
    """Every warning threshold (percent) that `minutes` of `included` has reached, lowest first."""
    if included <= 0:
        return []
    # Integer-safe comparison: minutes * 100 >= included * threshold (no 0.8 * n rounding).
    return [t for t in WARNING_THRESHOLDS if minutes * 100 >= included * t]


def to_send(reached: list[int], new: list[int]) -> int | None:
    """The threshold the owner is told about now: the highest one reached, if this run is the one that recorded
    it (a lower one recorded together with it is superseded; one recorded by an earlier run was sent then)."""
    top = max(reached, default=None)
    return top if top is not None and top in new else None


def period_key(business_id: UUID, period_start: datetime) -> str:
    return f"{USAGE_WARNING_EVENT}:{business_id}:{period_start.astimezone(UTC).isoformat()}"


def notification_key(business_id: UUID, period_start: datetime, threshold: int, channel: str) -> str:
    return f"{period_key(business_id, period_start)}:{threshold}:{channel}"


def details_for(usage: PeriodUsage, threshold: int, forward_to: str | None) -> dict[str, Any]:
    """What the warning's words need, frozen at the moment the threshold was crossed."""
    plan = usage.period.plan
    return {
        "threshold": threshold,
        "used_minutes": round(usage.minutes, 1),
        "included_minutes": usage.included,
        "plan_name": plan.name,
        "trial": plan.is_trial,
        "over_limit": plan.over_limit,
        "forward_to": forward_to,
        "period_end": usage.period.end.astimezone(UTC).isoformat() if usage.period.end else None,
    }


async def record_warnings(db: Database, settings: Settings, business_id: UUID, usage: PeriodUsage) -> list[int]:
    """Record each threshold the period's usage reached (once per period) and notify the owner of the highest
    new one, all in one transaction; returns the thresholds recorded now."""
    reached = thresholds_reached(usage.minutes, usage.included)
    if not reached:
        return []
    now = datetime.now(UTC)
    start = usage.period.start.astimezone(UTC)
    async with db.write() as s:  # in the writer queue: it runs after every billable call
        # Every read before the first write (on libSQL the write lock is held from the first write to the commit).
        business = await s.get(Business, business_id)
        if business is None:
            return []
        targets = await owner_targets(s, business, await preferences(s, business_id))
        forward_to = usable_transfer_number(business, settings)
        top = max(reached)
        told = ", ".join(["billing page", *(_CHANNEL_WORDS.get(c, c) for c, _ in targets)])
        new: list[int] = []
        for threshold in reached:
            result = await s.execute(
                insert(UsageWarning)
                .values(id=job_id_for(f"usage-warning:{business_id}:{start.isoformat()}:{threshold}"),
                        business_id=business_id, period_start=start, threshold=threshold,
                        plan=usage.period.plan.key, used_minutes=int(usage.minutes), included_minutes=usage.included,
                        delivered_by=told if threshold == top else SUPERSEDED, created_at=now, updated_at=now)
                .on_conflict_do_nothing()
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                new.append(threshold)
        threshold_to_send = to_send(reached, new)
        if threshold_to_send is not None:
            for channel, recipient in targets:
                await add_notification(
                    s, business_id=business_id,
                    key=notification_key(business_id, start, threshold_to_send, channel),
                    event=USAGE_WARNING_EVENT, channel=channel, recipient=recipient,
                    details=details_for(usage, threshold_to_send, forward_to),
                )
    for threshold in new:
        log.info("business %s used %d%% of its %s minutes", business_id, threshold, usage.period.plan.key)
    return new
