"""What a call's phone leg cost (issue 16 item 6): summing Twilio's prices of a call and its <Dial> legs, the
`phone_cost` job's waiting for Twilio to rate the call (retried with backoff, then "unrated", never 0), a
Twilio outage retried, other currencies kept with their unit, and the one definition of a call's total."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from sqlalchemy import func, select, update

from app.billing.call_cost import PHONE_COST_JOB, CallCost, phone_call_over
from app.db.call_cost import PHONE_COST_OPEN, TOTAL_COST_USD
from app.db.engine import Database
from app.db.models import Call, Channel, Job, Session
from app.jobs import JobQueue, job_id_for
from app.settings import Settings
from app.telephony.call_cost import RATING_WINDOW, PhoneCosts, sum_legs
from app.telephony.rest import CallLeg, TwilioRefused, TwilioUnavailable
from tests.conftest import migrated_database
from tests.support.data import create_owner

CALL_SID = "CA" + "1" * 32
CHILD_SID = "CA" + "2" * 32


def leg(price: str | None, *, status: str = "completed", unit: str | None = "USD", sid: str = CALL_SID) -> CallLeg:
    return CallLeg(sid, status, price, unit)


def test_sum_legs_adds_the_absolute_prices_of_the_call_and_its_dialed_legs() -> None:
    cost = sum_legs([leg("-0.00850"), leg("-0.01400", sid=CHILD_SID)])
    assert cost is not None and cost.amount == Decimal("0.02250") and cost.unit == "USD" and cost.usd == 0.0225
    assert sum_legs([leg("0.00000", status="no-answer")]) == sum_legs([leg("0")])


def test_an_unpriced_or_unfinished_leg_means_not_rated_yet() -> None:
    assert sum_legs([leg("-0.00850"), leg(None, sid=CHILD_SID)]) is None
    assert sum_legs([leg("-0.00850"), leg("", sid=CHILD_SID)]) is None
    assert sum_legs([leg(None, status="in-progress")]) is None
    assert sum_legs([leg("-0.01", status="ringing")]) is None


def test_other_currencies_are_kept_as_they_come_and_mixed_or_broken_ones_refused() -> None:
    cost = sum_legs([leg("-0.0070", unit="eur"), leg("-0.0100", unit="EUR", sid=CHILD_SID)])
    assert cost is not None and cost.unit == "EUR" and cost.amount == Decimal("0.0170") and cost.usd is None
    with pytest.raises(ValueError):
        sum_legs([leg("-0.01", unit="USD"), leg("-0.01", unit="EUR", sid=CHILD_SID)])
    with pytest.raises(ValueError):
        sum_legs([leg("about a cent")])
    with pytest.raises(ValueError):
        sum_legs([])


def test_a_calls_total_and_its_words_never_count_an_unknown_phone_cost_as_zero() -> None:
    browser = CallCost(ai_usd=0.03)
    assert browser.total_usd == 0.03 and browser.complete and browser.total_words() == "$0.0300"
    pending = CallCost(ai_usd=0.03, phone_state="pending")
    assert pending.total_usd == 0.03 and not pending.complete
    assert pending.total_words() == "$0.0300 + phone cost pending" and pending.phone_words().startswith("pending")
    unrated = CallCost(ai_usd=0.0, phone_state="unrated")
    assert unrated.total_words() == "phone cost not rated" and "not rated" in unrated.phone_words()
    rated = CallCost(ai_usd=0.03, phone_state="rated", phone_amount=0.0225, phone_unit="USD", phone_usd=0.0225)
    assert rated.total_usd == pytest.approx(0.0525) and rated.total_words() == "$0.0525"
    assert rated.phone_words() == "$0.0225"
    euros = CallCost(ai_usd=0.03, phone_state="rated", phone_amount=0.017, phone_unit="EUR", phone_usd=None)
    assert euros.total_usd == 0.03 and euros.total_words() == "$0.0300 + phone cost in EUR"
    assert euros.phone_words() == "0.0170 EUR (not in the USD total)"
    unknown_model = CallCost(ai_usd=0.0, ai_price_unknown=True, phone_state="rated", phone_usd=0.01,
                             phone_unit="USD")
    assert unknown_model.total_words() == "$0.0100 + price unknown"
    # A placed call's attempts together (the Calls out page).
    both = CallCost.summed([rated, pending])
    assert both.total_usd == pytest.approx(0.0825) and both.total_words() == "$0.0825 + phone cost pending"
    assert CallCost.summed([rated, rated]).total_words() == "$0.1050"
    assert CallCost.summed([browser]).phone_state is None


class FakeCalls:
    """Stands in for app.telephony.rest.TwilioCalls: answers `call_legs` from a script per CallSid."""

    def __init__(self, script: Sequence[list[CallLeg] | Exception] | dict[str, list[list[CallLeg] | Exception]]
                 ) -> None:
        self.script = script if isinstance(script, dict) else {CALL_SID: list(script)}
        self.asked: list[str] = []

    async def call_legs(self, call_sid: str) -> list[CallLeg]:
        self.asked.append(call_sid)
        answer = self.script[call_sid].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def db(settings: Settings) -> Database:  # type: ignore[misc]
    async with migrated_database(settings) as database:
        yield database


async def _ended_call(db: Database, call_sid: str = CALL_SID, *, ended: datetime | None = None,
                      ai_cost: float = 0.03) -> UUID:
    _user, business = await create_owner(db)
    ended = ended or datetime.now(UTC)
    async with db.session() as s, s.begin():
        session = Session(business_id=business.id, channel=Channel.TWILIO.value, twilio_call_sid=call_sid,
                          status="completed", ended_at=ended)
        s.add(session)
        await s.flush()
        call = Call(session_id=session.id, business_id=business.id, channel=Channel.TWILIO.value,
                    status="completed", started_at=ended - timedelta(seconds=40), ended_at=ended,
                    duration_seconds=40, cost_usd=ai_cost)
        s.add(call)
        await s.flush()
        return call.id


async def _call(db: Database, call_id: UUID) -> Call:
    async with db.session() as s:
        call = await s.get(Call, call_id)
    assert call is not None
    return call


async def _job(db: Database, call_sid: str = CALL_SID) -> Job:
    async with db.session() as s:
        job = await s.get(Job, job_id_for(f"phone-cost:{call_sid}"))
    assert job is not None
    return job


async def _run_now(db: Database, jobs: JobQueue) -> bool:
    """Run the phone-cost job as if its backoff had passed."""
    async with db.session() as s, s.begin():
        await s.execute(update(Job).where(Job.kind == PHONE_COST_JOB).values(run_after=datetime.now(UTC)))
    return await jobs.run_one()


async def test_the_job_waits_for_twilios_price_through_an_outage_then_stores_the_sum(db: Database) -> None:
    call_id = await _ended_call(db)
    for _ in range(3):  # the status callback, the finalisation, a repeated callback: one job
        async with db.session() as s, s.begin():
            await phone_call_over(s, CALL_SID)
    async with db.session() as s, s.begin():
        await phone_call_over(s, "CA" + "9" * 32)  # not a call of ours: nothing queued
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Job).where(Job.kind == PHONE_COST_JOB)) == 1
    assert (await _call(db, call_id)).telephony_cost_state == "pending"
    assert (await _job(db)).run_after > datetime.now(UTC)  # Twilio is given a moment first

    twilio = FakeCalls([
        [leg(None), leg(None, sid=CHILD_SID)],                # not rated yet
        TwilioUnavailable("could not reach Twilio"),           # an outage
        [leg("-0.00850"), leg(None, sid=CHILD_SID)],           # the child leg still unpriced
        [leg("-0.00850"), leg("-0.01400", sid=CHILD_SID)],
    ])
    jobs = JobQueue(db)
    PhoneCosts(db, twilio).register(jobs)  # type: ignore[arg-type]
    waits = []
    for attempt in range(1, 4):
        assert await _run_now(db, jobs)
        job = await _job(db)
        assert job.status == "pending" and job.attempts == attempt, job.last_error
        waits.append(job.run_after - datetime.now(UTC))
        assert (await _call(db, call_id)).telephony_cost_state == "pending"
    assert waits[0] < waits[1] < waits[2]  # backoff grows between looks
    assert "not priced" in ((await _job(db)).last_error or "")
    assert await _run_now(db, jobs)
    call = await _call(db, call_id)
    assert (await _job(db)).status == "done" and twilio.asked == [CALL_SID] * 4
    assert (call.telephony_cost_state, call.telephony_cost_unit) == ("rated", "USD")
    assert call.telephony_cost == pytest.approx(0.0225) and call.telephony_cost_usd == pytest.approx(0.0225)
    assert CallCost.of(call).total_usd == pytest.approx(0.0525)
    async with db.session() as s:  # the SQL definition agrees with the Python one
        total, still_open = (await s.execute(
            select(TOTAL_COST_USD, PHONE_COST_OPEN).where(Call.id == call_id))).one()
    assert total == pytest.approx(0.0525) and not still_open


async def test_a_price_twilio_never_gives_is_left_unrated_not_zero(db: Database) -> None:
    ended = datetime.now(UTC) - RATING_WINDOW - timedelta(minutes=1)
    call_id = await _ended_call(db, ended=ended)
    async with db.session() as s, s.begin():
        await phone_call_over(s, CALL_SID)
    jobs = JobQueue(db)
    PhoneCosts(db, FakeCalls([[leg(None)]])).register(jobs)  # type: ignore[arg-type]
    assert await _run_now(db, jobs)
    call = await _call(db, call_id)
    assert (await _job(db)).status == "done"
    assert call.telephony_cost_state == "unrated" and call.telephony_cost is None and call.telephony_cost_usd is None
    assert CallCost.of(call).total_words() == "$0.0300 + phone cost not rated"


async def test_a_call_twilio_does_not_know_or_prices_in_euros(db: Database) -> None:
    gone = await _ended_call(db)
    euro_sid = "CA" + "3" * 32
    euros = await _ended_call(db, euro_sid)
    async with db.session() as s, s.begin():
        await phone_call_over(s, CALL_SID)
        await phone_call_over(s, euro_sid)
    twilio = FakeCalls({CALL_SID: [TwilioRefused(20404, "Twilio refused the call fetch (404, code 20404)")],
                        euro_sid: [[leg("-0.0070", unit="EUR", sid=euro_sid)]]})
    jobs = JobQueue(db)
    PhoneCosts(db, twilio).register(jobs)  # type: ignore[arg-type]
    assert await _run_now(db, jobs) and await _run_now(db, jobs)
    assert sorted(twilio.asked) == sorted([CALL_SID, euro_sid])
    assert (await _call(db, gone)).telephony_cost_state == "unrated"
    row = await _call(db, euros)
    assert (row.telephony_cost_state, row.telephony_cost, row.telephony_cost_unit, row.telephony_cost_usd) == (
        "rated", pytest.approx(0.007), "EUR", None)
    async with db.session() as s:
        still_open = await s.scalar(select(PHONE_COST_OPEN).where(Call.id == row.id))
    assert still_open  # outside the USD total, and the figures say so


async def test_without_twilio_credentials_a_call_is_unrated(db: Database) -> None:
    call_id = await _ended_call(db)
    async with db.session() as s, s.begin():
        await phone_call_over(s, CALL_SID)
    jobs = JobQueue(db)
    PhoneCosts(db, None).register(jobs)
    assert await _run_now(db, jobs)
    assert (await _call(db, call_id)).telephony_cost_state == "unrated"


async def test_the_overview_and_billing_figures_add_the_phone_cost_where_known(db: Database,
                                                                                settings: Settings) -> None:
    from app.billing.usage import BillingScope, page_figures
    from app.db.owner_queries import OwnerScope

    rated_id = await _ended_call(db, ai_cost=0.03)
    async with db.session() as s:
        business_id = (await s.get(Call, rated_id)).business_id  # type: ignore[union-attr]
    now = datetime.now(UTC)
    async with db.session() as s, s.begin():
        await s.execute(update(Call).where(Call.id == rated_id).values(
            telephony_cost_state="rated", telephony_cost=0.0225, telephony_cost_unit="USD", telephony_cost_usd=0.0225))
        for state in ("pending", None):  # a call Twilio has not priced yet, and a browser test call
            session = Session(business_id=business_id, channel=Channel.TWILIO.value, status="completed")
            s.add(session)
            await s.flush()
            s.add(Call(session_id=session.id, business_id=business_id, channel=Channel.TWILIO.value,
                       status="completed", started_at=now - timedelta(seconds=5), ended_at=now, cost_usd=0.01,
                       telephony_cost_state=state))
    scope = OwnerScope(db.session_maker, business_id)
    today, month, _tests = await scope.overview_totals((now - timedelta(hours=1), now + timedelta(hours=1)),
                                                       (now - timedelta(days=2), now + timedelta(hours=1)),
                                                       include_tests=True)
    for figures in (today, month):
        assert figures.calls == 3 and figures.cost == pytest.approx(0.0725) and figures.phone_pending == 1
    totals = await scope.totals(now - timedelta(days=1), now + timedelta(hours=1))
    assert totals.cost == pytest.approx(0.0725) and totals.phone_pending == 1
    billing = BillingScope(db.session_maker, business_id, settings)
    period = await billing.period(now)
    figures = await page_figures(billing, period, now - timedelta(days=1), None, count_unreported=False,
                                 call_limit=10)
    assert figures["totals"]["cost"] == pytest.approx(0.0725) and figures["totals"]["phone_cost"] == pytest.approx(
        0.0225) and figures["totals"]["ai_cost"] == pytest.approx(0.05) and figures["totals"]["phone_pending"] == 1
    words = sorted(CallCost.of(c).total_words() for c in figures["calls"])
    assert words == ["$0.0100", "$0.0100 + phone cost pending", "$0.0525"]
