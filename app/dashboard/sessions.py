"""Sessions: every call attempt with its status; active ones refresh live from the flushed CallEvents.

The page polls a small partial every second (htmx). Events are flushed by the call engine once per turn,
so whichever instance serves the poll sees the same rows; polling stops when the session is over.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.response import Template

from app.auth.deps import Owner
from app.dashboard.common import page, parse_id
from app.db.models import Call, CallEvent
from app.db.owner_queries import LIVE_STATUSES, OwnerScope

LIST_LIMIT = 50
LIVE_EVENTS = 200


async def _events(owner_scope: OwnerScope, call: Call | None) -> list[CallEvent]:
    return [] if call is None else await owner_scope.call_events(call.id, last=LIVE_EVENTS)


async def _live_sessions(owner_scope: OwnerScope) -> list[dict[str, Any]]:
    pairs = await owner_scope.sessions_with_calls(live_only=True, limit=10)
    return [{"session": session, "call": call, "events": (await _events(owner_scope, call))[-8:]}
            for session, call in pairs]


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


ROUTES = [sessions_page, sessions_live, session_detail, session_live]
