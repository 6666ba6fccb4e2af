"""Every transition of a Session and its Call, in one place: one function per transition, each a single
conditional write that says what state it moves from, so two paths (two processes, a stream and a status
callback, a call and housekeeping) can never both apply the same transition.

    offer ──claim──▶ (claimed, pending) ──start──▶ active/in progress ──flush*──▶ finalise ──▶ completed|failed
      │                   │                                                        ▲
      │                   └── fail_unstarted (anything between claim and a running call) ─┘
      ├── reoffer (a retried Twilio webhook renews the token while nothing claimed it)
      ├── finalise_without_stream (a Twilio call that ended before its stream: claims the token itself)
      ├── record_without_ai (a Twilio call the plan's limit keeps from the AI: born ended, the fallback answers)
      └── close_unclaimed (housekeeping: nobody connected)
    reap_stale (housekeeping: a call whose process died ends at its last sign of life)
    offer_move ──▶ release_moved (old instance) ─┬─ claim_move (new instance) ──▶ flush* ──▶ finalise
                                                 └─ cancel_move (the redirect failed: the call stays)

Invariants: a Session ends exactly once (`ended_at` is only ever set where it is NULL); a Call row is ended
exactly once (`Call.ended_at IS NULL` in every ending UPDATE), and its summary job and its settling job
(issue 9: outcomes, customer link, owner notifications; `app.inbox.outcomes`) are enqueued in the same
transaction as its ending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.billing.call_cost import phone_call_over
from app.billing.metering import on_call_finalised
from app.billing.usage import billable_on_finalise
from app.db.engine import Database
from app.db.models import (
    Business,
    Call,
    CallEvent,
    CallMove,
    CallStatus,
    Channel,
    Customer,
    Session,
    SessionStatus,
    plan_limit_end_reason,
)
from app.inbox.outcomes import enqueue_settle
from app.jobs import enqueue
from app.voice.tokens import TOKEN_MAX_AGE_SECONDS, TokenIssuer, TokenRejected

log = logging.getLogger(__name__)

SUMMARY_JOB = "summary"
#: A live call writes at least this often (a flush, even with nothing new), so a call whose row goes
#: quiet for several of these belongs to a process that died.
HEARTBEAT_SECONDS = 30.0
#: this long without a write means the call's process is gone
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)
#: A session nobody connected to, well after its connect token stopped working (a retried Twilio webhook
#: renews the token within seconds, so the margin covers it).
UNCLAIMED_AFTER = timedelta(seconds=TOKEN_MAX_AGE_SECONDS) + timedelta(minutes=10)

# Twilio's final CallStatus values and what each means for a call that never streamed.
_NO_STREAM = {
    "completed": "the caller hung up before the call was connected",
    "busy": "the line was busy",
    "no-answer": "the call was not answered",
    "canceled": "the caller hung up while the call was ringing",
    "failed": "Twilio could not connect the call",
}


def _ended(result: Any) -> bool:
    return result.rowcount == 1  # type: ignore[no-any-return]


# -- offer ----------------------------------------------------------------------------------------------------
async def offer_session(
    db: Database,
    issuer: TokenIssuer,
    business: Business,
    channel: str,
    *,
    caller_phone: str | None = None,
    call_sid: str | None = None,
) -> tuple[Session, str]:
    """A new pending Session and the connect token its caller's socket must present."""
    nonce = issuer.new_nonce()
    session = Session(business_id=business.id, channel=channel, caller_phone=caller_phone,
                      twilio_call_sid=call_sid, token_nonce=nonce)
    await db.transact(lambda s: s.add(session))
    return session, issuer.sign(session.id, nonce)


async def reoffer_session(db: Database, issuer: TokenIssuer, business: Business, call_sid: str
                          ) -> tuple[Session, str] | None:
    """A fresh token for the session of a retried Twilio webhook (the old token stops working), as long as no
    stream has claimed it and it has not ended; None otherwise."""
    nonce = issuer.new_nonce()
    async with db.write() as s:
        session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
        if session is None or session.business_id != business.id:
            return None
        result = await s.execute(
            update(Session)
            .where(Session.id == session.id, Session.token_used_at.is_(None), Session.ended_at.is_(None))
            .values(token_nonce=nonce)
        )
        if not _ended(result):
            return None
    return session, issuer.sign(session.id, nonce)


