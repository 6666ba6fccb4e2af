"""The owner's calendar: week and day views (server-rendered, htmx), manual booking for a new or existing
customer, move and cancel (the same atomic rules as the receptionist's, through `BusinessScope`), blocked
time, conflicts with Google to resolve; staff/rooms, closures and booking rules; adding and editing customers.

Form errors come back as 200 with the form re-rendered and everything typed kept (htmx swaps only 2xx).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from app.auth.deps import Owner
from app.dashboard.common import Formatter, business_zone, is_htmx, local_day_bounds, page, parse_id
from app.dashboard.typed_input import DAY_WORDS
from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.hours import WEEKDAYS, HoursError, Interval, validate_day_ranges
from app.db.inbox import InboxScope
from app.db.models import Appointment, Business, BusyBlock, Resource
from app.db.scheduling import Lane, lane_opening
from app.db.services import ServiceError
from app.i18n.languages import for_owner
from app.i18n.text import message_of, tr

SLOT_MINUTES = 30


def _scope(db: Database, business: Business) -> CalendarScope:
    return CalendarScope(db.session_maker, business.id)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    data = await request.form()
    return {k: str(v).strip() for k, v in data.items()}


def _done(request: Request[Any, Any, Any], path: str) -> Response[Any]:
    if is_htmx(request):
        return Response(content="", status_code=200, headers={"HX-Redirect": path})
    return Redirect(path=path, status_code=303)


def _parse_day(raw: str | None, tz: ZoneInfo) -> date:
    try:
        return date.fromisoformat(str(raw)[:10]) if raw else datetime.now(tz).date()
    except ValueError:
        return datetime.now(tz).date()


def _local(day_raw: str, time_raw: str, tz: ZoneInfo) -> datetime:
    try:
        day = date.fromisoformat(day_raw)
        hh, mm = time_raw.split(":")[:2]
        moment = datetime.combine(day, time(int(hh), int(mm)))
    except ValueError:
        raise ServiceError(tr("give a date (YYYY-MM-DD) and a time (HH:MM)")) from None
    return moment.replace(tzinfo=tz)


# -- the calendar views ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class Item:
    kind: str  # appointment | block | google
    top: int  # first quarter-hour row
    height: int  # rows
    label: str
    detail: str
    href: str | None
    obj: Appointment | BusyBlock
    lane: int = 0  # 1-based sub-column in a week's day column (0: the whole width), so parallel bookings of
    lanes: int = 1  # several resources sit side by side


@dataclass(slots=True)
class Column:
    title: str
    day: date
    lane_key: str | None
    items: list[Item]
    closed_note: str | None
    open_bands: list[tuple[int, int]]
    rows: int = 1


def _hour_range(business: Business, resources: list[Resource]) -> tuple[int, int]:
    starts, ends = [], []
    for hours in [business.weekly_hours or {}] + [r.weekly_hours or {} for r in resources]:
        for ranges in hours.values():
            for opening, closing in ranges:
                o, c = int(opening[:2]), int(closing[:2]) + (1 if closing[3:] != "00" else 0)
                starts.append(o)
                ends.append(24 if c <= o else c)
    return (min(starts, default=8), max(ends, default=18)) if starts else (8, 18)


QUARTER = timedelta(minutes=15)
MAX_QUARTERS = 100  # 25 hours: the app.css grid classes go this far
MAX_LANES = 8


def _place(start: datetime, end: datetime, day_start: datetime, span: timedelta) -> tuple[int, int]:
    """Grid placement in quarter-hour rows (CSS classes, since the CSP allows no style attributes): the
    1-based first row and how many rows, clipped to the visible window."""
    rows = min(MAX_QUARTERS, max(1, round(span / QUARTER)))
    first = min(rows, max(1, int((start - day_start) / QUARTER) + 1))
    last = min(rows, max(first, -(-int((end - day_start).total_seconds()) // int(QUARTER.total_seconds()))))
    return first, max(1, last - first + 1)


async def _view_context(scope: CalendarScope, business: Business, view: str, day: date) -> dict[str, Any]:
    tz = business_zone(business.timezone)
    fmt = Formatter(tz, language=for_owner(business.languages))  # column titles in the owner's language
    setup = await scope.setup(closures_from=day - timedelta(days=7))
    first_hour, last_hour = _hour_range(business, setup.resources)
    days = [day - timedelta(days=day.weekday()) + timedelta(days=i) for i in range(7)] if view == "week" else [day]
    range_start, _ = local_day_bounds(days[0], tz)
    _, range_end = local_day_bounds(days[-1], tz)
    data = await scope.range_view(range_start, range_end)
    lanes: list[Lane] = [Lane("", None, "", business.weekly_hours or {})]
    if setup.resources:
        lanes = [Lane(str(r.id), r.id, r.name, r.weekly_hours if r.weekly_hours is not None else
                      business.weekly_hours or {}) for r in setup.resources]
    columns: list[Column] = []
    for d in days:
        # The visible window is wall-clock first_hour..last_hour; at a DST change it is an hour longer or shorter.
        window_start = datetime.combine(d, time(first_hour), tzinfo=tz).astimezone(UTC)
        window_end = (datetime.combine(d, time(last_hour), tzinfo=tz) if last_hour < 24 else
                      datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz)).astimezone(UTC)
        span = window_end - window_start
        column_lanes: list[Lane | None] = list(lanes) if view == "day" and setup.resources else [None]
        for lane in column_lanes:
            items: list[Item] = []
            for a in data.appointments:
                if a.status != "booked" or not (a.starts_at < window_end and a.ends_at > window_start):
                    continue
                if lane is not None and a.lane != lane.key:
                    continue
                top, height = _place(a.starts_at, a.ends_at, window_start, span)
                who = setup.resource_name(a.resource_id)
                item = Item("appointment", top, height, f"{a.customer.name or a.customer.phone}",
                            f"{a.service}{' · ' + who if who else ''}", f"/calendar/appointments/{a.id}", a)
                if lane is None and 1 < len(lanes) <= MAX_LANES:
                    item.lane = next((i for i, ln in enumerate(lanes) if ln.key == a.lane), 0) + 1
                    item.lanes = len(lanes)
                items.append(item)
            for b in data.blocks:
                if not (b.starts_at < window_end and b.ends_at > window_start):
                    continue
                if lane is not None and b.resource_id not in (None, lane.resource_id):
                    continue
                top, height = _place(b.starts_at, b.ends_at, window_start, span)
                who = setup.resource_name(b.resource_id) if b.resource_id else tr("everyone")
                kind = "block" if b.source == "owner" else "google"
                items.append(Item(kind, top, height, b.note, who, None, b))
            open_lanes = [lane] if lane is not None else lanes
            bands: list[Interval] = []
            for ln in open_lanes:
                bands.extend(lane_opening(setup, ln, d, d))
            open_bands = [_place(i.start, i.end, window_start, span) for i in bands
                          if i.start < window_end and i.end > window_start]
            note = setup.closure_note(d, lane.resource_id if lane else None)
            title = fmt.date(d, "MMMEd") if lane is None else lane.name
            columns.append(Column(title, d, lane.key if lane else None, items, note, open_bands,
                                  min(MAX_QUARTERS, max(1, round(span / QUARTER)))))
    step = timedelta(days=7 if view == "week" else 1)
    return {
        "view": view, "day": day, "columns": columns, "hours": list(range(first_hour, last_hour)),
        "lane_count": len(lanes) if 1 < len(lanes) <= MAX_LANES else 1,
        "prev_day": (day - step).isoformat(), "next_day": (day + step).isoformat(),
        "today": datetime.now(tz).date().isoformat(), "resources": setup.resources,
        "conflicts": await scope.open_conflicts(), "services": business.services or [],
        # the owner's blocks with their Google Calendar state (templates/calendar/_blocks.html)
        "owner_blocks": [b for b in data.blocks if b.source == "owner"],
        "block_jobs": await scope.block_push_jobs(data.blocks), "writes_to_google": setup.writes_to_google,
        "resource_names": {r.id: r.name for r in setup.resources},
    }


@get("/calendar", name="calendar:view")
async def calendar_view(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Template:
    view = "day" if request.query_params.get("view") == "day" else "week"
    day = _parse_day(request.query_params.get("date"), business_zone(business.timezone))
    context = await _view_context(_scope(db, business), business, view, day)
    template = "calendar/_view.html" if is_htmx(request, "calendar-view") else "calendar/calendar.html"
    return page(template, owner, **context)


# -- appointments -------------------------------------------------------------------------------------------
async def _booking_form(owner: Owner, business: Business, db: Database, values: dict[str, str],
                        error: str | None = None, *, full_page: bool = False) -> Template:
    scope = _scope(db, business)
    template = "calendar/booking_page.html" if full_page else "calendar/_booking_form.html"
    return page(template, owner, values=values, error=error,
                customers=await scope.customers_for_select(), resources=await scope.resources(),
                services=business.services or [])


@get("/calendar/appointments/new", name="calendar:booking-form")
async def booking_form(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Template:
    q = request.query_params
    values = {key: str(q.get(key) or "") for key in ("date", "time", "resource", "customer_id")}
    return await _booking_form(owner, business, db, values, full_page=not is_htmx(request))


@post("/calendar/appointments", name="calendar:book", status_code=200)
async def book(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    form = await _form(request)
    scope = _scope(db, business)
    tz = business_zone(business.timezone)
    try:
        if form.get("customer_id"):
            customer = await scope.get_customer(parse_id(form["customer_id"]))
        else:
            if not form.get("new_name") or not form.get("new_phone"):
                raise ServiceError(tr("choose a customer, or give a new customer's name and phone"))
            existing = await scope.customer_by_phone(form["new_phone"]) if form.get("new_phone") else None
            customer = existing or await scope.create_or_update_customer(
                None, name=form["new_name"], phone=form["new_phone"], email="", notes="")
        start = _local(form.get("date", ""), form.get("time", ""), tz)
        resource = None
        if form.get("resource"):
            resource = (await scope.get_resource(parse_id(form["resource"]))).name
        appointment = await scope.book(customer.id, form.get("service", ""), start, notes=form.get("notes", ""),
                                       resource=resource, actor="owner")
    except ServiceError as exc:
        return await _booking_form(owner, business, db, form, exc.message, full_page=not is_htmx(request))
    return _done(request, f"/calendar?view=day&date={appointment.starts_at.astimezone(tz).date().isoformat()}")


@get("/calendar/appointments/{appointment_id:str}", name="calendar:appointment")
async def appointment_detail(appointment_id: str, owner: Owner, business: Business, db: Database,
                             request: Request[Any, Any, Any]) -> Template:
    scope = _scope(db, business)
    appointment = await scope.get_appointment(parse_id(appointment_id))
    return await _appointment_page(request, owner, scope, appointment)


async def _appointment_page(request: Request[Any, Any, Any], owner: Owner, scope: CalendarScope,
                            appointment: Appointment, error: str | None = None,
                            values: dict[str, str] | None = None) -> Template:
    tz = business_zone(owner.business.timezone if owner.business else "UTC")
    local = appointment.starts_at.astimezone(tz)
    values = values or {"date": local.date().isoformat(), "time": local.strftime("%H:%M"),
                        "resource": str(appointment.resource_id or "")}
    template = "calendar/_appointment.html" if is_htmx(request) else "calendar/appointment.html"
    setup = await scope.setup()
    conflicts = [c for c, a in await scope.open_conflicts() if a.id == appointment.id]
    # The caller's confirmation and reminder texts (and the owner's notifications) with their delivery state.
    texts = (await InboxScope(scope._sessions, scope.business_id).notifications_for_appointments(
        [appointment.id])).get(appointment.id, [])
    return page(template, owner, a=appointment, values=values, error=error, resources=setup.resources,
                who=setup.resource_name(appointment.resource_id), conflicts=conflicts,
                push_job=await scope.appointment_push_job(appointment), notifications=texts)


@post("/calendar/appointments/{appointment_id:str}/move", name="calendar:move", status_code=200)
async def move(appointment_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
               db: Database) -> Any:
    form = await _form(request)
    scope = _scope(db, business)
    appointment = await scope.get_appointment(parse_id(appointment_id))
    tz = business_zone(business.timezone)
    try:
        start = _local(form.get("date", ""), form.get("time", ""), tz)
        resource = (await scope.get_resource(parse_id(form["resource"]))).name if form.get("resource") else None
        moved = await scope.reschedule(appointment.id, None, start, resource=resource, actor="owner")
    except ServiceError as exc:
        return await _appointment_page(request, owner, scope, appointment, exc.message, form)
    return _done(request, f"/calendar?view=day&date={moved.starts_at.astimezone(tz).date().isoformat()}")


@post("/calendar/appointments/{appointment_id:str}/cancel", name="calendar:cancel", status_code=200)
async def cancel(appointment_id: str, request: Request[Any, Any, Any], business: Business, db: Database) -> Any:
    scope = _scope(db, business)
    appointment = await scope.cancel_by_owner(parse_id(appointment_id))
    tz = business_zone(business.timezone)
    return _done(request, f"/calendar?view=day&date={appointment.starts_at.astimezone(tz).date().isoformat()}")


@post("/calendar/conflicts/{conflict_id:str}/resolve", name="calendar:resolve", status_code=200)
async def resolve(conflict_id: str, request: Request[Any, Any, Any], business: Business, db: Database) -> Any:
    await _scope(db, business).resolve_conflict(parse_id(conflict_id))
    return _done(request, "/calendar")


# -- blocked time ---------------------------------------------------------------------------------------------
@post("/calendar/blocks", name="calendar:block", status_code=200)
async def block(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    form = await _form(request)
    scope = _scope(db, business)
    tz = business_zone(business.timezone)
    try:
        start = _local(form.get("date", ""), form.get("start", ""), tz)
        end = _local(form.get("date", ""), form.get("end", ""), tz)
        if end <= start:  # "22:00 to 02:00": until the next morning
            end = _local((date.fromisoformat(form["date"]) + timedelta(days=1)).isoformat(), form.get("end", ""), tz)
        resource_id = parse_id(form["resource"]) if form.get("resource") else None
        await scope.block_time(start, end, note=form.get("note", ""), resource_id=resource_id)
    except ServiceError as exc:
        context = await _view_context(scope, business, "day", _parse_day(form.get("date"), tz))
        return page("calendar/calendar.html", owner, block_error=exc.message, block_values=form, **context)
    return _done(request, f"/calendar?view=day&date={form.get('date')}")


@post("/calendar/blocks/{block_id:str}/delete", name="calendar:unblock", status_code=200)
async def unblock(block_id: str, request: Request[Any, Any, Any], business: Business, db: Database) -> Any:
    await _scope(db, business).unblock(parse_id(block_id))
    return _done(request, "/calendar")


# -- staff and rooms, closures, rules -------------------------------------------------------------------------
def _hours_from_form(form: dict[str, str], prefix: str) -> dict[str, list[list[str]]]:
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        raw = form.get(f"{prefix}{day}", "").strip()
        hours[day] = _ranges(raw)
    return hours


def _ranges(raw: str) -> list[list[str]]:
    """'09:00-12:00, 13:00-17:00' -> [["09:00","12:00"],["13:00","17:00"]]; '' or 'closed' -> []."""
    if not raw or raw.lower() == "closed":
        return []
    out = []
    for part in raw.split(","):
        if "-" not in part:
            raise ServiceError(tr("write hours as 09:00-17:00, got %(text)s", text=repr(part.strip())))
        opening, closing = (p.strip() for p in part.split("-", 1))
        out.append([opening, closing])
    try:
        return validate_day_ranges(out)
    except HoursError as exc:
        raise ServiceError(message_of(exc)) from None


async def _setup_page(owner: Owner, business: Business, db: Database, **extra: Any) -> Template:
    scope = _scope(db, business)
    tz = business_zone(business.timezone)
    rules = await scope.rules()
    return page("calendar/setup.html", owner, resources=await scope.resources(include_inactive=True),
                closures=await scope.closures(since=datetime.now(tz).date() - timedelta(days=1)), rules=rules,
                services=business.services or [], weekdays=[(d, DAY_WORDS[d]) for d in WEEKDAYS],
                errors=extra.pop("errors", {}), **extra)


@get("/calendar/setup", name="calendar:setup")
async def setup_page(owner: Owner, business: Business, db: Database) -> Template:
    return await _setup_page(owner, business, db)


@post("/calendar/resources", name="calendar:resource-add", status_code=200)
async def resource_add(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    return await _resource_save(request, owner, business, db, None)


@post("/calendar/resources/{resource_id:str}", name="calendar:resource-edit", status_code=200)
async def resource_edit(resource_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                        db: Database) -> Any:
    return await _resource_save(request, owner, business, db, parse_id(resource_id))


async def _resource_save(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                         resource_id: UUID | None) -> Any:
    if resource_id is not None:
        await _scope(db, business).get_resource(resource_id)  # another business's id: 404, not a form error
    data = await request.form()
    form = {k: str(v).strip() for k, v in data.items()}
    services = [str(v) for v in data.getall("services", [])]
    try:
        hours = _hours_from_form(form, "hours_") if form.get("own_hours") == "on" else None
        await _scope(db, business).save_resource(
            resource_id, name=form.get("name", ""), kind=form.get("kind", "person"), services=services,
            weekly_hours=hours, position=int(form.get("position") or 0), active=form.get("active", "on") == "on",
        )
    except (ServiceError, ValueError) as exc:
        message = exc.message if isinstance(exc, ServiceError) else tr("position must be a number")
        key = f"resource-{resource_id or 'new'}"
        return await _setup_page(owner, business, db, errors={key: message}, resource_values={key: form})
    return _done(request, "/calendar/setup")


@post("/calendar/closures", name="calendar:closure-add", status_code=200)
async def closure_add(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    form = await _form(request)
    try:
        try:
            day = date.fromisoformat(form.get("day", ""))
        except ValueError:
            raise ServiceError(tr("give the date as YYYY-MM-DD")) from None
        hours = [] if form.get("closed", "on") == "on" else _ranges(form.get("hours", ""))
        if form.get("closed") != "on" and not hours:
            raise ServiceError(tr("give the changed hours (e.g. 10:00-14:00), or tick closed all day"))
        resource_id = parse_id(form["resource"]) if form.get("resource") else None
        await _scope(db, business).add_closure(day, hours, note=form.get("note", ""), resource_id=resource_id)
    except ServiceError as exc:
        return await _setup_page(owner, business, db, errors={"closure": exc.message}, closure_values=form)
    return _done(request, "/calendar/setup")


@post("/calendar/closures/{closure_id:str}/delete", name="calendar:closure-delete", status_code=200)
async def closure_delete(closure_id: str, request: Request[Any, Any, Any], business: Business, db: Database) -> Any:
    await _scope(db, business).delete_closure(parse_id(closure_id))
    return _done(request, "/calendar/setup")


@post("/calendar/rules", name="calendar:rules", status_code=200)
async def rules_save(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    form = await _form(request)
    try:
        def number(name: str, default: int = 0) -> int:
            try:
                return int(form.get(name) or default)
            except ValueError:
                raise ServiceError(tr("%(field)s must be a whole number", field=name.replace("_", " "))) from None

        per_service: dict[str, list[int]] = {}
        for service in business.services or []:
            key = service["name"]
            before, after = form.get(f"svc_before_{key}", ""), form.get(f"svc_after_{key}", "")
            if before or after:
                per_service[key] = [number(f"svc_before_{key}"), number(f"svc_after_{key}")]
                if not all(0 <= v <= 240 for v in per_service[key]):
                    raise ServiceError(tr("%(service)s: buffers must be between 0 and 240 minutes", service=key))
        await _scope(db, business).save_rules(
            before=number("buffer_before"), after=number("buffer_after"), min_notice=number("min_notice"),
            max_days_ahead=number("max_days_ahead", 90), service_buffers=per_service,
        )
    except ServiceError as exc:
        return await _setup_page(owner, business, db, errors={"rules": exc.message})
    return _done(request, "/calendar/setup?saved=rules")


# -- customers the owner adds and edits -----------------------------------------------------------------------
@get("/customers/new", name="calendar:customer-new")
async def customer_new(owner: Owner, business: Business) -> Template:
    return page("calendar/customer_form.html", owner, values={}, error=None, customer=None)


@post("/customers/new", name="calendar:customer-create", status_code=200)
async def customer_create(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    form = await _form(request)
    try:
        customer = await _scope(db, business).create_or_update_customer(
            None, name=form.get("name", ""), phone=form.get("phone", ""), email=form.get("email", ""),
            notes=form.get("notes", ""))
    except ServiceError as exc:
        return page("calendar/customer_form.html", owner, values=form, error=exc.message, customer=None)
    return _done(request, f"/customers/{customer.id}")


@get("/customers/{customer_id:str}/edit", name="calendar:customer-edit")
async def customer_edit(customer_id: str, owner: Owner, business: Business, db: Database) -> Template:
    customer = await _scope(db, business).get_customer(parse_id(customer_id))
    values = {"name": customer.name, "phone": customer.phone, "email": customer.email or "", "notes": customer.notes}
    return page("calendar/customer_form.html", owner, values=values, error=None, customer=customer)


@post("/customers/{customer_id:str}/edit", name="calendar:customer-update", status_code=200)
async def customer_update(customer_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                          db: Database) -> Any:
    scope = _scope(db, business)
    customer = await scope.get_customer(parse_id(customer_id))
    form = await _form(request)
    try:
        await scope.create_or_update_customer(customer.id, name=form.get("name", ""), phone=form.get("phone", ""),
                                              email=form.get("email", ""), notes=form.get("notes", ""))
    except ServiceError as exc:
        return page("calendar/customer_form.html", owner, values=form, error=exc.message, customer=customer)
    return _done(request, f"/customers/{customer.id}")


ROUTES = [calendar_view, booking_form, book, appointment_detail, move, cancel, resolve, block, unblock, setup_page,
          resource_add, resource_edit, closure_add, closure_delete, rules_save, customer_new, customer_create,
          customer_edit, customer_update]

