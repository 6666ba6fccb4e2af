"""Who is asking: the signed-in owner and their business, as Litestar dependencies for owner routes."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from litestar.exceptions import NotAuthorizedException
from sqlalchemy import select

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.engine import Database
from app.db.models import Business, User


class NeedsOnboarding(Exception):
    """A signed-in owner without a business yet; HTML routes send them to onboarding."""


@dataclass(frozen=True, slots=True)
class Owner:
    user: User
    business: Business | None


async def provide_owner(request: Request, db: Database, signer: SessionSigner) -> Owner:
    raw = request.cookies.get(COOKIE_NAME)
    user_id = signer.load(raw) if raw else None
    if user_id is None:
        raise NotAuthorizedException("sign in to continue")
    async with db.session() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise NotAuthorizedException("sign in to continue")
        business = await s.scalar(select(Business).where(Business.owner_id == user.id))
    return Owner(user=user, business=business)


async def provide_business(owner: Owner) -> Business:
    if owner.business is None:
        raise NeedsOnboarding()
    return owner.business
