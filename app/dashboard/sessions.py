"""Sessions: every call attempt with its status; active ones refresh live from the flushed CallEvents.

The live list is re-fetched every second only while a call is live (static/pages.js; every 15 s while
idle, and never while the tab is hidden), and keeps the rows the owner opened. Each refresh is two small
queries, whatever the number of live calls: the live sessions with their calls, then the last few events
of all of them at once (a window function per call, only the columns the rows show). Events are flushed
by the call engine once per turn, so whichever instance serves the poll sees the same rows.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from sqlalchemy import func, select

from app.auth.deps import Owner
from app.dashboard.common import page, parse_id
from app.db.engine import Database
from app.db.models import Business, Call, CallEvent, Session, SessionStatus

LIVE_STATUSES = (SessionStatus.PENDING.value, SessionStatus.ACTIVE.value)
LIST_LIMIT = 50
LIVE_EVENTS = 200
LIVE_LIST_EVENTS = 8
LIVE_LIST_SESSIONS = 10
EVENT_COLUMNS = (CallEvent.call_id, CallEvent.sequence, CallEvent.offset_ms, CallEvent.kind, CallEvent.text,
                 CallEvent.data)


async def _session_with_call(db: Database, business_id: UUID, session_id: UUID) -> tuple[Session, Call | None]:
    async with db.session() as s:
        session = await s.scalar(
            select(Session).where(Session.business_id == business_id, Session.id == session_id)
        )
        if session is None:
            raise NotFoundException("session not found")
        call = await s.scalar(select(Call).where(Call.business_id == business_id, Call.session_id == session.id))
    return session, call


async def _events(db: Database, business_id: UUID, call: Call | None) -> list[CallEvent]:
    if call is None:
        return []
    async with db.session() as s:
        rows = await s.scalars(
            select(CallEvent)
            .where(CallEvent.business_id == business_id, CallEvent.call_id == call.id)
            .order_by(CallEvent.sequence.desc())
            .limit(LIVE_EVENTS)
        )
        return list(reversed(list(rows)))


async def _live_sessions(db: Database, business_id: UUID) -> list[dict[str, Any]]:
    async with db.session() as s:
        pairs = list(
            (
                await s.execute(
                    select(Session, Call)
                    .outerjoin(Call, Call.session_id == Session.id)
                    .where(Session.business_id == business_id, Session.status.in_(LIVE_STATUSES))
                    .order_by(Session.created_at.desc())
                    .limit(LIVE_LIST_SESSIONS)
                )
            ).tuples()
        )
        call_ids = [call.id for _session, call in pairs if call is not None]
        latest: dict[UUID, list[Any]] = {call_id: [] for call_id in call_ids}
        if call_ids:
            rank = func.row_number().over(partition_by=CallEvent.call_id, order_by=CallEvent.sequence.desc())
            recent = (
                select(*EVENT_COLUMNS, rank.label("rank"))
                .where(CallEvent.business_id == business_id, CallEvent.call_id.in_(call_ids))
                .subquery()
            )
            rows = await s.execute(
                select(*(recent.c[c.key] for c in EVENT_COLUMNS))
                .where(recent.c.rank <= LIVE_LIST_EVENTS)
                .order_by(recent.c.call_id, recent.c.sequence)
            )
            for row in rows:
                latest[row.call_id].append(row)
    return [{"session": session, "call": call, "events": latest.get(call.id, []) if call else []}
            for session, call in pairs]


@get("/sessions", name="dashboard:sessions")
async def sessions_page(owner: Owner, business: Business, db: Database) -> Template:
    async with db.session() as s:
        rows = list(
            (
                await s.execute(
                    select(Session, Call)
                    .outerjoin(Call, Call.session_id == Session.id)
                    .where(Session.business_id == business.id)
                    .order_by(Session.created_at.desc())
                    .limit(LIST_LIMIT)
                )
            ).tuples()
        )
    return page(
        "dashboard/sessions/list.html", owner, rows=rows, live=await _live_sessions(db, business.id)
    )


@get("/sessions/live", name="dashboard:sessions-live")
async def sessions_live(owner: Owner, business: Business, db: Database) -> Template:
    return page("dashboard/sessions/_live_list.html", owner, live=await _live_sessions(db, business.id))


@get("/sessions/{session_id:str}", name="dashboard:session")
async def session_detail(session_id: str, owner: Owner, business: Business, db: Database) -> Template:
    session, call = await _session_with_call(db, business.id, parse_id(session_id))
    events = await _events(db, business.id, call)
    return page("dashboard/sessions/detail.html", owner, session=session, call=call, events=events,
                live=session.status in LIVE_STATUSES)


@get("/sessions/{session_id:str}/live", name="dashboard:session-live")
async def session_live(session_id: str, owner: Owner, business: Business, db: Database) -> Template:
    session, call = await _session_with_call(db, business.id, parse_id(session_id))
    events = await _events(db, business.id, call)
    return page("dashboard/sessions/_live.html", owner, session=session, call=call, events=events,
                live=session.status in LIVE_STATUSES)


@get("/sessions/{session_id:str}/record", name="dashboard:session-record")
async def session_record(session_id: str, business: Business, db: Database) -> Redirect:
    """Where a finished test call's "see its record" link goes: the call when there is one, else the session."""
    session, call = await _session_with_call(db, business.id, parse_id(session_id))
    return Redirect(path=f"/calls/{call.id}" if call else f"/sessions/{session.id}", status_code=303)


ROUTES = [sessions_page, sessions_live, session_detail, session_live, session_record]
