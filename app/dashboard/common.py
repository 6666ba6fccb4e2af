"""What every owner page shares: the page response (with the owner for the nav) and display formatting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_decimal
from litestar import MediaType, Request
from litestar.exceptions import NotFoundException
from litestar.response import Template

from app.auth.deps import Owner
from app.billing.call_cost import CallCost
from app.db.hours import HoursError, zone
from app.db.phone import business_region, national_format
from app.i18n.languages import DEFAULT_LANGUAGE, SUPPORTED, Language, for_owner
from app.i18n.pages import in_language, render_context
from app.i18n.text import tr
from app.web.rendering import SlicedTemplate


@dataclass(frozen=True, slots=True)
class Formatter:
    """Display helpers bound to the business's timezone, handed to templates as `fmt`."""

    tz: ZoneInfo
    #: the business's phone region (issue 8): numbers in it are shown nationally, others internationally
    region: str = "US"
    #: the owner's language (issue 16): month and day names; English keeps its compact fixed patterns
    language: Language = SUPPORTED[DEFAULT_LANGUAGE]

    def _english(self) -> bool:
        return self.language.base == "en"

    def _babel(self, value: datetime, skeleton: str, clock: str) -> str:
        # The owner's locale orders and names the date (CLDR skeleton); the clock stays 24-hour as in English.
        local = value.astimezone(self.tz)
        day = format_skeleton(skeleton, local, locale=self.language.babel)
        return f"{day}, {format_datetime(local, clock, locale=self.language.babel)}"

    def date(self, value: date | None, skeleton: str = "yMMMEd") -> str:
        """A calendar day in the owner's language ("Tue 05 May 2026" / "mar, 5 may 2026")."""
        if value is None:
            return "—"
        if self._english():
            return value.strftime({"yMMMEd": "%a %d %b %Y", "yMMMMEEEEd": "%A %d %B %Y", "yMMMd": "%d %b %Y",
                                   "MMMEd": "%a %d %b"}[skeleton])
        if skeleton == "yMMMMEEEEd":  # CLDR's full form: skeletons don't widen the weekday
            return str(format_date(value, "full", locale=self.language.babel))
        return str(format_skeleton(skeleton, value, locale=self.language.babel))

    def month(self, value: date) -> str:
        """A month and year ("May 2026", "mayo de 2026")."""
        if self._english():
            return value.strftime("%B %Y")
        return str(format_skeleton("yMMMM", value, locale=self.language.babel))

    def words(self, text: str) -> str:
        """A handler's `Text` in the owner's language, for what is built outside a template (an SVG chart)."""
        return in_language(text, self.language)

    def clock(self, value: datetime | None) -> str:
        """Hours and minutes on the business's clock."""
        return value.astimezone(self.tz).strftime("%H:%M") if value else "—"

    def phone(self, number: str | None) -> str:
        return national_format(number, self.region)

    def local(self, value: datetime | None) -> datetime | None:
        return value.astimezone(self.tz) if value else None

    def dt(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        if self._english():
            return value.astimezone(self.tz).strftime("%a %d %b %Y, %H:%M")
        return self._babel(value, "yMMMEd", "HH:mm")

    def short(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        if self._english():
            return value.astimezone(self.tz).strftime("%d %b %H:%M")
        return self._babel(value, "MMMd", "HH:mm")

    def time(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).strftime("%H:%M:%S") if value else "—"

    @staticmethod
    def duration(seconds: float | None) -> str:
        total = round(seconds or 0)
        return f"{total // 60}:{total % 60:02d}"

    @staticmethod
    def offset(ms: int | None) -> str:
        total = (ms or 0) // 1000
        return f"{total // 60:02d}:{total % 60:02d}"

    @staticmethod
    def money(value: float | None) -> str:
        amount = value or 0.0
        return f"${amount:,.4f}" if 0 < amount < 0.01 else f"${amount:,.2f}"

    @staticmethod
    def cost(value: float | None, price_unknown: bool = False) -> str:
        """A call's cost; usage of a model no price table knows is never shown as $0 (issue 13)."""
        if not price_unknown:
            return Formatter.money(value)
        if value:
            return tr("%(amount)s + price unknown", amount=Formatter.money(value))
        return tr("price unknown")

    @staticmethod
    def cost_of(call: Any) -> CallCost:
        """A call's costs (OpenAI, Twilio's phone legs, total: app.billing.call_cost)."""
        return CallCost.of(call)

    @staticmethod
    def call_cost(call: Any) -> str:
        """A call's total cost, saying what it doesn't include yet ("+ phone cost pending")."""
        return CallCost.of(call).total_words()

    def minutes(self, seconds: float | None) -> str:
        if self._english():
            return f"{(seconds or 0) / 60:,.1f}"
        return str(format_decimal((seconds or 0) / 60, "#,##0.0", locale=self.language.babel))

    def number(self, value: int | float | None) -> str:
        """A count with the owner's digit grouping ("1,234" / "1.234" / "1 234")."""
        if self._english():
            return f"{value or 0:,}"
        return str(format_decimal(value or 0, locale=self.language.babel))


def business_zone(name: str) -> ZoneInfo:
    try:
        return zone(name)
    except HoursError:
        return ZoneInfo("UTC")


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where a local calendar day starts and ends (23 or 25 hours long at DST changes)."""
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return start, end


def owner_language(owner: Owner) -> Language:
    """The language the owner's pages are in: the business's primary one; English before onboarding."""
    return for_owner(owner.business.languages if owner.business else None)


def formatter(owner: Owner) -> Formatter:
    tz = business_zone(owner.business.timezone) if owner.business else ZoneInfo("UTC")
    region = business_region(owner.business.phone_number, owner.business.timezone) if owner.business else "US"
    return Formatter(tz, region, owner_language(owner))


def page(template: str, owner: Owner, status: int = 200, **context: Any) -> Template:
    return SlicedTemplate(
        template_name=template,
        context={"owner": owner, "business": owner.business, "fmt": formatter(owner),
                 **render_context(owner_language(owner)), **context},
        status_code=status,
        # Explicit: handlers that may also redirect are annotated `Any`, and Litestar would default to JSON.
        media_type=MediaType.HTML,
    )


def is_htmx(request: Request[Any, Any, Any], target: str | None = None) -> bool:
    if not request.headers.get("hx-request"):
        return False
    return target is None or request.headers.get("hx-target") == target


def parse_id(raw: str) -> UUID:
    """Path ids are parsed by hand so a malformed one is the same 404 as someone else's."""
    try:
        return UUID(raw)
    except ValueError:
        raise NotFoundException("not found") from None