async def offer_twilio_session(db: Database, issuer: TokenIssuer, business: Business, *, call_sid: str,
                               caller_phone: str | None) -> tuple[Session, str] | None:
    """The Session for this CallSid and a fresh token; None when the call already has a stream."""
    try:
        return await offer_session(db, issuer, business, Channel.TWILIO.value, caller_phone=caller_phone,
                                   call_sid=call_sid)
    except IntegrityError:
        pass  # Twilio retried the webhook (same CallSid)
    offered = await reoffer_session(db, issuer, business, call_sid)
    if offered is not None:
        log.info("voice webhook retried for call %s: new token for session %s", call_sid, offered[0].id)
    return offered


# -- claim: the call starts -----------------------------------------------------------------------------------
# Built once, run on the tables (no ORM unit of work): the claim is the one write between a stream's `start` and
# its greeting, and under a burst its Python time is what the next call's greeting waits for (~1.7 ms a claim
# against ~4-6 ms through ORM-enabled UPDATE/INSERT … RETURNING, measured in process).
_SESSIONS, _CALLS = Session.__table__, Call.__table__
_CLAIM = (update(_SESSIONS)
          .where(_SESSIONS.c.id == bindparam("sid"), _SESSIONS.c.token_nonce == bindparam("nonce"),
                 _SESSIONS.c.token_used_at.is_(None), _SESSIONS.c.ended_at.is_(None))
          .values(token_used_at=bindparam("now"), status=SessionStatus.ACTIVE.value, started_at=bindparam("now"))
          .returning(*_SESSIONS.c))
_CLAIM_CALL_SID = _CLAIM.where(_SESSIONS.c.twilio_call_sid == bindparam("call_sid"))
_START = insert(_CALLS).values(
    session_id=bindparam("sid"), business_id=bindparam("business"), channel=bindparam("channel"),
    caller_phone=bindparam("phone"), started_at=bindparam("now"),
    customer_id=select(Customer.id).where(Customer.business_id == bindparam("business"),
                                          Customer.phone == bindparam("phone")).scalar_subquery(),
).returning(*_CALLS.c)
M = TypeVar("M", Session, Call)
#: (column name, attribute) of each model's columns (advanced-alchemy's insert sentinel is no attribute to set)
_ATTRIBUTES = {model: [(column.name, sa_inspect(model).get_property_by_column(column).key)
                       for column in model.__table__.c if column.name != "sa_orm_sentinel"]
               for model in (Session, Call)}


def _detached(model: type[M], row: Row[Any]) -> M:
    """The row as a detached instance, as if loaded by the ORM and its session closed."""
    values = row._mapping
    instance = model(**{key: values[name] for name, key in _ATTRIBUTES[model]})
    make_transient_to_detached(instance)
    return instance

#: why a session was ended when its token came in on the other kind of socket (the token is burnt: it leaked)
_WRONG_CHANNEL = {
    Channel.BROWSER.value: "a browser socket presented a phone call's token",
    Channel.TWILIO.value: "a phone stream presented a browser call's token",
}


