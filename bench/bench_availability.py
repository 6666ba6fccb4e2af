"""Availability and booking with resources, closures, buffers and synced Google busy blocks.

One business in the embedded SQLite database with R resources, B live bookings and G busy blocks spread
over the next 31 days; reports p50/p95 of `availability_by_lane` for one day, a week and 31 days, and of
`book` (the serialised transaction, including its lane check), next to a floor measured in the same run:
one trivial read through the same session maker.

    .venv/bin/python bench/bench_availability.py [--resources 4] [--bookings 2000] [--blocks 500] [--runs 30]
    .venv/bin/python bench/bench_availability.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db import migrate  # noqa: E402
from app.db.calendar_scope import CalendarScope  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.db.hours import zone  # noqa: E402
from app.db.models import Appointment, BusyBlock, Customer  # noqa: E402
from app.db.services import ServiceError  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.support.data import create_owner  # noqa: E402
from tests.support.server import base_env  # noqa: E402

NY = zone("America/New_York")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-availability-"))
    settings = load_settings(base_env(data_dir))
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database(settings)
    rng = random.Random(15)
    try:
        _user, business = await create_owner(db, weekly_hours={d: [["08:00", "20:00"]] for d in
                                                               ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
        scope = CalendarScope(db.session_maker, business.id)
        resources = [await scope.save_resource(None, name=f"Staff {i}", kind="person", services=[],
                                               weekly_hours=None, position=i) for i in range(args.resources)]
        await scope.save_rules(before=5, after=10, min_notice=30, max_days_ahead=60, service_buffers={})
        today = datetime.now(NY).date() + timedelta(days=1)
        await scope.add_closure(today + timedelta(days=10), [], note="holiday")
        async with db.session() as s, s.begin():
            await s.execute(insert(Customer), [{"business_id": business.id, "phone": f"+1555{i:07d}", "name": f"C{i}"}
                                               for i in range(200)])
            customers = list(await s.scalars(select(Customer.id).where(Customer.business_id == business.id)))
            rows, taken = [], set()
            while len(rows) < args.bookings:
                r = rng.choice(resources)
                day = today + timedelta(days=rng.randrange(31))
                start = datetime(day.year, day.month, day.day, rng.randrange(8, 19), rng.choice((0, 30)), tzinfo=NY)
                if (r.id, start) in taken:
                    continue
                taken.add((r.id, start))
                utc = start.astimezone(UTC)
                rows.append({"business_id": business.id, "customer_id": rng.choice(customers), "service": "Haircut",
                             "starts_at": utc, "ends_at": utc + timedelta(minutes=30), "busy_from": utc,
                             "busy_until": utc + timedelta(minutes=30), "resource_id": r.id, "lane": str(r.id),
                             "status": "booked"})
            await s.execute(insert(Appointment), rows)
            blocks = []
            for _ in range(args.blocks):
                day = today + timedelta(days=rng.randrange(31))
                start = datetime(day.year, day.month, day.day, rng.randrange(8, 19), 0, tzinfo=NY).astimezone(UTC)
                pick = rng.choice([*resources, None])  # None: a business-wide calendar blocks everyone
                blocks.append({"business_id": business.id, "resource_id": pick.id if pick else None,
                               "source": "event", "starts_at": start,
                               "ends_at": start + timedelta(minutes=45), "note": "busy"})
            await s.execute(insert(BusyBlock), blocks)

        async def floor() -> None:
            async with db.session() as s:
                await s.execute(text("select 1"))

        results = {"floor (select 1)": await timed(floor, args.runs)}
        for label, days in (("1 day", 0), ("7 days", 6), ("31 days", 30)):
            first: date = today

            async def query(first: date = first, days: int = days) -> None:
                await scope.availability_by_lane("Haircut", first, first + timedelta(days=days))

            results[f"availability {label}"] = await timed(query, args.runs)

        booked = 0

        async def book_one() -> None:
            nonlocal booked
            day = today + timedelta(days=rng.randrange(31))
            start = datetime(day.year, day.month, day.day, rng.randrange(8, 19), 15, tzinfo=NY)
            try:
                await scope.book(rng.choice(customers), "Haircut", start)
                booked += 1
            except ServiceError:  # a taken, closed or too-soon slot is part of the load
                pass

        results["book"] = await timed(book_one, args.runs)
        print(f"resources={args.resources} bookings={args.bookings} blocks={args.blocks} runs={args.runs} "
              f"(booked {booked} of {args.runs})")
        for label, values in results.items():
            print(f"  {label:22s} p50 {statistics.median(values):7.2f} ms   p95 {pct(values, 0.95):7.2f} ms")
    finally:
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=4)
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="a short form: 2 resources, 200 bookings, 10 runs")
    ns = parser.parse_args()
    if ns.quick:
        ns.resources, ns.bookings, ns.blocks, ns.runs = 2, 200, 50, 10
    asyncio.run(main(ns))
