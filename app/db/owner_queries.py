"""What the owner's pages read and change, always within one business: `OwnerScope` extends `BusinessScope`.

The dashboard gets one `OwnerScope` per request through Litestar DI (`owner_scope`, built from the
signed-in owner's business in `app.auth.deps`), and its handlers never write a business filter: every
query below starts from `self.business_id`. An id from another business is simply not found (404), the
same answer as an id that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, Select, and_, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.call_cost import PHONE_COST_OPEN, TOTAL_COST_USD, phone_cost_open_count
from app.db.inbox import InboxScope, outcome_condition
from app.db.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    Billing,
    Business,
    Call,
    CallEvent,
    Channel,
    Customer,
    Session,
    SessionStatus,
)
from app.db.services import BusinessScope, NotFound

LIVE_STATUSES = (SessionStatus.PENDING.value, SessionStatus.ACTIVE.value)

RECENT_CALL_COLUMNS = (Call.id, Call.started_at, Call.caller_phone, Call.channel, Call.status, Call.duration_seconds)
LIVE_EVENT_COLUMNS = (CallEvent.call_id, CallEvent.sequence, CallEvent.offset_ms, CallEvent.kind, CallEvent.text,
                      CallEvent.data)
BILLING_CALL_COLUMNS = (
    Call.id, Call.started_at, Call.duration_seconds, Call.input_tokens, Call.output_tokens, Call.cost_usd,
    TOTAL_COST_USD.label("total_cost_usd"),
)


def _open_session() -> ColumnElement[bool]:
    """Live sessions have not ended (lifecycle sets `ended_at` with the final status): saying so lets SQLite
    use the partial index of open sessions per business instead of walking every session the business had."""
    return Session.ended_at.is_(None)


def _counted(include_tests: bool) -> ColumnElement[bool]:
    """Which calls the overview's figures count: browser test calls only when the owner asks for them."""
    return true() if include_tests else Call.channel != Channel.BROWSER.value


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


@dataclass(frozen=True, slots=True)
class CallQuery:
    """A calls-list filter in UTC instants (the dashboard turns the owner's local dates into these)."""

    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""
    # issue 9: an outcome code (app.inbox.outcomes) and "needs follow-up only"
    outcome: str = ""
    follow_up: bool = False


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    calls: int
    seconds: float
    input_tokens: int
    output_tokens: int
    cost: float
    booked: int
    # Issue 13: some call in the window used a model no price table knows (its cost is a lower bound).
    price_unknown: bool = False
    # Issue 16 item 6: calls whose phone cost is not in `cost` yet (Twilio has not priced them, or never did).
    phone_pending: int = 0


@dataclass(frozen=True, slots=True)
class OverviewFigures:
    calls: int
    seconds: float
    cost: float  # OpenAI + phone where known (app.billing.call_cost)
    booked: int
    phone_pending: int = 0


async def number_taken(session_maker: async_sessionmaker[AsyncSession], phone: str | None,
                       *, exclude: UUID | None = None) -> bool:
    """Whether a business other than `exclude` already answers `phone` (numbers are unique across the
    service, so this one check deliberately looks beyond the owner's own business)."""
    if not phone:
        return False
    async with session_maker() as s:
        query = select(Business.id).where(Business.phone_number == phone)
        if exclude is not None:
            query = query.where(Business.id != exclude)
        return (await s.scalar(query)) is not None


async def create_business(session_maker: async_sessionmaker[AsyncSession], owner_id: UUID,
                          values: dict[str, Any]) -> Business:
    """Onboarding: the owner's one business (the unique owner_id makes a second one an IntegrityError)."""
    async with session_maker() as s, s.begin():
        business = Business(owner_id=owner_id, **values)
        s.add(business)
    return business