async def claim_call(db: Database, issuer: TokenIssuer, token: str, *, channel: str, session_id: UUID | None = None,
                     call_sid: str | None = None) -> tuple[Session, Call]:
    """Validate `token`, mark it used and start the session's call, atomically: the session becomes active and
    its Call row (the record every later write updates, linked to the caller's customer row) is created.
    Raises TokenRejected. `channel`, `session_id` and `call_sid` are what the connecting side is and claims
    to be, and must match the session the token was issued for; a token presented on the wrong kind of socket
    ends its session. From here until the call runs, every failure must end in `fail_unstarted`."""
    sid, nonce = issuer.read(token)
    if session_id is not None and sid != session_id:
        raise TokenRejected("mismatch")
    now = datetime.now(UTC)

    def start(s: SyncSession) -> tuple[Session, Call | None] | None:
        claimed = s.execute(_CLAIM if call_sid is None else _CLAIM_CALL_SID,
                            {"sid": sid, "nonce": nonce, "now": now, "call_sid": call_sid}).one_or_none()
        if claimed is None:
            return None
        if claimed.channel != channel:
            s.execute(update(_SESSIONS).where(_SESSIONS.c.id == sid).values(
                status=SessionStatus.FAILED.value, ended_at=now, failure_reason=_WRONG_CHANNEL[channel]))
            return _detached(Session, claimed), None
        started = s.execute(_START, {"sid": sid, "business": claimed.business_id, "channel": claimed.channel,
                                     "phone": claimed.caller_phone, "now": now}).one()
        return _detached(Session, claimed), _detached(Call, started)

    # One unit in the writer queue, ahead of writers not on the way to a greeting (app/db/writer.py). Why a
    # claim failed is read afterwards, outside the queue.
    started = await db.transact(start, urgent=True)
    if started is not None:
        if started[1] is None:
            raise TokenRejected("mismatch")
        return started[0], started[1]
    async with db.session() as s:
        row = await s.scalar(select(Session).where(Session.id == sid))
    if row is None or row.token_nonce != nonce:
        raise TokenRejected("unknown")
    if call_sid is not None and row.twilio_call_sid != call_sid:
        raise TokenRejected("mismatch")
    raise TokenRejected("used")


async def session_claimed(db: Database, session_id: UUID) -> bool:
    """Whether a stream (in any process) has claimed the session's token, or it has ended."""
    async with db.session() as s:
        used = await s.scalar(select(Session.token_used_at).where(Session.id == session_id))
    return used is not None


# -- flush / finalise -------------------------------------------------------------------------------------------
async def flush_call(db: Database, call_id: UUID, values: dict[str, Any], events: Sequence[CallEvent]) -> bool:
    """Write a live call's running record (transcript, usage, new events); False when the call was already
    ended elsewhere (another process, a status callback): theirs is kept."""
    running = update(Call).where(Call.id == call_id, Call.ended_at.is_(None)).values(updated_at=datetime.now(UTC),
                                                                                      **values)

    def flush(s: SyncSession) -> bool:
        if not _ended(s.execute(running)):
            return False
        s.add_all(events)
        return True

    return await db.transact(flush)


async def finalise_call(db: Database, call_id: UUID, session_id: UUID, values: dict[str, Any],
                        events: Sequence[CallEvent], *, status: str, reason: str, failure: str | None,
                        started_at: datetime, caller_spoke: bool = False) -> bool:
    """End the call and its session once, and enqueue its summary in the same transaction. The same UPDATE
    fixes the call's billable seconds (issue 13) and, for a billable call, its keyed usage job is inserted
    in the same transaction."""
    now = datetime.now(UTC)
    duration = round((now - started_at).total_seconds(), 3)
    async with db.write() as s:
        result = await s.execute(
            update(Call).where(Call.id == call_id, Call.ended_at.is_(None)).values(
                updated_at=now, status=status, end_reason=reason, ended_at=now, duration_seconds=duration,
                billable_seconds=billable_on_finalise(duration, caller_spoke=caller_spoke), **values)
        )
        if not _ended(result):
            return False
        s.add_all(events)
        failed = status == CallStatus.FAILED.value
        await s.execute(
            update(Session).where(Session.id == session_id).values(
                status=SessionStatus.FAILED.value if failed else SessionStatus.COMPLETED.value,
                ended_at=now, failure_reason=failure)
        )
        await enqueue(s, SUMMARY_JOB, {"call_id": str(call_id)}, key=f"summary:{call_id}")
        await enqueue_settle(s, call_id)
        await on_call_finalised(s, call_id)
        # Issue 16 item 6: a phone call's Twilio price (also queued by its status callback; keyed, runs once).
        await phone_call_over(s, await s.scalar(select(Session.twilio_call_sid).where(Session.id == session_id)))
    return True


