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

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.response import File, Stream, Template
from sqlalchemy import and_, or_, select

from app.auth.deps import Owner
from app.dashboard.call_queries import PAGE_SIZE, STATUSES, CallFilter, filtered_calls, parse_filter
from app.dashboard.common import business_zone, is_htmx, page, parse_id
from app.db.engine import Database
from app.db.inbox import InboxScope
from app.db.models import Appointment, Business, Call, CallEvent, Customer, Session
from app.db.services import BusinessScope
from app.inbox.outcomes import LABELS as OUTCOME_LABELS
from app.inbox.outcomes import end_reason_words
from app.inbox.outcomes import labels as outcome_labels
from app.settings import Settings

CSV_BATCH = 1000
CSV_COLUMNS = (
    "started_at", "caller_phone", "customer", "status", "channel", "duration_seconds", "end_reason",
    "input_tokens", "output_tokens", "cost_usd", "summary", "call_id", "outcomes", "needs_follow_up",
)
_CSV_SOURCE = (
    Call.id, Call.started_at, Call.caller_phone, Call.customer_id, Call.status, Call.channel, Call.duration_seconds,
    Call.end_reason, Call.input_tokens, Call.output_tokens, Call.cost_usd, Call.summary, Call.outcomes,
    Call.needs_follow_up,
)
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"^\+?\d+(\.\d+)?$")


@get("/calls", name="dashboard:calls")
async def calls_page(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Template:
    f = parse_filter(request.query_params)
    tz = business_zone(business.timezone)
    query = (
        filtered_calls(business.id, f, tz)
        .order_by(Call.started_at.desc(), Call.id.desc())
        .offset((f.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)  # one extra row says whether a next page exists, without counting them all
    )
    async with db.session() as s:
        rows = list(await s.scalars(query))
        has_any = f.q or f.status or f.date_from or f.date_to or f.outcome or f.follow_up or rows or await s.scalar(
            select(Call.id).where(Call.business_id == business.id).limit(1)
        )
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


async def _call_detail_context(db: Database, business: Business, call: Call) -> dict[str, Any]:
    async with db.session() as s:
        events = list(
            await s.scalars(
                select(CallEvent)
                .where(CallEvent.business_id == business.id, CallEvent.call_id == call.id)
                .order_by(CallEvent.sequence)
            )
        )
        appointments = list(
            (
                await s.scalars(
                    select(Appointment).where(
                        Appointment.business_id == business.id, Appointment.call_id == call.id
                    )
                )
            ).unique()
        )
        customer = (
            await s.scalar(
                select(Customer).where(Customer.business_id == business.id, Customer.id == call.customer_id)
            )
            if call.customer_id
            else None
        )
        session = await s.scalar(
            select(Session).where(Session.business_id == business.id, Session.id == call.session_id)
        )
    return {
        "call": call,
        "events": events,
        "appointments": appointments,
        "customer": customer,
        "session": session,
        "latencies": [row for row in (call.latencies or []) if isinstance(row, dict)],
        "has_recording": bool(call.recording_path),
        "messages": await InboxScope(db.session_maker, business.id).messages_for_call(call.id),
        "notifications": await InboxScope(db.session_maker, business.id).notifications_for_call(call.id),
    }


@get("/calls/{call_id:str}", name="dashboard:call")
async def call_detail(call_id: str, owner: Owner, business: Business, db: Database) -> Template:
    call = await BusinessScope(db.session_maker, business.id).get_call(parse_id(call_id))
    return page("dashboard/calls/detail.html", owner, **(await _call_detail_context(db, business, call)))


def _servable_recording(recorded: str, recordings_dir: Path) -> Path | None:
    """Only files under the recordings folder are ever served, whatever the column says."""
    path = Path(recorded).resolve()
    if not path.is_relative_to(recordings_dir.resolve()) or not path.is_file():
        return None
    return path


@get("/calls/{call_id:str}/recording", name="dashboard:call-recording")
async def call_recording(call_id: str, business: Business, db: Database, settings: Settings) -> File:
    call = await BusinessScope(db.session_maker, business.id).get_call(parse_id(call_id))
    if not call.recording_path:
        raise NotFoundException("this call has no recording")
    path = await asyncio.to_thread(_servable_recording, call.recording_path, settings.recordings_dir)
    if path is None:
        raise NotFoundException("this call's recording is missing")
    return File(
        path=path,
        filename=f"call-{call.id}.wav",
        media_type="audio/wav",
        content_disposition_type="inline",
        headers={"Cache-Control": "private, no-store"},
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheet programs; phone numbers and amounts are not.
    if _FORMULA_START.match(text) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


async def _csv_rows(db: Database, business: Business, f: CallFilter) -> AsyncIterator[str]:
    tz = business_zone(business.timezone)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    after: tuple[datetime, Any] | None = None
    while True:
        query = filtered_calls(business.id, f, tz)
        if after is not None:
            last_started, last_id = after
            query = query.where(
                or_(Call.started_at < last_started, and_(Call.started_at == last_started, Call.id < last_id))
            )
        # Only the exported columns: loading whole rows would drag every transcript through Python.
        query = query.with_only_columns(*_CSV_SOURCE).order_by(Call.started_at.desc(), Call.id.desc()).limit(CSV_BATCH)
        async with db.session() as s:
            calls = list((await s.execute(query)).all())
            customer_ids = {c.customer_id for c in calls if c.customer_id}
            names: dict[Any, str] = {}
            if customer_ids:
                found = await s.execute(
                    select(Customer.id, Customer.name).where(
                        Customer.business_id == business.id, Customer.id.in_(customer_ids)
                    )
                )
                names = {customer_id: name for customer_id, name in found.all()}
        if not calls:
            return
        buffer.seek(0)
        buffer.truncate()
        for c in calls:
            writer.writerow([
                _cell(c.started_at.astimezone(tz).isoformat(timespec="seconds")),
                _cell(c.caller_phone), _cell(names.get(c.customer_id, "")), _cell(c.status), _cell(c.channel),
                f"{c.duration_seconds:.1f}", _cell(end_reason_words(c.end_reason)), c.input_tokens, c.output_tokens,
                f"{c.cost_usd:.6f}", _cell(c.summary), str(c.id), _cell("; ".join(outcome_labels(c.outcomes or []))),
                "yes" if c.needs_follow_up else "no",
            ])
        yield buffer.getvalue()
        if len(calls) < CSV_BATCH:
            return
        after = (calls[-1].started_at, calls[-1].id)


@get("/calls/export.csv", name="dashboard:calls-csv")
async def calls_csv(request: Request[Any, Any, Any], business: Business, db: Database) -> Stream:
    f = parse_filter(request.query_params)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Stream(
        _csv_rows(db, business, f),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="calls-{stamp}.csv"',
            "Cache-Control": "private, no-store",
        },
    )


ROUTES = [calls_page, calls_csv, call_detail, call_recording]
