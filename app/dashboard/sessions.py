"""Sessions: every call attempt with its status; active ones refresh live from the flushed CallEvents.

The live list is re-fetched every second only while a call is live (static/pages.js; every 15 s while
idle, and never while the tab is hidden), and keeps the rows the owner opened. Each refresh is two small
queries, whatever the number of live calls: the live sessions with their calls, then the last few events
of all of them at once (a window function per call, only the columns the rows show). Events are flushed
by the call engine once per turn, so whichever instance serves the poll sees the same rows.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.response import Redirect, Template

from app.auth.deps import Owner
from app.dashboard.common import page, parse_id
from app.db.models import Call, CallEvent
from app.db.owner_queries import LIVE_STATUSES, OwnerScope

LIST_LIMIT = 50
LIVE_EVENTS = 200
LIVE_LIST_EVENTS = 8
LIVE_LIST_SESSIONS = 10


async def _events(owner_scope: OwnerScope, call: Call | None) -> list[CallEvent]:
    return [] if call is None else await owner_scope.call_events(call.id, last=LIVE_EVENTS)


async def _live_sessions(owner_scope: OwnerScope) -> list[dict[str, Any]]:
    rows = await owner_scope.live_sessions_with_events(sessions=LIVE_LIST_SESSIONS, events=LIVE_LIST_EVENTS)
    return [{"session": session, "call": call, "events": events} for session, call, events in rows]


@get("/sessions", name="dashboard:sessions")
async def sessions_page(owner: Owner, owner_scope: OwnerScope) -> Template:
    rows = await owner_scope.sessions_with_calls(limit=LIST_LIMIT)
    return page("dashboard/sessions/list.html", owner, rows=rows, live=await _live_sessions(owner_scope))


@get("/sessions/live", name="dashboard:sessions-live")
async def sessions_live(owner: Owner, owner_scope: OwnerScope) -> Template:
    return page("dashboard/sessions/_live_list.html", owner, live=await _live_sessions(owner_scope))


@get("/sessions/{session_id:str}", name="dashboard:session")
async def session_detail(session_id: str, owner: Owner, owner_scope: OwnerScope) -> Template:
    session, call = await owner_scope.session_with_call(parse_id(session_id))
    events = await _events(owner_scope, call)
    return page("dashboard/sessions/detail.html", owner, session=session, call=call, events=events,
                live=session.status in LIVE_STATUSES)


@get("/sessions/{session_id:str}/live", name="dashboard:session-live")
async def session_live(session_id: str, owner: Owner, owner_scope: OwnerScope) -> Template:
    session, call = await owner_scope.session_with_call(parse_id(session_id))
    events = await _events(owner_scope, call)
    return page("dashboard/sessions/_live.html", owner, session=session, call=call, events=events,
                live=session.status in LIVE_STATUSES)


@get("/sessions/{session_id:str}/record", name="dashboard:session-record")
async def session_record(session_id: str, owner_scope: OwnerScope) -> Redirect:
    """Where a finished test call's "see its record" link goes: the call when there is one, else the session."""
    session, call = await owner_scope.session_with_call(parse_id(session_id))
    return Redirect(path=f"/calls/{call.id}" if call else f"/sessions/{session.id}", status_code=303)


ROUTES = [sessions_page, sessions_live, session_detail, session_live, session_record]