# -- calls the AI doesn't answer (issue 13: the plan's limit) -----------------------------------------------
async def record_without_ai(db: Database, business: Business, *, call_sid: str, caller_phone: str | None,
                            forwarded: bool) -> bool:
    """Record a Twilio call the AI will not answer (the fallback's forward or voicemail handles it) as an ended
    Session and Call, so the owner sees it on the calls and billing pages; it bills nothing. False when Twilio
    retried the webhook (same CallSid) and the call is already recorded. Its end reason is the fallback's
    plan-limit name (`app.db.models.plan_limit_end_reason`)."""
    now = datetime.now(UTC)
    try:
        async with db.write() as s:
            session = Session(business_id=business.id, channel=Channel.TWILIO.value,
                              status=SessionStatus.COMPLETED.value, caller_phone=caller_phone,
                              twilio_call_sid=call_sid, token_used_at=now, started_at=now, ended_at=now)
            s.add(session)
            await s.flush()
            s.add(Call(session_id=session.id, business_id=business.id, channel=Channel.TWILIO.value,
                       caller_phone=caller_phone,
                       status=(CallStatus.TRANSFERRED if forwarded else CallStatus.ABANDONED).value,
                       started_at=now, ended_at=now, duration_seconds=0.0, billable_seconds=0.0,
                       end_reason=plan_limit_end_reason(forwarded)))
    except IntegrityError:
        return False
    return True


# -- failures before the call runs ------------------------------------------------------------------------------
async def fail_unstarted(db: Database, session_id: UUID, reason: str) -> bool:
    """End a claimed (or merely offered) session whose call never got running: the session is `failed` with
    `reason`, and a Call row already started for it is ended as failed too. True if this changed anything."""
    now = datetime.now(UTC)
    async with db.write() as s:
        result = await s.execute(
            update(Session).where(Session.id == session_id, Session.ended_at.is_(None))
            .values(status=SessionStatus.FAILED.value, ended_at=now, failure_reason=reason[:500],
                    token_used_at=now)
        )
        changed = _ended(result)
        ending = list(await s.scalars(select(Call.id).where(Call.session_id == session_id, Call.ended_at.is_(None))))
        calls = await s.execute(
            update(Call).where(Call.session_id == session_id, Call.ended_at.is_(None)).values(
                status=CallStatus.FAILED.value, end_reason="setup_failed", ended_at=now, duration_seconds=0.0,
                updated_at=now)
        )
        if calls.rowcount:  # type: ignore[attr-defined]
            changed = True
            for call_id in ending:  # a failed call is news for the owner (issue 9)
                await enqueue_settle(s, call_id)
    return changed


#: the earlier name, kept for callers written against it
fail_unstarted_session = fail_unstarted


async def finalise_without_stream(db: Database, call_sid: str, twilio_status: str,
                                  duration_seconds: float | None = None) -> tuple[UUID, UUID] | None:
    """Close the record of a Twilio call that ended before (or without) its media stream; returns the Session id
    and the new Call id, or None when there was nothing left to close.

    Claiming the connect token in the same statement means a stream that shows up late is refused, and a call
    whose stream already connected is left to its bridge: exactly one of them finalises it."""
    now = datetime.now(UTC)
    description = _NO_STREAM.get(twilio_status, f"the call ended ({twilio_status})")
    status = CallStatus.ABANDONED if twilio_status in {"completed", "canceled"} else CallStatus.FAILED
    async with db.write() as s:
        session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
        if session is None:
            return None
        result = await s.execute(
            update(Session)
            .where(Session.id == session.id, Session.token_used_at.is_(None), Session.ended_at.is_(None))
            .values(token_used_at=now, ended_at=now,
                    status=SessionStatus.COMPLETED.value if status is CallStatus.ABANDONED
                    else SessionStatus.FAILED.value,
                    failure_reason=None if status is CallStatus.ABANDONED else description)
        )
        if not _ended(result):
            return None
        customer_id = None
        if session.caller_phone:
            customer_id = await s.scalar(select(Customer.id).where(Customer.business_id == session.business_id,
                                                                    Customer.phone == session.caller_phone))
        duration = max(0.0, duration_seconds or 0.0)
        call = Call(session_id=session.id, business_id=session.business_id, channel=Channel.TWILIO.value,
                    caller_phone=session.caller_phone, customer_id=customer_id, status=status.value,
                    started_at=session.created_at or now, ended_at=now, duration_seconds=duration,
                    end_reason=f"twilio_{twilio_status.replace('-', '_')}", transcript="")
        if duration and session.created_at:
            call.started_at = max(session.created_at, now - timedelta(seconds=duration))
        s.add(call)
        await s.flush()
        await enqueue_settle(s, call.id)
        return session.id, call.id


