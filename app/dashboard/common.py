"""What every owner page shares: the page response (with the owner for the nav) and display formatting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import MediaType, Request
from litestar.exceptions import NotFoundException
from litestar.response import Template

from app.auth.deps import Owner
from app.billing.call_cost import CallCost
from app.db.hours import HoursError, zone
from app.db.phone import business_region, national_format


@dataclass(frozen=True, slots=True)
class Formatter:
    """Display helpers bound to the business's timezone, handed to templates as `fmt`."""

    tz: ZoneInfo
    #: the business's phone region (issue 8): numbers in it are shown nationally, others internationally
    region: str = "US"

    def phone(self, number: str | None) -> str:
        return national_format(number, self.region)

    def local(self, value: datetime | None) -> datetime | None:
        return value.astimezone(self.tz) if value else None

    def dt(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).strftime("%a %d %b %Y, %H:%M") if value else "—"

    def short(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).strftime("%d %b %H:%M") if value else "—"

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
        return f"{Formatter.money(value)} + price unknown" if value else "price unknown"

    @staticmethod
    def cost_of(call: Any) -> CallCost:
        """A call's costs (OpenAI, Twilio's phone legs, total: app.billing.call_cost)."""
        return CallCost.of(call)

    @staticmethod
    def call_cost(call: Any) -> str:
        """A call's total cost, saying what it doesn't include yet ("+ phone cost pending")."""
        return CallCost.of(call).total_words()

    @staticmethod
    def minutes(seconds: float | None) -> str:
        return f"{(seconds or 0) / 60:,.1f}"

    @staticmethod
    def number(value: int | float | None) -> str:
        return f"{value or 0:,}"


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


def page(template: str, owner: Owner, status: int = 200, **context: Any) -> Template:
    tz = business_zone(owner.business.timezone) if owner.business else ZoneInfo("UTC")
    region = business_region(owner.business.phone_number, owner.business.timezone) if owner.business else "US"
    return Template(
        template_name=template,
        context={"owner": owner, "business": owner.business, "fmt": Formatter(tz, region), **context},
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