class OwnerScope(BusinessScope):
    @property
    def inbox(self) -> InboxScope:
        """Issue 9's queries (messages, notifications, the attention list), on the same business."""
        return InboxScope(self._sessions, self.business_id)

    # -- business -----------------------------------------------------------------------------------------
    async def update_business(self, values: dict[str, Any]) -> tuple[Business, dict[str, tuple[Any, Any]]] | None:
        """Apply `values`; the row and what changed (field -> (before, after)), or None if it is gone."""
        async with self._sessions() as s, s.begin():
            row = await s.get(Business, self.business_id)
            if row is None:
                return None
            changed: dict[str, tuple[Any, Any]] = {}
            for key, value in values.items():
                before = getattr(row, key)
                if before != value:
                    changed[key] = (before, value)
                    setattr(row, key, value)
        return row, changed

    async def number_taken_elsewhere(self, phone: str | None) -> bool:
        return await number_taken(self._sessions, phone, exclude=self.business_id)

    # -- overview and billing -----------------------------------------------------------------------------
    async def totals(self, start: datetime, end: datetime) -> PeriodTotals:
        """Calls started, minutes, tokens and cost in [start, end), and appointments booked in it."""
        in_period = (Call.business_id == self.business_id, Call.started_at >= start, Call.started_at < end)
        async with self._sessions() as s:
            count, seconds, input_tokens, output_tokens, cost, price_unknown, phone_pending = (
                await s.execute(
                    select(
                        func.count(Call.id),
                        func.coalesce(func.sum(Call.duration_seconds), 0.0),
                        func.coalesce(func.sum(Call.input_tokens), 0),
                        func.coalesce(func.sum(Call.output_tokens), 0),
                        func.coalesce(func.sum(TOTAL_COST_USD), 0.0),
                        func.coalesce(func.sum(Call.price_unknown), 0),
                        phone_cost_open_count(),
                    ).where(*in_period)
                )
            ).one()
            booked = await s.scalar(
                select(func.count(Appointment.id)).where(
                    Appointment.business_id == self.business_id,
                    Appointment.status == AppointmentStatus.BOOKED.value,
                    Appointment.created_at >= start,
                    Appointment.created_at < end,
                )
            )
        return PeriodTotals(count, seconds, input_tokens, output_tokens, cost, booked or 0, bool(price_unknown),
                            int(phone_pending or 0))

    async def overview_totals(
        self, day: tuple[datetime, datetime], month: tuple[datetime, datetime], *, include_tests: bool
    ) -> tuple[OverviewFigures, OverviewFigures, int]:
        """Today's and this month's calls, seconds, cost and bookings, and this month's test calls.

        One windowed query with conditional sums for the calls (and one for the bookings) rather than a
        query per figure. Browser test calls are left out unless `include_tests`."""
        start, end = min(day[0], month[0]), max(day[1], month[1])
        in_day = and_(Call.started_at >= day[0], Call.started_at < day[1])
        in_month = and_(Call.started_at >= month[0], Call.started_at < month[1])
        counted = _counted(include_tests)
        test = Call.channel == Channel.BROWSER.value

        def sums(window: ColumnElement[bool]) -> list[Any]:
            inside = and_(window, counted)
            return [
                func.coalesce(func.sum(case((inside, 1), else_=0)), 0),
                func.coalesce(func.sum(case((inside, Call.duration_seconds), else_=0.0)), 0.0),
                func.coalesce(func.sum(case((inside, TOTAL_COST_USD), else_=0.0)), 0.0),
                func.coalesce(func.sum(case((and_(inside, PHONE_COST_OPEN), 1), else_=0)), 0),
            ]

        async with self._sessions() as s:
            row = (
                await s.execute(
                    select(*sums(in_day), *sums(in_month),
                           func.coalesce(func.sum(case((and_(in_month, test), 1), else_=0)), 0))
                    .where(Call.business_id == self.business_id, Call.started_at >= start, Call.started_at < end)
                )
            ).one()
            booked_day, booked_month = (
                await s.execute(
                    select(
                        func.coalesce(func.sum(case((and_(Appointment.created_at >= day[0],
                                                          Appointment.created_at < day[1]), 1), else_=0)), 0),
                        func.count(Appointment.id),
                    ).where(
                        Appointment.business_id == self.business_id,
                        Appointment.status == AppointmentStatus.BOOKED.value,
                        Appointment.created_at >= month[0],
                        Appointment.created_at < month[1],
                    )
                )
            ).one()
        today = OverviewFigures(int(row[0] or 0), float(row[1] or 0), float(row[2] or 0), int(booked_day or 0),
                                int(row[3] or 0))
        this_month = OverviewFigures(int(row[4] or 0), float(row[5] or 0), float(row[6] or 0),
                                     int(booked_month or 0), int(row[7] or 0))
        return today, this_month, int(row[8] or 0)

    async def daily_call_counts(self, bounds: Sequence[tuple[datetime, datetime]], *,
                                include_tests: bool) -> list[int]:
        """Calls per day for consecutive day windows (UTC instants from the business's local days),
        counted by the database: a CASE over the day ends buckets each call, one row per day that had any."""
        bucket = case(*((Call.started_at < end, index) for index, (_start, end) in enumerate(bounds)), else_=-1)
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    # count() rather than count(id): the id isn't in the figures index, which then covers it all.
                    select(bucket.label("day"), func.count())
                    .where(
                        Call.business_id == self.business_id,
                        Call.started_at >= bounds[0][0],
                        Call.started_at < bounds[-1][1],
                        _counted(include_tests),
                    )
                    .group_by("day")
                )
            ).tuples()
            counts = dict(rows.all())
        return [counts.get(index, 0) for index in range(len(bounds))]

    async def calls_between(self, start: datetime, end: datetime, *, limit: int) -> list[Row[Any]]:
        """The period's calls newest first, only the columns the billing table shows: whole rows would drag
        every transcript and event list along."""
        async with self._sessions() as s:
            return list((await s.execute(
                select(*BILLING_CALL_COLUMNS)
                .where(Call.business_id == self.business_id, Call.started_at >= start, Call.started_at < end)
                .order_by(Call.started_at.desc())
                .limit(limit)
            )).all())

    async def recent_calls(self, limit: int = 5) -> list[Row[Any]]:
        """The newest calls, only the columns the overview's list shows."""
        async with self._sessions() as s:
            return list((await s.execute(
                select(*RECENT_CALL_COLUMNS).where(Call.business_id == self.business_id)
                .order_by(Call.started_at.desc()).limit(limit)
            )).all())

    async def live_session_count(self) -> int:
        async with self._sessions() as s:
            return await s.scalar(
                select(func.count(Session.id)).where(
                    Session.business_id == self.business_id, Session.status == SessionStatus.ACTIVE.value,
                    _open_session(),
                )
            ) or 0

    async def billing_periods(self, limit: int = 36) -> list[Billing]:
        async with self._sessions() as s:
            return list(await s.scalars(
                select(Billing).where(Billing.business_id == self.business_id)
                .order_by(Billing.period.desc()).limit(limit)
            ))

    # -- calls --------------------------------------------------------------------------------------------
    def _calls(self, f: CallQuery) -> Select[tuple[Call]]:
        query = select(Call).where(Call.business_id == self.business_id)
        if f.status:
            query = query.where(Call.status == f.status)
        if f.since:
            query = query.where(Call.started_at >= f.since)
        if f.until:
            query = query.where(Call.started_at < f.until)
        if f.q:
            query = query.where(search_condition(f.q))
        if f.outcome:
            query = query.where(outcome_condition(f.outcome))
        if f.follow_up:
            query = query.where(Call.needs_follow_up.is_(True))
        return query

    async def list_calls(self, f: CallQuery, *, offset: int, limit: int) -> list[Call]:
        async with self._sessions() as s:
            return list(await s.scalars(
                self._calls(f).order_by(Call.started_at.desc(), Call.id.desc()).offset(offset).limit(limit)
            ))

    async def has_any_call(self) -> bool:
        async with self._sessions() as s:
            return (await s.scalar(select(Call.id).where(Call.business_id == self.business_id).limit(1))) is not None

    async def export_calls(
        self, f: CallQuery, columns: Sequence[Any], *, batch: int
    ) -> AsyncIterator[tuple[list[Row[Any]], dict[UUID, str]]]:
        """The filtered calls newest first, `columns` only (never whole rows: transcripts stay in the
        database), in keyset-paginated batches with the names of their customers."""
        after: tuple[datetime, Any] | None = None
        while True:
            query = self._calls(f)
            if after is not None:
                last_started, last_id = after
                query = query.where(
                    or_(Call.started_at < last_started, and_(Call.started_at == last_started, Call.id < last_id))
                )
            query = query.with_only_columns(Call.id, Call.started_at, *columns).order_by(
                Call.started_at.desc(), Call.id.desc()
            ).limit(batch)
            async with self._sessions() as s:
                rows = list((await s.execute(query)).all())
                customer_ids = {r.customer_id for r in rows if getattr(r, "customer_id", None)}
                names: dict[UUID, str] = {}
                if customer_ids:
                    # .all(): a Result has .keys() (its column names), so dict() would take it for a mapping.
                    names = dict((await s.execute(
                        select(Customer.id, Customer.name).where(
                            Customer.business_id == self.business_id, Customer.id.in_(customer_ids)
                        )
                    )).tuples().all())
            if not rows:
                return
            yield rows, names
            if len(rows) < batch:
                return
            after = (rows[-1].started_at, rows[-1].id)

    async def call_events(self, call_id: UUID, *, last: int | None = None) -> list[CallEvent]:
        """A call's events in order; with `last`, only the newest `last` of them (the live view)."""
        async with self._sessions() as s:
            query = select(CallEvent).where(CallEvent.business_id == self.business_id, CallEvent.call_id == call_id)
            if last is None:
                return list(await s.scalars(query.order_by(CallEvent.sequence)))
            rows = list(await s.scalars(query.order_by(CallEvent.sequence.desc()).limit(last)))
            return list(reversed(rows))

    async def call_appointments(self, call_id: UUID) -> list[Appointment]:
        async with self._sessions() as s:
            return list((await s.scalars(
                select(Appointment).where(Appointment.business_id == self.business_id, Appointment.call_id == call_id)
            )).unique())

    async def find_customer(self, customer_id: UUID | None) -> Customer | None:
        if customer_id is None:
            return None
        try:
            return await self.get_customer(customer_id)
        except NotFound:
            return None

    # -- sessions -----------------------------------------------------------------------------------------
    async def find_session(self, session_id: UUID) -> Session | None:
        async with self._sessions() as s:
            return await s.scalar(select(Session).where(Session.business_id == self.business_id,
                                                        Session.id == session_id))

    async def session_with_call(self, session_id: UUID) -> tuple[Session, Call | None]:
        async with self._sessions() as s:
            session = await s.scalar(
                select(Session).where(Session.business_id == self.business_id, Session.id == session_id)
            )
            if session is None:
                raise NotFound("session not found")
            call = await s.scalar(
                select(Call).where(Call.business_id == self.business_id, Call.session_id == session.id)
            )
        return session, call

    async def sessions_with_calls(self, *, live_only: bool = False, limit: int) -> list[tuple[Session, Call | None]]:
        query = (
            select(Session, Call)
            .outerjoin(Call, Call.session_id == Session.id)
            .where(Session.business_id == self.business_id)
            .order_by(Session.created_at.desc())
            .limit(limit)
        )
        if live_only:
            query = query.where(Session.status.in_(LIVE_STATUSES), _open_session())
        async with self._sessions() as s:
            return list((await s.execute(query)).tuples())

    async def live_sessions_with_events(
        self, *, sessions: int, events: int
    ) -> list[tuple[Session, Call | None, list[Row[Any]]]]:
        """The live sessions (newest first) with their calls and each call's last `events` events, in two
        queries whatever the number of live calls: a window function ranks every call's events at once,
        and only the columns the live rows show are read."""
        async with self._sessions() as s:
            pairs = list((await s.execute(
                select(Session, Call)
                .outerjoin(Call, Call.session_id == Session.id)
                .where(Session.business_id == self.business_id, Session.status.in_(LIVE_STATUSES), _open_session())
                .order_by(Session.created_at.desc())
                .limit(sessions)
            )).tuples())
            call_ids = [call.id for _session, call in pairs if call is not None]
            latest: dict[UUID, list[Row[Any]]] = {call_id: [] for call_id in call_ids}
            if call_ids:
                rank = func.row_number().over(partition_by=CallEvent.call_id, order_by=CallEvent.sequence.desc())
                recent = (
                    select(*LIVE_EVENT_COLUMNS, rank.label("rank"))
                    .where(CallEvent.business_id == self.business_id, CallEvent.call_id.in_(call_ids))
                    .subquery()
                )
                rows = await s.execute(
                    select(*(recent.c[c.key] for c in LIVE_EVENT_COLUMNS))
                    .where(recent.c.rank <= events)
                    .order_by(recent.c.call_id, recent.c.sequence)
                )
                for row in rows:
                    latest[row.call_id].append(row)
        return [(session, call, latest.get(call.id, []) if call else []) for session, call in pairs]

    # -- customers ----------------------------------------------------------------------------------------
    async def customers_with_calls(self, q: str, *, limit: int) -> list[tuple[Customer, int | None, datetime | None]]:
        """Customers (name or number containing `q`) with their number of calls and latest call."""
        calls = (
            select(Call.customer_id, func.count(Call.id).label("calls"), func.max(Call.started_at).label("last_call"))
            .where(Call.business_id == self.business_id, Call.customer_id.is_not(None))
            .group_by(Call.customer_id)
            .subquery()
        )
        query = (
            select(Customer, calls.c.calls, calls.c.last_call)
            .outerjoin(calls, calls.c.customer_id == Customer.id)
            .where(Customer.business_id == self.business_id)
        )
        if q:
            pattern = f"%{like_escape(q)}%"
            query = query.where(or_(Customer.name.ilike(pattern, escape="\\"),
                                    Customer.phone.like(pattern, escape="\\")))
        async with self._sessions() as s:
            return list((await s.execute(query.order_by(Customer.name, Customer.phone).limit(limit))).tuples())

    async def customer_history(self, customer_id: UUID, *, limit: int) -> tuple[list[Appointment], list[Call]]:
        async with self._sessions() as s:
            appointments = list((await s.scalars(
                select(Appointment)
                .where(Appointment.business_id == self.business_id, Appointment.customer_id == customer_id)
                .order_by(Appointment.starts_at.desc())
                .limit(limit)
            )).unique())
            calls = list(await s.scalars(
                select(Call)
                .where(Call.business_id == self.business_id, Call.customer_id == customer_id)
                .order_by(Call.started_at.desc())
                .limit(limit)
            ))
        return appointments, calls

    # -- audit log ----------------------------------------------------------------------------------------
    async def audit_entries(self, *, limit: int, before: datetime | None = None) -> list[AuditEntry]:
        """The business's entries, and its owner's own from before the business existed (first sign-in)."""
        owner_id = select(Business.owner_id).where(Business.id == self.business_id).scalar_subquery()
        query = select(AuditEntry).where(or_(
            AuditEntry.business_id == self.business_id,
            and_(AuditEntry.business_id.is_(None), AuditEntry.actor_user_id == owner_id),
        ))
        if before is not None:
            query = query.where(AuditEntry.created_at < before)
        async with self._sessions() as s:
            return list(await s.scalars(query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
                                        .limit(limit)))
