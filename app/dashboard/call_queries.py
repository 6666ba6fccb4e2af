"""The calls list's filters (status, local dates, search) as one query, shared by the page and the CSV export."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, or_, select

from app.dashboard.common import local_day_bounds
from app.db.inbox import outcome_condition
from app.db.models import Call, CallStatus
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
        errors[name] = "use a date like 2026-03-31"
        return None


def parse_filter(params: Mapping[str, Any]) -> CallFilter:
    """Bad values are dropped with a message, never a 500: the list still shows, unfiltered by that field."""
    errors: dict[str, str] = {}
    status = str(params.get("status") or "").strip()
    if status and status not in STATUSES:
        errors["status"] = "unknown status"
        status = ""
    date_from = _date(str(params.get("from") or "").strip(), "from", errors)
    date_to = _date(str(params.get("to") or "").strip(), "to", errors)
    if date_from and date_to and date_to < date_from:
        errors["to"] = "the end date is before the start date"
        date_to = None
    q = str(params.get("q") or "").strip()[:MAX_QUERY_LENGTH]
    try:
        page_number = max(1, min(int(str(params.get("page") or "1")), 100_000))
    except ValueError:
        page_number = 1
    outcome = str(params.get("outcome") or "").strip()
    if outcome and outcome not in OUTCOME_LABELS:
        errors["outcome"] = "unknown outcome"
        outcome = ""
    follow_up = str(params.get("follow_up") or "") in {"1", "on", "true"}
    return CallFilter(status=status, date_from=date_from, date_to=date_to, q=q, page=page_number, errors=errors,
                      outcome=outcome, follow_up=follow_up)


def like_escape(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text)


def search_condition(q: str) -> ColumnElement[bool]:
    """Transcript text or caller number containing the words (every word must appear, any order)."""
    conditions: list[ColumnElement[bool]] = []
    digits = re.sub(r"\D", "", q)
    for word in q.split()[:8]:
        pattern = f"%{like_escape(word)}%"
        conditions.append(Call.transcript.ilike(pattern, escape="\\"))
    text_match = and_(*conditions)
    if len(digits) >= 3 and len(digits) >= len(re.sub(r"\s", "", q)) - 3:
        # Looks like a phone number: match the caller's number on its digits as well.
        return or_(text_match, Call.caller_phone.like(f"%{digits}%"))
    return text_match


def filtered_calls(business_id: UUID, f: CallFilter, tz: ZoneInfo) -> Select[tuple[Call]]:
    query = select(Call).where(Call.business_id == business_id)
    if f.status:
        query = query.where(Call.status == f.status)
    if f.date_from:
        query = query.where(Call.started_at >= local_day_bounds(f.date_from, tz)[0])
    if f.date_to:
        query = query.where(Call.started_at < local_day_bounds(f.date_to, tz)[1])
    if f.q:
        query = query.where(search_condition(f.q))
    if f.outcome:
        query = query.where(outcome_condition(f.outcome))
    if f.follow_up:
        query = query.where(Call.needs_follow_up.is_(True))
    return query
