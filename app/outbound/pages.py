"""The owner's side of outbound calls: "Call back" on a message, a call or a customer (click to call); the
Calls out page (what is scheduled, with Cancel; the callback form; what recent calls came to); the
Settings → Calling out section (own form and POST route); a customer's opt-out from calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page, parse_id
from app.db.engine import Database
from app.db.hours import HoursError, zone
from app.db.models import Business
from app.db.phone import PhoneError, normalize_phone
from app.db.services import NotFound
from app.i18n.text import message_of, tr
from app.inbox.schedule import local_moment
from app.outbound.dialer import CallBackRefused, Dialer, start_click_to_call
from app.outbound.hours import CallingHoursError, validate_window
from app.outbound.planner import plan_confirmations
from app.outbound.scope import OutboundScope
from app.outbound.store import OUTCOME_WORDS

MAX_PURPOSE = 500


def _scope(db: Database, business: Business) -> OutboundScope:
    return OutboundScope(db.session_maker, business.id)


def _dialer(request: Request[Any, Any, Any]) -> Dialer:
    return request.app.state.outbound  # type: ignore[no-any-return]


# -- click to call --------------------------------------------------------------------------------------------
async def _call_back(request: Request[Any, Any, Any], source: str, source_id: str, owner: Owner,
                     business: Business, db: Database) -> Template:
    scope = _scope(db, business)
    try:
        to_phone, customer_id, message_id = await scope.call_back_target(source, parse_id(source_id))
    except NotFound:
        raise NotFoundException("not found") from None
    context: dict[str, Any] = {"source": source, "source_id": source_id, "message_id": message_id}
    try:
        row = await start_click_to_call(_dialer(request), business, to_phone=to_phone, customer_id=customer_id,
                                        message_id=message_id)
    except CallBackRefused as exc:
        return page("outbound/_call_back_result.html", owner, error=message_of(exc), **context)
    await audit.record(db, "outbound.call_back", business_id=business.id, user=owner.user, request=request,
                       detail={"source": source})
    owner_phone = (await scope.settings()).owner_phone
    return page("outbound/_call_back_result.html", owner, row=row, owner_phone=owner_phone, **context)


@post("/messages/{message_id:str}/call-back", name="outbound:call-back-message", status_code=200)
async def call_back_message(request: Request[Any, Any, Any], message_id: str, owner: Owner, business: Business,
                            db: Database) -> Template:
    return await _call_back(request, "message", message_id, owner, business, db)


@post("/calls/{call_id:str}/call-back", name="outbound:call-back-call", status_code=200)
async def call_back_call(request: Request[Any, Any, Any], call_id: str, owner: Owner, business: Business,
                         db: Database) -> Template:
    return await _call_back(request, "call", call_id, owner, business, db)


@post("/customers/{customer_id:str}/call-back", name="outbound:call-back-customer", status_code=200)
async def call_back_customer(request: Request[Any, Any, Any], customer_id: str, owner: Owner, business: Business,
                             db: Database) -> Template:
    return await _call_back(request, "customer", customer_id, owner, business, db)


# -- the Calls out page ---------------------------------------------------------------------------------------
async def _outbound_page(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database, *,
                         errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                         notice: str = "", status: int = 200) -> Template:
    scope = _scope(db, business)
    return page("outbound/page.html", owner, status=status, scheduled=await scope.scheduled(),
                recent=await scope.recent(), customers=await scope.customers(), prefs=await scope.settings(),
                words=OUTCOME_WORDS, errors=errors or {}, form=form or {}, notice=notice,
                twilio_configured=_dialer(request).calls is not None)


@get("/outbound", name="outbound:page")
async def outbound_page(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Template:
    return await _outbound_page(request, owner, business, db)


@post("/outbound/{row_id:str}/cancel", name="outbound:cancel", status_code=200)
async def outbound_cancel(request: Request[Any, Any, Any], row_id: str, owner: Owner, business: Business,
                          db: Database) -> Template:
    try:
        result = await _scope(db, business).cancel(parse_id(row_id))
    except NotFound:
        raise NotFoundException("not found") from None
    await audit.record(db, "outbound.cancelled", business_id=business.id, user=owner.user, request=request)
    notice = {"cancelled": tr("Cancelled: that call will not be made."),
              "on_the_line": tr("That call is on the line now; it will not be retried.")}.get(
        result, tr("That call is already over."))
    return await _outbound_page(request, owner, business, db, notice=notice)


@post("/outbound/callbacks", name="outbound:schedule-callback", status_code=200)
async def schedule_callback(request: Request[Any, Any, Any], owner: Owner, business: Business,
                            db: Database) -> Template:
    data = await request.form()
    form = {k: str(data.get(k) or "").strip() for k in ("customer_id", "when", "purpose")}
    errors: dict[str, str] = {}
    scope = _scope(db, business)
    customer = None
    try:
        customer = await scope.customer(parse_id(form["customer_id"]))
    except (NotFound, NotFoundException):
        errors["customer_id"] = tr("choose the customer to call")
    at: datetime | None = None
    try:
        local = datetime.fromisoformat(form["when"])
        tz = zone(business.timezone)
        at = local_moment(local.date(), f"{local:%H:%M}", tz)
        if at < datetime.now(UTC) - timedelta(minutes=1):
            errors["when"] = tr("that time has passed; pick a time from now on")
    except (ValueError, HoursError):
        errors["when"] = tr("enter the date and time to call, like 2026-03-04 10:00")
    if not form["purpose"]:
        errors["purpose"] = tr("say what the call is about (the receptionist tells them)")
    elif len(form["purpose"]) > MAX_PURPOSE:
        errors["purpose"] = tr("keep it under %(max)s characters", max=MAX_PURPOSE)
    if customer is not None and customer.calls_opted_out_at is not None:
        errors["customer_id"] = tr("this customer asked not to be called")
    if errors or customer is None or at is None:
        return await _outbound_page(request, owner, business, db, errors=errors, form=form, status=422)
    await scope.schedule_callback(customer, at, form["purpose"])
    await audit.record(db, "outbound.callback_scheduled", business_id=business.id, user=owner.user,
                       request=request)
    _dialer(request).poke()
    return await _outbound_page(request, owner, business, db, notice=tr("Callback scheduled."))


@post("/customers/{customer_id:str}/call-opt-out", name="outbound:call-opt-out", status_code=200)
async def call_opt_out(request: Request[Any, Any, Any], customer_id: str, owner: Owner, business: Business,
                       db: Database) -> Any:
    data = await request.form()
    try:
        await _scope(db, business).set_call_opt_out(parse_id(customer_id), data.get("opted_out") == "on")
    except NotFound:
        raise NotFoundException("not found") from None
    await audit.record(db, "outbound.call_opt_out", business_id=business.id, user=owner.user, request=request)
    return Redirect(f"/customers/{customer_id}", status_code=303)


# -- Settings → Calling out -----------------------------------------------------------------------------------
def parse_settings(data: Any, business: Business) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    phone = str(data.get("owner_phone") or "").strip()
    if phone:
        try:
            phone = normalize_phone(phone)
        except PhoneError as exc:
            errors["owner_phone"] = message_of(exc)
    values["owner_phone"] = phone
    try:
        values["calling_start"], values["calling_end"] = validate_window(
            str(data.get("calling_start") or "09:00"), str(data.get("calling_end") or "19:00"))
    except CallingHoursError as exc:
        errors["calling_hours"] = message_of(exc)
    for name, low, high, word in (("max_attempts", 1, 5, tr("enter %(low)s to %(high)s attempts", low=1, high=5)),
                                  ("retry_minutes", 0, 1440, tr("enter %(low)s to %(high)s minutes", low=0, high=1440)),
                                  ("max_concurrent", 1, 10,
                                   tr("enter %(low)s to %(high)s calls at once", low=1, high=10))):
        try:
            number = int(str(data.get(name) or ""))
            if not low <= number <= high:
                raise ValueError
            values[name] = number
        except ValueError:
            errors[name] = word
    hours: dict[str, int] = {}
    for index, service in enumerate(business.services or []):
        raw = str(data.get(f"confirm_{index}") or "").strip()
        if not raw:
            continue
        try:
            value = int(raw)
            if not 1 <= value <= 168:
                raise ValueError
            hours[str(service["name"])] = value
        except ValueError:
            errors[f"confirm_{index}"] = tr("hours before: 1 to 168, or empty for no call")
    values["confirmation_hours"] = hours
    return values, errors


def _settings_section(request: Request[Any, Any, Any], owner: Owner, business: Business, values: dict[str, Any],
                      errors: dict[str, str], *, saved: bool = False, status: int = 200) -> Template:
    template = "outbound/_settings.html" if is_htmx(request) else "outbound/settings_page.html"
    return page(template, owner, status=status, v=values, errors=errors, saved=saved,
                services=business.services or [])


@get("/settings/outbound", name="outbound:settings")
async def outbound_settings_page(request: Request[Any, Any, Any], owner: Owner, business: Business,
                                 db: Database) -> Template:
    prefs = await _scope(db, business).settings()
    values = {k: getattr(prefs, k) for k in ("owner_phone", "calling_start", "calling_end", "max_attempts",
                                             "retry_minutes", "max_concurrent", "confirmation_hours")}
    return _settings_section(request, owner, business, values, {})


@post("/settings/outbound", name="outbound:settings-save", status_code=200)
async def outbound_settings_save(request: Request[Any, Any, Any], owner: Owner, business: Business,
                                 db: Database) -> Template:
    values, errors = parse_settings(await request.form(), business)
    if errors:
        return _settings_section(request, owner, business, values, errors, status=422)
    await _scope(db, business).save_settings(values)
    await audit.record(db, "outbound.settings_changed", business_id=business.id, user=owner.user, request=request,
                       detail={"fields": sorted(values)})
    # Confirmation calls for the services just turned on are planned now, not at the planner's next pass.
    if await plan_confirmations(db, business_id=business.id):
        _dialer(request).poke()
    return _settings_section(request, owner, business, values, {}, saved=True)


ROUTES = [call_back_message, call_back_call, call_back_customer, outbound_page,
          outbound_cancel, schedule_callback, call_opt_out, outbound_settings_page,
          outbound_settings_save]