# -- housekeeping -----------------------------------------------------------------------------------------------
async def reap_stale_calls(db: Database, *, now: datetime | None = None) -> int:
    """End calls left in progress by a process that died (a crash, a kill, a lost machine): no write for
    STALE_AFTER. Each ends at its last sign of life, once, and gets its summary job. Returns how many."""
    now = now or datetime.now(UTC)
    cutoff = now - STALE_AFTER
    async with db.session() as s:
        rows = (await s.execute(select(Call.id, Call.session_id, Call.started_at, Call.updated_at)
                                .where(Call.ended_at.is_(None), Call.updated_at < cutoff))).all()
    ended = 0
    for call_id, session_id, started_at, last_seen in rows:
        async with db.write() as s:
            result = await s.execute(
                update(Call)
                .where(Call.id == call_id, Call.ended_at.is_(None), Call.updated_at < cutoff)
                .values(status=CallStatus.FAILED.value, end_reason="interrupted", ended_at=last_seen,
                        duration_seconds=round(max(0.0, (last_seen - started_at).total_seconds()), 3),
                        # Whether the caller spoke isn't known here: only the length decides (the 15 s rule).
                        billable_seconds=billable_on_finalise(max(0.0, (last_seen - started_at).total_seconds()),
                                                              caller_spoke=False),
                        updated_at=now)
            )
            if not _ended(result):
                continue
            await s.execute(
                update(Session).where(Session.id == session_id, Session.ended_at.is_(None))
                .values(status=SessionStatus.FAILED.value, ended_at=last_seen,
                        failure_reason="the service stopped while the call was in progress")
            )
            await enqueue(s, SUMMARY_JOB, {"call_id": str(call_id)}, key=f"summary:{call_id}")
            await enqueue_settle(s, call_id)
            await on_call_finalised(s, call_id)
            ended += 1
    return ended


