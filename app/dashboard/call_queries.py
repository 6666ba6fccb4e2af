"""The calls list's filters (status, local dates, search), parsed once for the page and the CSV export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from app.dashboard.common import local_day_bounds
from app.db.models import CallStatus
from app.db.owner_queries import CallQuery
from app.i18n.text import tr
from app.inbox.outcomes import LABELS as OUTCOME_LABELS

PAGE_SIZE = 25
MAX_QUERY_LENGTH = 200
STATUSES = tuple(s.value for s in CallStatus)


@dataclass(frozen=True, slots=True)
class CallFilter:
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    # issue 9: an outcome code (see app.inbox.outcomes) and "needs follow-up only"
    outcome: str = ""
    follow_up: bool = False

    def query_string(self, *, page: int | None = None) -> str:
        from urllib.parse import urlencode

        params: dict[str, str] = {}
        if self.status:
            params["status"] = self.status
        if self.date_from:
            params["from"] = self.date_from.isoformat()
        if self.date_to:
            params["to"] = self.date_to.isoformat()
        if self.q:
            params["q"] = self.q
        if self.outcome:
            params["outcome"] = self.outcome
        if self.follow_up:
            params["follow_up"] = "1"
        if page and page > 1:
            params["page"] = str(page)
        return urlencode(params)


def _date(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = tr("use a date like 2026-03-31")
        return None


def parse_filter(params: Mapping[str, Any]) -> CallFilter:
    """Bad values are dropped with a message, never a 500: the list still shows, unfiltered by that field."""
    errors: dict[str, str] = {}
    status = str(params.get("status") or "").strip()
    if status and status not in STATUSES:
        errors["status"] = tr("unknown status")
        status = ""
    date_from = _date(str(params.get("from") or "").strip(), "from", errors)
    date_to = _date(str(params.get("to") or "").strip(), "to", errors)
    if date_from and date_to and date_to < date_from:
        errors["to"] = tr("the end date is before the start date")
        date_to = None
    q = str(params.get("q") or "").strip()[:MAX_QUERY_LENGTH]
    try:
        page_number = max(1, min(int(str(params.get("page") or "1")), 100_000))
    except ValueError:
        page_number = 1
    outcome = str(params.get("outcome") or "").strip()
    if outcome and outcome not in OUTCOME_LABELS:
        errors["outcome"] = tr("unknown outcome")
        outcome = ""
    follow_up = str(params.get("follow_up") or "") in {"1", "on", "true"}
    return CallFilter(status=status, date_from=date_from, date_to=date_to, q=q, page=page_number, errors=errors,
                      outcome=outcome, follow_up=follow_up)


def to_query(f: CallFilter, tz: ZoneInfo) -> CallQuery:
    """The owner's local dates as the UTC instants `OwnerScope` filters on."""
    return CallQuery(
        status=f.status,
        since=local_day_bounds(f.date_from, tz)[0] if f.date_from else None,
        until=local_day_bounds(f.date_to, tz)[1] if f.date_to else None,
        q=f.q,
        outcome=f.outcome,
        follow_up=f.follow_up,
    )
