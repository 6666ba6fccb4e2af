"""The owner's activity page: their business's audit entries, newest first, read-only.

There is deliberately no route that edits or deletes an entry; the page pages backwards by time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, get
from litestar.response import Template

from app.audit import describe
from app.auth.deps import Owner
from app.dashboard.common import page
from app.db.owner_queries import OwnerScope

PAGE_SIZE = 100


def _detail_text(detail: dict[str, Any]) -> str:
    parts: list[str] = []
    for key, value in detail.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key.replace('_', ' ')}: {'—' if value in (None, '') else value}")
    return "; ".join(parts)


@get("/audit", name="dashboard:audit")
async def audit_page(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope) -> Template:
    before: datetime | None = None
    raw = str(request.query_params.get("before") or "")
    if raw:
        try:
            before = datetime.fromisoformat(raw)
        except ValueError:
            before = None
    entries = await owner_scope.audit_entries(limit=PAGE_SIZE + 1, before=before)
    rows = [{"entry": e, "what": describe(e), "detail": _detail_text(e.detail or {})} for e in entries[:PAGE_SIZE]]
    older = entries[PAGE_SIZE - 1].created_at.isoformat() if len(entries) > PAGE_SIZE else None
    return page("dashboard/audit.html", owner, rows=rows, older=older)


ROUTES = [audit_page]
