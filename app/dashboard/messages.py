"""Messages: everything callers left for the owner, unread until handled; the nav's unread count."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page, parse_id
from app.db.inbox import MESSAGE_STATES
from app.db.owner_queries import OwnerScope

#: the htmx event that tells the nav (and anything else listening) the unread count changed
INBOX_CHANGED = "inbox-changed"


@get("/messages", name="dashboard:messages")
async def messages_page(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope) -> Template:
    state = str(request.query_params.get("state") or "unread")
    state = state if state in MESSAGE_STATES else "unread"
    q = str(request.query_params.get("q") or "").strip()[:200]
    scope = owner_scope.inbox
    context = {"rows": await scope.messages(state=state, q=q), "state": state, "q": q, "states": MESSAGE_STATES,
               "unread": await scope.unread_count()}
    if is_htmx(request, "messages-results"):
        return page("dashboard/messages/_results.html", owner, **context)
    return page("dashboard/messages/list.html", owner, **context)


@get("/messages/count", name="dashboard:messages-count")
async def messages_count(owner_scope: OwnerScope) -> Response[str]:
    count = await owner_scope.inbox.unread_count()
    body = f'<span class="count" aria-label="{count} unread">{count}</span>' if count else ""
    return Response(content=body, media_type="text/html", headers={"Cache-Control": "private, no-store"})


async def _set(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope, message_id: str,
               handled: bool) -> Any:
    row = await owner_scope.inbox.set_handled(parse_id(message_id), owner.user.id, handled)
    if is_htmx(request):
        response = page("dashboard/messages/_row.html", owner, row=row)
        response.headers["HX-Trigger"] = INBOX_CHANGED
        return response
    return Redirect(path=request.headers.get("referer") or "/messages", status_code=303)


@post("/messages/{message_id:str}/handled", name="dashboard:message-handled", status_code=200)
async def message_handled(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope,
                          message_id: str) -> Any:
    return await _set(request, owner, owner_scope, message_id, True)


@post("/messages/{message_id:str}/unread", name="dashboard:message-unread", status_code=200)
async def message_unread(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope,
                         message_id: str) -> Any:
    return await _set(request, owner, owner_scope, message_id, False)


ROUTES = [messages_page, messages_count, message_handled, message_unread]
