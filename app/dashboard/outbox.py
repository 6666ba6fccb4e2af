"""Sent notifications: the owner's view of the whole outbox (digests, reminders and confirmations to callers,
minutes warnings, follow-ups), each with its delivery state and, when it did not go out, why. A notification
tied to a call is also on that call's page; this page is where the others (digests, usage warnings, reminders)
are visible at all."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from app.auth.deps import Owner
from app.dashboard.common import page
from app.db.inbox import OUTBOX_STATES
from app.db.owner_queries import OwnerScope

OUTBOX_LIMIT = 100


@get("/notifications", name="dashboard:outbox")
async def outbox_page(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope) -> Template:
    state = str(request.query_params.get("state") or "all")
    state = state if state in OUTBOX_STATES else "all"
    rows = await owner_scope.inbox.recent_notifications(state=state, limit=OUTBOX_LIMIT)
    return page("dashboard/outbox/list.html", owner, rows=rows, state=state, states=OUTBOX_STATES,
                limit=OUTBOX_LIMIT)


ROUTES = [outbox_page]
