"""The operator's commands, as a Litestar CLI plugin: `litestar --app app.main:app receptionist …`.

- `create-business --email E --name N [--timezone TZ]`: onboard an owner by hand (they sign in with that email
  and land on their dashboard);
- `businesses`: every business, its owner and number (and whether the number came from the account);
- `numbers`: the service account's Twilio numbers, who holds each, and whether its webhooks point here;
- `assign --email E NUMBER` (E.164 or PN sid) and `release --email E`: give a business a number or take it back.

Every change goes through the same code as the owner's Settings (`app.telephony.number_assignments`), so the
operator can't hand out a number outside the account or one another business holds either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import click
from litestar import Litestar
from litestar.plugins import CLIPluginProtocol
from sqlalchemy import func, select

from app import audit
from app.auth.users import user_for_email
from app.db.engine import Database
from app.db.hours import HoursError, zone
from app.db.models import Business, User
from app.settings import Settings
from app.telephony import number_assignments
from app.telephony.number_assignments import AssignmentRefused
from app.telephony.numbers import NumberNotInAccount, TwilioNumbers, TwilioRefused
from app.telephony.rest import TwilioUnavailable

T = TypeVar("T")
OPERATOR_LABEL = "operator (litestar receptionist)"


async def _audit(db: Database, action: str, business_id: UUID, **detail: Any) -> None:
    await audit.record(db, action, business_id=business_id, actor_kind=audit.OPERATOR, actor_label=OPERATOR_LABEL,
                       detail=detail)


def _app() -> Litestar:
    """The app the Litestar CLI loaded (`--app`); its environment object carries it to every subcommand."""
    app = getattr(click.get_current_context().obj, "app", None)
    if not isinstance(app, Litestar):
        raise click.ClickException("run this through the Litestar CLI: litestar --app app.main:app receptionist …")
    return app


def _run(work: Callable[[Settings, Database], Awaitable[T]]) -> T:
    """Run `work` on a database of its own (the CLI's event loop is not the server's)."""
    settings: Settings = _app().state.settings

    async def main() -> T:
        db = Database(settings)
        try:
            return await work(settings, db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except AssignmentRefused as exc:
        raise click.ClickException(exc.message) from None
    except (TwilioUnavailable, TwilioRefused) as exc:
        raise click.ClickException(str(exc)) from None


def _numbers(settings: Settings) -> TwilioNumbers:
    numbers = TwilioNumbers.from_settings(settings)
    if numbers is None:
        raise click.ClickException("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return numbers


async def _business_of(db: Database, email: str) -> Business:
    async with db.session() as s:
        business = await s.scalar(select(Business).join(User, User.id == Business.owner_id)
                                  .where(func.lower(User.email) == email.strip().lower()))
    if business is None:
        raise click.ClickException(f"no business is owned by {email}")
    return business


@click.group(name="receptionist", help="Operate the receptionist service: businesses and phone numbers.")
def receptionist() -> None:
    pass


@receptionist.command(name="create-business", help="Create an owner's business (they sign in with this email).")
@click.option("--email", required=True, help="The owner's sign-in email.")
@click.option("--name", required=True, help="The business's name.")
@click.option("--timezone", default="America/New_York", show_default=True, help="IANA timezone, e.g. Europe/London.")
def create_business(email: str, name: str, timezone: str) -> None:
    try:
        zone(timezone)
    except HoursError:
        raise click.BadParameter(f"{timezone!r} is not a timezone", param_hint="--timezone") from None
    if "@" not in email or not name.strip():
        raise click.BadParameter("give an email address and a name")

    async def work(_settings: Settings, db: Database) -> UUID:
        user = await user_for_email(db, email.strip().lower())
        async with db.session() as s, s.begin():
            if await s.scalar(select(Business.id).where(Business.owner_id == user.id)) is not None:
                raise AssignmentRefused(f"{email} already owns a business")
            business = Business(owner_id=user.id, name=name.strip(), timezone=timezone,
                                greeting=f"Thanks for calling {name.strip()}, how can I help you today?")
            s.add(business)
            await s.flush()
        await _audit(db, "business.created", business.id, name=business.name, owner=email)
        return business.id

    business_id = _run(work)
    click.echo(f"created business {business_id} for {email}; they finish setting it up under Settings")


@receptionist.command(name="businesses", help="List every business, its owner and its number.")
def list_businesses() -> None:
    async def work(_settings: Settings, db: Database) -> list[Any]:
        async with db.session() as s:
            return list((await s.execute(
                select(Business.id, Business.name, User.email, Business.phone_number, Business.phone_number_sid)
                .join(User, User.id == Business.owner_id).order_by(Business.created_at))).all())

    for business_id, name, email, number, sid in _run(work):
        held = f"{number} ({sid})" if sid else (f"{number} (typed in, not from the account)" if number else "no number")
        click.echo(f"{business_id}  {name}  <{email}>  {held}")


@receptionist.command(name="numbers", help="List the Twilio account's numbers and who holds each.")
def list_numbers() -> None:
    async def work(settings: Settings, db: Database) -> list[str]:
        numbers = _numbers(settings)
        held = await number_assignments.holders(db)
        lines = []
        for n in await numbers.list():
            holder = held.get(n.phone_number)
            state = "webhooks here" if n.points_at(numbers.voice_url, numbers.status_url) else (
                f"webhooks elsewhere ({n.voice_url})" if n.voice_url else "no webhooks")
            lines.append(f"{n.sid}  {n.phone_number}  {holder[1] if holder else 'free'}  {state}")
        return lines

    for line in _run(work):
        click.echo(line)


@receptionist.command(name="assign", help="Give a business one of the account's numbers (E.164 or PN sid).")
@click.option("--email", required=True, help="The owner's email.")
@click.argument("number")
def assign(email: str, number: str) -> None:
    async def work(settings: Settings, db: Database) -> number_assignments.Assignment:
        numbers = _numbers(settings)
        business = await _business_of(db, email)
        if number.startswith("PN"):
            try:
                done = await number_assignments.assign(db, numbers, business.id, number)
            except NumberNotInAccount:
                raise AssignmentRefused(number_assignments.NOT_IN_ACCOUNT) from None
        else:
            done = await number_assignments.assign_by_phone(db, numbers, business.id, number)
        await _audit(db, "number.assigned", business.id, before=business.phone_number, after=done.number.phone_number,
                     sid=done.number.sid, webhooks_set=done.webhook_error is None)
        return done

    assignment = _run(work)
    click.echo(f"{assignment.number.phone_number} ({assignment.number.sid}) now rings {email}'s receptionist")
    if assignment.webhook_error:
        raise click.ClickException(f"but its webhooks were not set: {assignment.webhook_error}")


@receptionist.command(name="release", help="Take a business's number back (its webhooks are cleared).")
@click.option("--email", required=True, help="The owner's email.")
def release(email: str) -> None:
    async def work(settings: Settings, db: Database) -> tuple[str | None, str | None]:
        business = await _business_of(db, email)
        problem = await number_assignments.release(db, TwilioNumbers.from_settings(settings), business.id)
        if business.phone_number:
            await _audit(db, "number.released", business.id, number=business.phone_number,
                         webhooks_cleared=problem is None)
        return business.phone_number, problem

    number, problem = _run(work)
    if number is None:
        click.echo(f"{email}'s business has no number")
        return
    click.echo(f"released {number} from {email}'s business")
    if problem:
        raise click.ClickException(f"but its webhooks were not cleared: {problem}")


class ReceptionistCLIPlugin(CLIPluginProtocol):
    """Adds `litestar receptionist …` to the Litestar CLI."""

    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(receptionist)
