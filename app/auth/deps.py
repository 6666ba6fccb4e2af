"""Who is asking: the signed-in owner, their business, and the business-scoped data service, as Litestar
dependencies for owner routes (the app-wide guard in `app.auth.access` has already checked the cookie)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request

from app.auth.access import load_owner
from app.db.engine import Database
from app.db.models import Business, User
from app.db.owner_queries import OwnerScope


class NeedsOnboarding(Exception):
    """A signed-in owner without a business yet; HTML routes send them to onboarding."""


@dataclass(frozen=True, slots=True)
class Owner:
    user: User
    business: Business | None


async def provide_owner(request: Request) -> Owner:
    user, business = await load_owner(request)
    return Owner(user=user, business=business)


async def provide_business(owner: Owner) -> Business:
    if owner.business is None:
        raise NeedsOnboarding()
    return owner.business


async def provide_owner_scope(business: Business, db: Database) -> OwnerScope:
    """`owner_scope`: every read and write of the signed-in owner's data, fixed to their business id."""
    return OwnerScope(db.session_maker, business.id)
