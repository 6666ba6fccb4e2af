"""Calls: the filtered, paginated list (htmx partial for live filtering), call detail, CSV export, audio."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Stream, Template

from app import audit
from app.auth.deps import Owner
from app.billing.call_cost import COST_COLUMNS, PENDING, RATED, CallCost
from app.dashboard.call_queries import PAGE_SIZE, STATUSES, CallFilter, parse_filter, to_query
from app.dashboard.common import business_zone, is_htmx, page, parse_id
from app.db.engine import Database
from app.db.models import Business, Call
from app.db.owner_queries import OwnerScope
from app.inbox.outcomes import LABELS as OUTCOME_LABELS
from app.inbox.outcomes import end_reason_words
from app.inbox.outcomes import labels as outcome_labels
from app.settings import Settings
from app.web.ranges import ranged_file

CSV_BATCH = 1000
CSV_COLUMNS = (
    "started_at", "caller_phone", "customer", "status", "channel", "duration_seconds", "end_reason",
    "input_tokens", "output_tokens", "cost_usd", "summary", "call_id", "outcomes", "needs_follow_up",
    # issue 16 item 6: Twilio's charge for the phone legs ("pending" / "not rated" until known) and the total
    "direction", "telephony_cost", "telephony_cost_unit", "total_cost_usd",
)
_CSV_SOURCE = (
    Call.caller_phone, Call.customer_id, Call.status, Call.channel, Call.duration_seconds,
    Call.end_reason, Call.input_tokens, Call.output_tokens, Call.summary, Call.outcomes,
    Call.needs_follow_up, Call.direction, *COST_COLUMNS,
)
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"^\+?\d+(\.\d+)?$")


@get("/calls", name="dashboard:calls")
async def calls_page(
    request: Request[Any, Any, Any], owner: Owner, business: Business, owner_scope: OwnerScope
) -> Template:
    f = parse_filter(request.query_params)
    query = to_query(f, business_zone(business.timezone))
    # One extra row says whether a next page exists, without counting them all.
    rows = await owner_scope.list_calls(query, offset=(f.page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1)
    has_any = (f.q or f.status or f.date_from or f.date_to or f.outcome or f.follow_up or rows
               or await owner_scope.has_any_call())
    context = {
        "calls": rows[:PAGE_SIZE],
        "has_next": len(rows) > PAGE_SIZE,
        "filter": f,
        "statuses": STATUSES,
        "outcome_labels": OUTCOME_LABELS,
        "has_any_call": bool(has_any),
    }
    if is_htmx(request, "calls-results"):
        return page("dashboard/calls/_results.html", owner, **context)
    return page("dashboard/calls/list.html", owner, **context)


async def _call_detail_context(owner_scope: OwnerScope, call: Call) -> dict[str, Any]:
    return {
        "call": call,
        "events": await owner_scope.call_events(call.id),
        "appointments": await owner_scope.call_appointments(call.id),
        "customer": await owner_scope.find_customer(call.customer_id),
        "session": await owner_scope.find_session(call.session_id),
        "latencies": [row for row in (call.latencies or []) if isinstance(row, dict)],
        "has_recording": bool(call.recording_path),
        # Voicemails have their own section (with the audio player) below.
        "messages": [m for m in await owner_scope.inbox.messages_for_call(call.id) if not m.audio_path],
        "notifications": await owner_scope.inbox.notifications_for_call(call.id),
        "voicemails": await owner_scope.messages_for_call(call.id),
    }


@get("/calls/{call_id:str}", name="dashboard:call")
async def call_detail(call_id: str, owner: Owner, owner_scope: OwnerScope) -> Template:
    call = await owner_scope.get_call(parse_id(call_id))
    return page("dashboard/calls/detail.html", owner, **(await _call_detail_context(owner_scope, call)))


def _servable_recording(recorded: str, recordings_dir: Path) -> Path | None:
    """Only files under the recordings folder are ever served, whatever the column says."""
    path = Path(recorded).resolve()
    if not path.is_relative_to(recordings_dir.resolve()) or not path.is_file():
        return None
    return path


@get("/calls/{call_id:str}/recording", name="dashboard:call-recording")
async def call_recording(
    request: Request[Any, Any, Any], call_id: str, business: Business, owner_scope: OwnerScope, settings: Settings
) -> Response[Any]:
    """The call's WAV, with byte ranges so the player can seek; `?download=1` saves it instead of playing."""
    call = await owner_scope.get_call(parse_id(call_id))
    if not call.recording_path:
        raise NotFoundException("this call has no recording")
    path = await asyncio.to_thread(_servable_recording, call.recording_path, settings.recordings_dir)
    if path is None:
        raise NotFoundException("this call's recording is missing")
    disposition = "attachment" if request.query_params.get("download") == "1" else "inline"
    stamp = call.started_at.astimezone(business_zone(business.timezone)).strftime("%Y-%m-%d-%H%M")
    return ranged_file(
        path, request.headers.get("range"), media_type="audio/wav",
        headers={
            "Content-Disposition": f'{disposition}; filename="call-{stamp}-{str(call.id)[:8]}.wav"',
            "Cache-Control": "private, no-store",
        },
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheet programs; phone numbers and amounts are not.
    if _FORMULA_START.match(text) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _phone_cost_cells(row: Any) -> list[str]:
    """Twilio's charge, its unit, and the call's total in USD (OpenAI + the phone cost where known in USD)."""
    cost = CallCost.of(row)
    if cost.phone_state is None:
        phone = ""
    elif cost.phone_state == RATED and cost.phone_amount is not None:
        phone = f"{cost.phone_amount:.5f}"
    else:
        phone = "pending" if cost.phone_state == PENDING else "not rated"
    return [phone, _cell(cost.phone_unit), f"{cost.total_usd:.6f}"]


async def _csv_rows(owner_scope: OwnerScope, business: Business, f: CallFilter) -> AsyncIterator[str]:
    tz = business_zone(business.timezone)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    async for calls, names in owner_scope.export_calls(to_query(f, tz), _CSV_SOURCE, batch=CSV_BATCH):
        buffer.seek(0)
        buffer.truncate()
        for c in calls:
            writer.writerow([
                _cell(c.started_at.astimezone(tz).isoformat(timespec="seconds")),
                _cell(c.caller_phone), _cell(names.get(c.customer_id, "")), _cell(c.status), _cell(c.channel),
                f"{c.duration_seconds:.1f}", _cell(end_reason_words(c.end_reason)), c.input_tokens, c.output_tokens,
                f"{c.cost_usd:.6f}", _cell(c.summary), str(c.id), _cell("; ".join(outcome_labels(c.outcomes or []))),
                "yes" if c.needs_follow_up else "no", _cell(c.direction), *_phone_cost_cells(c),
            ])
        yield buffer.getvalue()


@get("/calls/export.csv", name="dashboard:calls-csv")
async def calls_csv(
    request: Request[Any, Any, Any], owner: Owner, business: Business, owner_scope: OwnerScope, db: Database
) -> Stream:
    f = parse_filter(request.query_params)
    await audit.record(db, "calls.exported", business_id=business.id, user=owner.user, request=request,
                       detail={"filter": f.query_string() or "all calls"})
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Stream(
        _csv_rows(owner_scope, business, f),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="calls-{stamp}.csv"',
            "Cache-Control": "private, no-store",
        },
    )


ROUTES = [calls_page, calls_csv, call_detail, call_recording]