async def close_unclaimed(db: Database, *, now: datetime | None = None) -> int:
    """Close sessions whose caller never connected (a test page shut before the call started, a Twilio call
    that never opened its stream and whose status callback was lost). Claiming the token in the same
    statement keeps a late socket out. Returns how many were closed."""
    now = now or datetime.now(UTC)
    async with db.write() as s:
        result = await s.execute(
            update(Session)
            .where(Session.ended_at.is_(None), Session.token_used_at.is_(None),
                   Session.created_at < now - UNCLAIMED_AFTER)
            .values(status=SessionStatus.FAILED.value, ended_at=now, token_used_at=now,
                    failure_reason="the caller never connected")
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- moves between instances (issue 11 item 4) ----------------------------------------------------------------
async def offer_move(db: Database, issuer: TokenIssuer, *, call_id: UUID, session_id: UUID, business_id: UUID,
                     state: dict[str, Any]) -> tuple[UUID, str]:
    """A live call is about to be redirected to another instance: the CallMove row that instance will claim,
    and the signed single-use token its stream presents."""
    nonce = issuer.new_nonce()
    async with db.session() as s, s.begin():
        move = CallMove(call_id=call_id, session_id=session_id, business_id=business_id, token_nonce=nonce,
                        state=state)
        s.add(move)
        await s.flush()
        move_id = move.id
    return move_id, issuer.sign_move(move_id, nonce)


async def release_moved(db: Database, call_id: UUID, move_id: UUID, values: dict[str, Any],
                        events: Sequence[CallEvent]) -> bool:
    """The old instance's last write of a moved call: its record so far, without ending it, and the move
    marked released in the same transaction (the new instance waits for that before reading the record)."""
    now = datetime.now(UTC)
    async with db.session() as s, s.begin():
        result = await s.execute(
            update(Call).where(Call.id == call_id, Call.ended_at.is_(None)).values(updated_at=now, **values)
        )
        if not _ended(result):
            return False
        s.add_all(events)
        await s.execute(update(CallMove).where(CallMove.id == move_id, CallMove.released_at.is_(None))
                        .values(released_at=now))
    return True


async def cancel_move(db: Database, move_id: UUID, why: str) -> bool:
    """Give up a move nobody claimed (the REST redirect failed, or the caller hung up meanwhile): its token
    stops working. False when the other instance had already claimed it: the call did move."""
    async with db.session() as s, s.begin():
        result = await s.execute(
            update(CallMove).where(CallMove.id == move_id, CallMove.claimed_at.is_(None))
            .values(cancelled=why[:200])
        )
    return _ended(result)


async def claim_move(db: Database, issuer: TokenIssuer, token: str, *, call_sid: str) -> tuple[CallMove, Session]:
    """Validate a move token and take the call over, atomically; raises TokenRejected. The stream must be
    for the call the move was made for, and that call must still be live."""
    move_id, nonce = issuer.read_move(token)
    async with db.session() as s, s.begin():
        move = await s.get(CallMove, move_id)
        if move is None or move.token_nonce != nonce:
            raise TokenRejected("unknown")
        session = await s.get(Session, move.session_id)
        if session is None or session.twilio_call_sid != call_sid:
            raise TokenRejected("mismatch")
        result = await s.execute(
            update(CallMove).where(CallMove.id == move_id, CallMove.claimed_at.is_(None),
                                   CallMove.cancelled.is_(None))
            .values(claimed_at=datetime.now(UTC))
        )
        if not _ended(result):
            raise TokenRejected("used")
        live = await s.scalar(select(Call.id).where(Call.id == move.call_id, Call.ended_at.is_(None)))
        if live is None:
            raise TokenRejected("used")
    async with db.session() as s:
        claimed, claimed_session = await s.get(CallMove, move_id), await s.get(Session, move.session_id)
        assert claimed is not None and claimed_session is not None
        return claimed, claimed_session


# -- issue 16: outbound attempts nobody (or no AI) answered -------------------------------------------------
async def record_outbound_attempt(db: Database, business_id: UUID, *, call_sid: str, to_phone: str,
                                  outbound_call_id: UUID, outcome: str, end_reason: str, started_at: datetime,
                                  duration_seconds: float = 0.0, answered: bool = False) -> UUID | None:
    """Record a placed call that ran no receptionist (nobody answered, the line was busy, or the owner's
    click-to-call bridge) as an ended outbound Session and Call, so the owner sees every attempt on the calls
    page. Keyed by the CallSid: a repeated status callback records nothing twice (returns None)."""
    now = datetime.now(UTC)
    try:
        async with db.session() as s, s.begin():
            customer_id = await s.scalar(select(Customer.id).where(Customer.business_id == business_id,
                                                                    Customer.phone == to_phone))
            session = Session(business_id=business_id, channel=Channel.TWILIO.value,
                              status=SessionStatus.COMPLETED.value, caller_phone=to_phone, twilio_call_sid=call_sid,
                              token_used_at=now, started_at=started_at, ended_at=now)
            s.add(session)
            await s.flush()
            call = Call(session_id=session.id, business_id=business_id, channel=Channel.TWILIO.value,
                        caller_phone=to_phone, customer_id=customer_id,
                        status=(CallStatus.COMPLETED if answered else CallStatus.ABANDONED).value,
                        started_at=started_at, ended_at=now, duration_seconds=max(0.0, duration_seconds),
                        billable_seconds=0.0, end_reason=end_reason, direction="outbound",
                        outbound_call_id=outbound_call_id, outbound_outcome=outcome)
            s.add(call)
            await s.flush()
            return call.id
    except IntegrityError:
        return None
