"""Test data written through the real models: owners, businesses, customers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.db.engine import Database
from app.db.models import Business, User
from app.settings import load_settings

WEEKDAY_HOURS: dict[str, list[list[str]]] = {
    d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
} | {"sat": [["10:00", "14:00"]], "sun": []}

SERVICES: list[dict[str, Any]] = [
    {"name": "Haircut", "minutes": 30, "price": 25.0},
    {"name": "Colour", "minutes": 90, "price": 80.0},
]


async def create_owner(
    db: Database, *, email: str | None = None, name: str = "Sam's Salon", **business_fields: Any
) -> tuple[User, Business]:
    email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
    fields: dict[str, Any] = {
        "name": name,
        "timezone": "America/New_York",
        "weekly_hours": WEEKDAY_HOURS,
        "services": SERVICES,
        "greeting": f"Thanks for calling {name}, how can I help?",
        "address": "1 Main St, Springfield",
    }
    fields.update(business_fields)
    async with db.session() as s, s.begin():
        user = User(email=email, name="Owner " + email.split("@")[0])
        s.add(user)
        await s.flush()
        business = Business(owner_id=user.id, **fields)
        s.add(business)
    return user, business


async def seed_owner(env: dict[str, str], **owner: Any) -> tuple[User, Business]:
    """`create_owner` on the database a running service's `env` names (through an engine of its own)."""
    db = Database(load_settings(env))
    try:
        return await create_owner(db, **owner)
    finally:
        await db.dispose()


def earlier_today(minutes: float) -> datetime:
    """`minutes` ago, kept inside today (UTC): a test counting "today's" calls run just after midnight would
    otherwise seed them yesterday (and on the 1st, last month). Just after midnight it is later today instead."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    moment = now - timedelta(minutes=minutes)
    return moment if moment >= midnight else midnight + timedelta(minutes=minutes)
