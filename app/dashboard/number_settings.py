"""Settings -> Phone number: the owner picks one of the service's Twilio numbers (or buys one, when the operator
allows it), sees whether its webhooks point here, and can give it back.

The section loads on its own (`GET /settings/number`, an htmx partial the settings page pulls in), because it
asks Twilio for the account's numbers and the rest of the settings page shouldn't wait for that. Every change
goes through `app.telephony.number_assignments`, which only hands out numbers of the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request, get, post
from litestar.response import Template

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page
from app.db.engine import Database
from app.db.models import Business
from app.db.phone import business_region, national_format, timezone_region
from app.i18n.text import tr
from app.settings import Settings
from app.telephony import number_assignments
from app.telephony.number_assignments import AssignmentRefused
from app.telephony.numbers import AccountNumber, AvailableNumber, TwilioNumbers, TwilioRefused
from app.telephony.rest import TwilioUnavailable

PARTIAL = "dashboard/_number_settings.html"


@dataclass
class NumberSection:
    """Everything the section shows; `message`/`error` are the outcome of what the owner just did."""

    configured: bool
    allow_purchase: bool = False
    current: AccountNumber | None = None
    choices: list[tuple[AccountNumber, str]] = field(default_factory=list)  # (number, national display)
    taken: int = 0
    found: list[AvailableNumber] = field(default_factory=list)
    country: str = "US"
    area_code: str = ""
    message: str = ""
    error: str = ""
    list_error: str = ""


async def _section(db: Database, settings: Settings, business: Business, **outcome: Any) -> NumberSection:
    numbers = TwilioNumbers.from_settings(settings)
    region = business_region(business.phone_number, business.timezone)
    outcome.setdefault("country", timezone_region(business.timezone) or region)
    section = NumberSection(configured=numbers is not None, allow_purchase=settings.twilio_allow_purchase, **outcome)
    if numbers is None:
        return section
    try:
        listed = await numbers.list()
    except (TwilioUnavailable, TwilioRefused) as exc:
        section.list_error = tr("Couldn't read the service's numbers from Twilio: %(why)s", why=str(exc))
        return section
    held = await number_assignments.holders(db)
    for number in listed:
        holder = held.get(number.phone_number)
        if number.sid == business.phone_number_sid or (holder and holder[0] == business.id):
            section.current = number
        elif holder is None:
            section.choices.append((number, national_format(number.phone_number, region)))
        else:
            section.taken += 1
    return section


def _render(request: Request[Any, Any, Any], owner: Owner, settings: Settings, section: NumberSection,
            status: int = 200) -> Template:
    context = {"section": section, "voice_url": settings.public_base_url.rstrip("/") + "/twilio/voice",
               "status_url": settings.public_base_url.rstrip("/") + "/twilio/status"}
    template = PARTIAL if is_htmx(request) else "dashboard/number.html"
    return page(template, owner, status, **context)


async def _fresh(db: Database, business: Business) -> Business:
    async with db.session() as s:
        return await s.get(Business, business.id) or business


def _numbers(settings: Settings) -> TwilioNumbers:
    numbers = TwilioNumbers.from_settings(settings)
    if numbers is None:
        raise AssignmentRefused(tr("Twilio isn't connected to this service yet."))
    return numbers


async def _after(request: Request[Any, Any, Any], owner: Owner, db: Database, settings: Settings,
                 business: Business, **outcome: Any) -> Template:
    fresh = await _fresh(db, business)
    section = await _section(db, settings, fresh, **outcome)
    return _render(request, Owner(user=owner.user, business=fresh), settings, section,
                   status=422 if outcome.get("error") and not is_htmx(request) else 200)


def _assigned_message(assignment: number_assignments.Assignment) -> dict[str, str]:
    if assignment.webhook_error:
        return {"error": tr("The number is yours, but Twilio didn't take the call settings, so calls won't reach the "
                            "receptionist yet: %(why)s. Pick it again to retry.", why=assignment.webhook_error)}
    return {"message": tr("%(number)s is yours: its calls now come to your receptionist.",
                          number=assignment.number.phone_number)}


@get("/settings/number", name="dashboard:number")
async def number_section(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                         settings: Settings) -> Template:
    return _render(request, owner, settings, await _section(db, settings, business))


@post("/settings/number", name="dashboard:number-pick", status_code=200)
async def pick_number(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                      settings: Settings) -> Template:
    sid = str((await request.form()).get("number_sid") or "")
    try:
        assignment = await number_assignments.assign(db, _numbers(settings), business.id, sid)
    except AssignmentRefused as exc:
        return await _after(request, owner, db, settings, business, error=exc.message)
    except (TwilioUnavailable, TwilioRefused) as exc:
        return await _after(request, owner, db, settings, business,
                            error=tr("Twilio couldn't be asked: %(why)s", why=str(exc)))
    await _audit_assigned(db, request, owner, business, assignment, bought=False)
    return await _after(request, owner, db, settings, business, **_assigned_message(assignment))


async def _audit_assigned(db: Database, request: Request[Any, Any, Any], owner: Owner, business: Business,
                          assignment: number_assignments.Assignment, *, bought: bool) -> None:
    await audit.record(db, "number.assigned", business_id=business.id, user=owner.user, request=request,
                       detail={"before": business.phone_number, "after": assignment.number.phone_number,
                               "sid": assignment.number.sid, "bought": bought,
                               "webhooks_set": assignment.webhook_error is None})


@post("/settings/number/release", name="dashboard:number-release", status_code=200)
async def release_number(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                         settings: Settings) -> Template:
    problem = await number_assignments.release(db, TwilioNumbers.from_settings(settings), business.id)
    if business.phone_number:
        await audit.record(db, "number.released", business_id=business.id, user=owner.user, request=request,
                           detail={"number": business.phone_number, "webhooks_cleared": problem is None})
    if problem:
        return await _after(request, owner, db, settings, business,
                            error=tr("The number is released, but Twilio still sends its calls here: %(why)s",
                                     why=problem))
    return await _after(request, owner, db, settings, business,
                        message=tr("Number released: its calls no longer come to your receptionist."))


@post("/settings/number/search", name="dashboard:number-search", status_code=200)
async def search_numbers(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                         settings: Settings) -> Template:
    form = await request.form()
    country = str(form.get("country") or "US").strip().upper()
    area_code = str(form.get("area_code") or "").strip()
    if not settings.twilio_allow_purchase:
        return await _after(request, owner, db, settings, business,
                            error=tr("Buying numbers is turned off on this service."))
    if len(country) != 2 or not country.isalpha() or (area_code and not area_code.isdigit()):
        return await _after(request, owner, db, settings, business, country=country, area_code=area_code,
                            error=tr("Give a two-letter country code (like US or GB) and, if you like, an area "
                                     "code in digits."))
    try:
        found = await _numbers(settings).search_local(country, area_code or None)
    except (TwilioUnavailable, TwilioRefused, AssignmentRefused) as exc:
        return await _after(request, owner, db, settings, business, country=country, area_code=area_code,
                            error=tr("The search didn't work: %(why)s", why=str(exc)))
    return await _after(request, owner, db, settings, business, found=found, country=country, area_code=area_code,
                        message="" if found else tr("No numbers available there; try another area code."))


@post("/settings/number/buy", name="dashboard:number-buy", status_code=200)
async def buy_number(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                     settings: Settings) -> Template:
    phone = str((await request.form()).get("phone_number") or "")
    if not settings.twilio_allow_purchase:
        return await _after(request, owner, db, settings, business,
                            error=tr("Buying numbers is turned off on this service."))
    try:
        assignment = await number_assignments.buy(db, _numbers(settings), business.id, phone)
    except AssignmentRefused as exc:
        return await _after(request, owner, db, settings, business, error=exc.message)
    except TwilioUnavailable as exc:
        return await _after(request, owner, db, settings, business,
                            error=tr("Twilio couldn't be asked: %(why)s", why=str(exc)))
    await _audit_assigned(db, request, owner, business, assignment, bought=True)
    return await _after(request, owner, db, settings, business, **_assigned_message(assignment))


ROUTES = [number_section, pick_number, release_number, search_numbers, buy_number]
