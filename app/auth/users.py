"""Finding or creating the owner's User row at sign-in; ending all of a user's sessions at sign-out."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.oidc import Identity
from app.db.engine import Database, find_or_create
from app.db.models import Business, User


async def user_for_google(db: Database, identity: Identity) -> User:
    """By Google subject first (emails can change), then by email, linking the subject on first sign-in."""

    async def save(s: AsyncSession) -> User:
        user = await s.scalar(select(User).where(User.google_sub == identity.subject))
        if user is None:
            user = await s.scalar(select(User).where(User.email == identity.email))
            if user is not None and user.google_sub not in (None, identity.subject):
                # The address now belongs to a different Google account: never merge the two.
                raise PermissionError("this email address is linked to another Google account")
        if user is None:
            user = User(email=identity.email, name=identity.name, google_sub=identity.subject)
            s.add(user)
        else:
            user.google_sub = identity.subject
            user.email = identity.email
            if identity.name and not user.name:
                user.name = identity.name
        await s.flush()
        return user

    return await find_or_create(db.session_maker, save)


async def user_for_email(db: Database, email: str, name: str = "") -> User:
    async def save(s: AsyncSession) -> User:
        user = await s.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=name)
            s.add(user)
            await s.flush()
        return user

    return await find_or_create(db.session_maker, save)


async def end_all_sessions(db: Database, user_id: UUID) -> None:
    """Bump the session epoch in one UPDATE, so two sign-outs at once can't both write the same new value."""
    async with db.session() as s, s.begin():
        await s.execute(update(User).where(User.id == user_id).values(session_epoch=User.session_epoch + 1))


async def business_id_of(db: Database, user_id: UUID) -> UUID | None:
    """The owner's business, if they have one yet (a first sign-in comes before onboarding)."""
    async with db.session() as s:
        return await s.scalar(select(Business.id).where(Business.owner_id == user_id))
