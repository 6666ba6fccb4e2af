"""Keeping the service and Google Calendar in step, both ways.

Google -> service: each connected calendar's busy times become `BusyBlock` rows. Readable calendars sync their
events incrementally (`events.list` with the stored sync token; 410 Gone drops that calendar's blocks and
syncs in full); free/busy-only calendars (accessRole freeBusyReader) are read with `freeBusy`. A push
notification or the periodic pass queues a sync; the booking transaction then checks against the blocks, so
a slot is never offered or booked over a busy time the service has seen. A busy time that arrives after a
booking overlapping it (an event created in Google at the same moment) becomes a `CalendarConflict` for the
owner; so does a booking's own event moved or deleted in Google. Nothing is dropped silently.

Service -> Google: every booking change queued a `calendar.push` job (app.db.scheduling.record_change); the
job reads the appointment as it is now and makes its event match: insert (with an id derived from the
appointment's, so a retried insert can't make a second event), patch, or delete. Google unreachable: the job
fails and is retried with backoff, and the booking stands locally meanwhile. Time the owner blocks in the
dashboard goes the same way (`record_block_change`, keyed jobs): an opaque event marked as ours, deleted when
the block is removed; sync skips our own block events (the block already holds that time).
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.crypto import TokenCipher, TokenUnreadable
from app.calendar.google import GoogleCalendar, GoogleNotFound, GoogleRefused, GrantRevoked, SyncTokenGone
from app.db.engine import Database
from app.db.hours import zone
from app.db.models import (
    Appointment,
    AppointmentStatus,
    Business,
    BusyBlock,
    BusySource,
    CalendarAccount,
    CalendarConflict,
    CalendarLink,
    Customer,
    Job,
    JobStatus,
)
from app.db.scheduling import CALENDAR_PUSH_JOB
from app.jobs import enqueue
from app.settings import Settings

log = logging.getLogger(__name__)

SYNC_JOB = "calendar.sync"
APPOINTMENT_PROPERTY = "receptionistAppointment"
BLOCK_PROPERTY = "receptionistBlock"
FREEBUSY_DAYS = 120
# Past events matter only while a booking could still conflict with them.
KEEP_PAST = timedelta(days=1)
# Renew a watch channel once less than this is left of it (the periodic pass runs far more often).
RENEW_BEFORE = timedelta(hours=12)


def event_id_for(appointment_id: UUID) -> str:
    """A valid client-chosen event id (base32hex, lowercase a-v and 0-9): one appointment, one event."""
    return base64.b32hexencode(appointment_id.bytes).decode().lower().rstrip("=")


def _parse_time(value: Mapping[str, Any] | None, tz_name: str) -> datetime | None:
    if not value:
        return None
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone(str(value.get("timeZone") or tz_name)))
        return moment.astimezone(UTC)
    if value.get("date"):  # all-day: the local day in the business's zone
        day = date.fromisoformat(str(value["date"]))
        return datetime.combine(day, time(), tzinfo=zone(tz_name)).astimezone(UTC)
    return None


def event_blocks_time(event: Mapping[str, Any]) -> bool:
    """Busy, as Google's free/busy sees it: not cancelled, not transparent, not declined by the calendar."""
    if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
        return False
    return not any(a.get("self") and a.get("responseStatus") == "declined" for a in event.get("attendees") or [])


class CalendarSync:
    def __init__(self, settings: Settings, db: Database, google: GoogleCalendar) -> None:
        self.settings = settings
        self.db = db
        self.google = google
        self.cipher = TokenCipher(settings)

    # -- helpers ---------------------------------------------------------------------------------------
    async def call(self, account: CalendarAccount, request: Any) -> Any:
        try:
            refresh = self.cipher.decrypt(account.refresh_token_encrypted)
            return await self.google.call(str(account.id), refresh, request)
        except (GrantRevoked, TokenUnreadable) as exc:
            # The owner has to connect again: say so on the settings page rather than only in the job log.
            async with self.db.session() as s, s.begin():
                await s.execute(update(CalendarAccount).where(CalendarAccount.id == account.id)
                                .values(last_error=f"{exc} (connect the account again)"))
            raise

    async def _link_and_account(self, s: AsyncSession, link_id: UUID) -> tuple[CalendarLink, CalendarAccount] | None:
        link = await s.get(CalendarLink, link_id)
        if link is None:
            return None
        account = await s.get(CalendarAccount, link.account_id)
        return (link, account) if account else None

    async def enqueue_sync(self, link_id: UUID, *, full: bool = False) -> None:
        async with self.db.session() as s, s.begin():
            pending = await s.scalar(
                select(Job.id).where(
                    Job.kind == SYNC_JOB, Job.status == JobStatus.PENDING.value,
                    Job.payload["link_id"].as_string() == str(link_id),
                )
            )
            if pending is None:
                await enqueue(s, SYNC_JOB, {"link_id": str(link_id), "full": full})

    # -- Google -> service -----------------------------------------------------------------------------
    async def sync_link(self, link_id: UUID, *, full: bool = False) -> None:
        async with self.db.session() as s:
            pair = await self._link_and_account(s, link_id)
            if pair is None:
                return
            link, account = pair
            business = await s.get(Business, link.business_id)
        assert business is not None
        try:
            if link.access_role == "freeBusyReader":
                await self._sync_freebusy(link, account, business)
            else:
                await self._sync_events(link, account, business, full=full)
        except GoogleRefused as exc:
            await self._note_error(link.id, str(exc))
            raise
        async with self.db.session() as s, s.begin():
            await s.execute(
                update(CalendarLink).where(CalendarLink.id == link.id)
                .values(last_synced_at=datetime.now(UTC), last_error=None)
            )

    async def _note_error(self, link_id: UUID, message: str) -> None:
        async with self.db.session() as s, s.begin():
            await s.execute(update(CalendarLink).where(CalendarLink.id == link_id).values(last_error=message[:500]))

    async def _sync_events(self, link: CalendarLink, account: CalendarAccount, business: Business, *,
                           full: bool) -> None:
        token = None if full else link.sync_token
        if token is None:
            full = True
        changed: list[dict[str, Any]] = []
        page: str | None = None
        next_sync: str | None = None
        while True:
            params: dict[str, Any] = {"calendarId": link.google_id, "singleEvents": True, "maxResults": 250}
            if token:
                params["syncToken"] = token
            if page:
                params["pageToken"] = page
            try:
                result = await self.call(account, self.google.api.events.list(**params))
            except SyncTokenGone:
                log.info("calendar %s: sync token gone, full resync", link.id)
                token, page, changed, full = None, None, [], True
                continue
            changed.extend(result.get("items") or [])
            page = result.get("nextPageToken")
            if not page:
                next_sync = result.get("nextSyncToken")
                break
        await self._apply_events(link, business, changed, full=full, next_sync=next_sync)

    async def _apply_events(self, link: CalendarLink, business: Business, events: list[dict[str, Any]], *,
                            full: bool, next_sync: str | None) -> None:
        cutoff = datetime.now(UTC) - KEEP_PAST
        async with self.db.session() as s, s.begin():
            existing = {
                b.external_id: b
                for b in await s.scalars(
                    select(BusyBlock).where(BusyBlock.link_id == link.id, BusyBlock.source == BusySource.EVENT.value)
                )
            }
            seen: set[str] = set()
            touched: list[BusyBlock] = []
            for event in events:
                event_id = str(event.get("id") or "")
                if not event_id:
                    continue
                seen.add(event_id)
                private = (event.get("extendedProperties") or {}).get("private") or {}
                if private.get(BLOCK_PROPERTY):
                    continue  # an owner's block written by us: the block itself already holds the time
                ours = private.get(APPOINTMENT_PROPERTY)
                if not ours and event.get("status") == "cancelled" and event_id not in existing:
                    # Google strips a deleted event to its id and status: find our own by its event id.
                    ours = await s.scalar(select(Appointment.id).where(
                        Appointment.business_id == business.id, Appointment.google_link_id == link.id,
                        Appointment.google_event_id == event_id,
                    ))
                    ours = str(ours) if ours else None
                if ours:
                    await self._check_own_event(s, business, link, ours, event)
                    continue
                start = _parse_time(event.get("start"), business.timezone)
                end = _parse_time(event.get("end"), business.timezone)
                block = existing.get(event_id)
                if not event_blocks_time(event) or start is None or end is None or end <= start or end < cutoff:
                    if block is not None:
                        await self._drop_block(s, block)
                    continue
                if block is None:
                    block = BusyBlock(business_id=business.id, link_id=link.id, resource_id=link.resource_id,
                                      source=BusySource.EVENT.value, external_id=event_id, starts_at=start,
                                      ends_at=end, note="Busy in Google Calendar")
                    s.add(block)
                elif (block.starts_at, block.ends_at, block.resource_id) != (start, end, link.resource_id):
                    block.starts_at, block.ends_at, block.resource_id = start, end, link.resource_id
                else:
                    continue
                touched.append(block)
            if full:
                # A full listing names every live event: blocks it no longer names are gone.
                for event_id, block in existing.items():
                    if event_id not in seen:
                        await self._drop_block(s, block)
            await s.flush()
            for block in touched:
                await self._record_conflicts(s, block)
            await s.execute(update(CalendarLink).where(CalendarLink.id == link.id).values(sync_token=next_sync))

    async def _drop_block(self, s: AsyncSession, block: BusyBlock) -> None:
        await s.execute(
            update(CalendarConflict)
            .where(CalendarConflict.block_id == block.id, CalendarConflict.resolved_at.is_(None))
            .values(resolved_at=datetime.now(UTC))
        )
        await s.delete(block)

    async def _record_conflicts(self, s: AsyncSession, block: BusyBlock) -> None:
        query = select(Appointment).where(
            Appointment.business_id == block.business_id,
            Appointment.status == AppointmentStatus.BOOKED.value,
            Appointment.starts_at < block.ends_at,
            Appointment.ends_at > block.starts_at,
        )
        if block.resource_id is not None:
            query = query.where(Appointment.lane == str(block.resource_id))
        for appointment in (await s.scalars(query)).unique():
            known = await s.scalar(
                select(CalendarConflict.id).where(
                    CalendarConflict.appointment_id == appointment.id, CalendarConflict.block_id == block.id,
                    CalendarConflict.resolved_at.is_(None),
                )
            )
            if known is None:
                s.add(CalendarConflict(business_id=block.business_id, appointment_id=appointment.id,
                                       block_id=block.id, reason="a busy event in Google Calendar overlaps it"))

    async def _check_own_event(self, s: AsyncSession, business: Business, link: CalendarLink, appointment_id: str,
                               event: Mapping[str, Any]) -> None:
        try:
            appointment = await s.get(Appointment, UUID(appointment_id))
        except ValueError:
            return
        if appointment is None or appointment.business_id != business.id:
            return
        if appointment.status != AppointmentStatus.BOOKED.value or appointment.google_link_id != link.id:
            return  # our own delete coming back, or the event of a calendar it has moved away from
        pending_push = await s.scalar(
            select(Job.id).where(
                Job.kind == CALENDAR_PUSH_JOB, Job.status.in_((JobStatus.PENDING.value, JobStatus.RUNNING.value)),
                Job.payload["appointment_id"].as_string() == str(appointment.id),
            ).limit(1)
        )
        if pending_push is not None:
            return  # our own change is still on its way to Google: the event is behind, not moved
        if event.get("status") == "cancelled":
            reason = "its event was deleted in Google Calendar"
        else:
            start = _parse_time(event.get("start"), business.timezone)
            end = _parse_time(event.get("end"), business.timezone)
            if (start, end) == (appointment.starts_at, appointment.ends_at):
                return
            reason = "its event was moved in Google Calendar"
        known = await s.scalar(
            select(CalendarConflict.id).where(
                CalendarConflict.appointment_id == appointment.id, CalendarConflict.reason == reason,
                CalendarConflict.resolved_at.is_(None),
            )
        )
        if known is None:
            s.add(CalendarConflict(business_id=business.id, appointment_id=appointment.id, reason=reason))

    async def _sync_freebusy(self, link: CalendarLink, account: CalendarAccount, business: Business) -> None:
        now = datetime.now(UTC)
        body = {
            "timeMin": (now - KEEP_PAST).isoformat().replace("+00:00", "Z"),
            "timeMax": (now + timedelta(days=FREEBUSY_DAYS)).isoformat().replace("+00:00", "Z"),
            "timeZone": "UTC",
            "items": [{"id": link.google_id}],
        }
        result = await self.call(account, self.google.api.freebusy.query(json=body))
        calendar = (result.get("calendars") or {}).get(link.google_id) or {}
        if calendar.get("errors"):
            raise GoogleRefused(f"freeBusy: {calendar['errors'][0].get('reason', 'error')}")
        ranges = []
        for item in calendar.get("busy") or []:
            start, end = _parse_time({"dateTime": item["start"]}, "UTC"), _parse_time({"dateTime": item["end"]}, "UTC")
            if start and end and end > start:
                ranges.append((start, end))
        async with self.db.session() as s, s.begin():
            existing = {
                b.external_id: b
                for b in await s.scalars(
                    select(BusyBlock).where(BusyBlock.link_id == link.id,
                                            BusyBlock.source == BusySource.FREEBUSY.value)
                )
            }
            wanted = {f"{a.isoformat()}/{b.isoformat()}": (a, b) for a, b in ranges}
            for key, block in existing.items():
                if key not in wanted:
                    await self._drop_block(s, block)
            new = [
                BusyBlock(business_id=business.id, link_id=link.id, resource_id=link.resource_id,
                          source=BusySource.FREEBUSY.value, external_id=key, starts_at=a, ends_at=b,
                          note="Busy in Google Calendar")
                for key, (a, b) in wanted.items() if key not in existing
            ]
            s.add_all(new)
            await s.flush()
            for block in new:
                await self._record_conflicts(s, block)

    # -- service -> Google -----------------------------------------------------------------------------
    async def _target_link(self, s: AsyncSession, appointment: Appointment) -> CalendarLink | None:
        rows = list(
            await s.scalars(
                select(CalendarLink).where(
                    CalendarLink.business_id == appointment.business_id,
                    CalendarLink.write_bookings.is_(True),
                    CalendarLink.access_role.in_(("owner", "writer")),
                    or_(CalendarLink.resource_id.is_(None), CalendarLink.resource_id == appointment.resource_id),
                ).order_by(CalendarLink.created_at)
            )
        )
        # The resource's own calendar first, then the business's.
        rows.sort(key=lambda link: link.resource_id is None)
        return rows[0] if rows else None

    def _event_body(self, appointment: Appointment, customer: Customer, business: Business) -> dict[str, Any]:
        tz = business.timezone
        lines = [f"Customer: {customer.name or 'unknown'}", f"Phone: {customer.phone}",
                 f"Service: {appointment.service}"]
        if appointment.notes:
            lines.append(f"Notes: {appointment.notes}")
        if appointment.call_id:
            lines.append(f"Call: {self.settings.public_base_url}/calls/{appointment.call_id}")
        else:
            lines.append("Booked in the dashboard")
        lines.append(f"Appointment: {self.settings.public_base_url}/calendar/appointments/{appointment.id}")
        return {
            "summary": f"{appointment.service} – {customer.name or customer.phone}",
            "description": "\n".join(lines),
            "start": {"dateTime": appointment.starts_at.astimezone(zone(tz)).isoformat(), "timeZone": tz},
            "end": {"dateTime": appointment.ends_at.astimezone(zone(tz)).isoformat(), "timeZone": tz},
            "extendedProperties": {"private": {APPOINTMENT_PROPERTY: str(appointment.id)}},
            "source": {"title": "Booking", "url": f"{self.settings.public_base_url}/calendar/appointments/"
                                                    f"{appointment.id}"},
        }

    async def push_appointment(self, appointment_id: UUID) -> None:
        async with self.db.session() as s:
            appointment = await s.get(Appointment, appointment_id)
            if appointment is None:
                return
            business = await s.get(Business, appointment.business_id)
            customer = await s.get(Customer, appointment.customer_id)
            target = await self._target_link(s, appointment)
            current = await s.get(CalendarLink, appointment.google_link_id) if appointment.google_link_id else None
            accounts = {
                a.id: a for a in await s.scalars(
                    select(CalendarAccount).where(CalendarAccount.business_id == appointment.business_id)
                )
            }
        assert business is not None and customer is not None
        live = appointment.status == AppointmentStatus.BOOKED.value
        # The event lives in another calendar than it should (moved to another resource, or cancelled).
        if current is not None and appointment.google_event_id and (not live or target is None
                                                                     or target.id != current.id):
            try:
                await self.call(accounts[current.account_id], self.google.api.events.delete(
                    calendarId=current.google_id, eventId=appointment.google_event_id, sendUpdates="none"))
            except (GoogleNotFound, SyncTokenGone):
                pass  # 404/410: already gone, which is what we wanted
            current = None
            await self._set_event(appointment.id, None, None)
        if not live or target is None:
            return
        body = self._event_body(appointment, customer, business)
        account = accounts[target.account_id]
        if current is not None and appointment.google_event_id:
            try:
                await self.call(account, self.google.api.events.patch(
                    calendarId=target.google_id, eventId=appointment.google_event_id, json=body, sendUpdates="none"))
                return
            except GoogleNotFound:
                async with self.db.session() as s, s.begin():
                    s.add(CalendarConflict(business_id=business.id, appointment_id=appointment.id,
                                           reason="its event was deleted in Google Calendar"))
                return
        event_id = event_id_for(appointment.id)
        try:
            await self.call(account, self.google.api.events.insert(
                calendarId=target.google_id, json={"id": event_id, **body}, sendUpdates="none"))
        except GoogleRefused as exc:
            if not str(exc).startswith("409"):
                raise
            # An earlier attempt's insert reached Google but its answer didn't reach us: same id, so patch it.
            await self.call(account, self.google.api.events.patch(
                calendarId=target.google_id, eventId=event_id, json=body, sendUpdates="none"))
        await self._set_event(appointment.id, target.id, event_id)

    # -- the owner's blocked time -> Google ---------------------------------------------------------------
    async def _block_target(self, s: AsyncSession, business_id: UUID, resource_id: UUID | None) -> CalendarLink | None:
        """Where a block goes: the resource's own calendar, else the business's; a block for everyone goes to
        the business's calendar, else to the first calendar that takes bookings."""
        rows = list(await s.scalars(
            select(CalendarLink).where(
                CalendarLink.business_id == business_id, CalendarLink.write_bookings.is_(True),
                CalendarLink.access_role.in_(("owner", "writer")),
            ).order_by(CalendarLink.created_at)
        ))
        for wanted in ([resource_id, None] if resource_id else [None]):
            for link in rows:
                if link.resource_id == wanted:
                    return link
        return rows[0] if rows and resource_id is None else None

    def _block_body(self, block: BusyBlock, business: Business) -> dict[str, Any]:
        tz = business.timezone
        day = block.starts_at.astimezone(zone(tz)).date().isoformat()
        url = f"{self.settings.public_base_url}/calendar?view=day&date={day}"
        return {
            "summary": block.note if block.note.lower().startswith("blocked") else f"Blocked: {block.note}",
            "description": f"Time blocked in the receptionist's dashboard: no bookings are taken.\n{url}",
            "start": {"dateTime": block.starts_at.astimezone(zone(tz)).isoformat(), "timeZone": tz},
            "end": {"dateTime": block.ends_at.astimezone(zone(tz)).isoformat(), "timeZone": tz},
            "transparency": "opaque",
            "extendedProperties": {"private": {BLOCK_PROPERTY: str(block.id)}},
            "source": {"title": "Blocked time", "url": url},
        }

    async def push_block(self, block_id: UUID, payload: Mapping[str, Any]) -> None:
        """Make Google match an owner's block: insert its event (a client-chosen id, so a retried insert can't
        make a second one), or delete it once the block is removed. A block removed while its insert was on
        the way is caught either way: the delete finds the event, or the insert finds the row gone and deletes
        what it just made."""
        if payload.get("removed"):
            await self._delete_block_event(block_id, payload)
            return
        async with self.db.session() as s:
            block = await s.get(BusyBlock, block_id)
            if block is None:
                return  # removed before it was written: its removal job has nothing to find either
            business = await s.get(Business, block.business_id)
            target = await self._block_target(s, block.business_id, block.resource_id)
            account = await s.get(CalendarAccount, target.account_id) if target else None
        if target is None or account is None or business is None:
            return  # no calendar takes bookings any more
        event_id = event_id_for(block.id)
        body = self._block_body(block, business)
        try:
            await self.call(account, self.google.api.events.insert(
                calendarId=target.google_id, json={"id": event_id, **body}, sendUpdates="none"))
        except GoogleRefused as exc:
            if not str(exc).startswith("409"):
                raise
            await self.call(account, self.google.api.events.patch(
                calendarId=target.google_id, eventId=event_id, json=body, sendUpdates="none"))
        async with self.db.session() as s, s.begin():
            result = await s.execute(update(BusyBlock).where(BusyBlock.id == block.id)
                                     .values(google_link_id=target.id, google_event_id=event_id))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self._delete_event(account, target.google_id, event_id)

    async def _delete_block_event(self, block_id: UUID, payload: Mapping[str, Any]) -> None:
        async with self.db.session() as s:
            link = await s.get(CalendarLink, UUID(str(payload["link_id"]))) if payload.get("link_id") else None
            if link is None and payload.get("business_id"):  # never confirmed written: where it would have gone
                resource = payload.get("resource_id")
                link = await self._block_target(s, UUID(str(payload["business_id"])),
                                                UUID(str(resource)) if resource else None)
            account = await s.get(CalendarAccount, link.account_id) if link else None
        if link is None or account is None:
            return
        await self._delete_event(account, link.google_id, str(payload.get("event_id") or event_id_for(block_id)))

    async def _delete_event(self, account: CalendarAccount, calendar_id: str, event_id: str) -> None:
        try:
            await self.call(account, self.google.api.events.delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates="none"))
        except (GoogleNotFound, SyncTokenGone):
            pass  # 404/410: already gone, which is what we wanted

    async def _set_event(self, appointment_id: UUID, link_id: UUID | None, event_id: str | None) -> None:
        async with self.db.session() as s, s.begin():
            await s.execute(update(Appointment).where(Appointment.id == appointment_id)
                            .values(google_link_id=link_id, google_event_id=event_id))

    # -- push channels ---------------------------------------------------------------------------------
    async def watch(self, link_id: UUID) -> None:
        async with self.db.session() as s:
            pair = await self._link_and_account(s, link_id)
        if pair is None or pair[0].access_role == "freeBusyReader":
            return  # freeBusy has no push: the periodic pass reads it
        link, account = pair
        channel_id, channel_token = str(uuid4()), secrets.token_urlsafe(32)
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": f"{self.settings.public_base_url}/google/calendar/notify",
            "token": channel_token,
            "params": {"ttl": str(self.settings.calendar_watch_ttl_seconds)},
        }
        try:
            result = await self.call(account, self.google.api.events.watch(calendarId=link.google_id, json=body))
        except GoogleRefused as exc:
            await self._note_error(link.id, f"push notifications refused ({exc}); syncing periodically")
            return
        expiration = result.get("expiration")
        expires = (datetime.fromtimestamp(int(expiration) / 1000, tz=UTC) if expiration
                   else datetime.now(UTC) + timedelta(seconds=self.settings.calendar_watch_ttl_seconds))
        old = (link.channel_id, link.channel_resource_id)
        async with self.db.session() as s, s.begin():
            await s.execute(
                update(CalendarLink).where(CalendarLink.id == link.id).values(
                    channel_id=channel_id, channel_token=channel_token,
                    channel_resource_id=str(result.get("resourceId") or ""), channel_expires_at=expires,
                )
            )
        if old[0]:
            await self.stop_channel(account, old[0], old[1])

    async def stop_channel(self, account: CalendarAccount, channel_id: str, resource_id: str | None) -> None:
        try:
            await self.call(account, self.google.api.channels.stop(
                json={"id": channel_id, "resourceId": resource_id or ""}))
        except Exception as exc:  # it expires on its own; a stale one is ignored when it calls
            log.info("channel stop failed: %s", type(exc).__name__)

    async def renew_channels(self) -> None:
        soon = datetime.now(UTC) + RENEW_BEFORE
        async with self.db.session() as s:
            links = list(await s.scalars(select(CalendarLink.id).where(
                CalendarLink.access_role != "freeBusyReader",
                or_(CalendarLink.channel_expires_at.is_(None), CalendarLink.channel_expires_at < soon),
            )))
        for link_id in links:
            try:
                await self.watch(link_id)
            except Exception as exc:
                log.warning("watch renewal failed for a calendar: %s", type(exc).__name__)

    async def notification(self, headers: Mapping[str, str]) -> int:
        """Handle a push notification; the HTTP status to answer."""
        channel_id = headers.get("x-goog-channel-id", "")
        if not channel_id:
            return 400
        async with self.db.session() as s:
            link = await s.scalar(select(CalendarLink).where(CalendarLink.channel_id == channel_id))
        if link is None:
            return 200  # an old channel still calling: nothing to do, and no reason for Google to retry
        token = headers.get("x-goog-channel-token", "")
        if not link.channel_token or not hmac.compare_digest(token.encode(), link.channel_token.encode()):
            return 403
        if link.channel_resource_id and headers.get("x-goog-resource-id") not in (None, link.channel_resource_id):
            return 403
        if headers.get("x-goog-resource-state") == "sync":
            return 200
        await self.enqueue_sync(link.id)
        return 200

    async def periodic(self) -> None:
        async with self.db.session() as s:
            links = list(await s.scalars(select(CalendarLink.id)))
        for link_id in links:
            await self.enqueue_sync(link_id)
        await self.renew_channels()

    async def disconnect_link(self, link: CalendarLink) -> None:
        async with self.db.session() as s:
            account = await s.get(CalendarAccount, link.account_id)
        if account is not None and link.channel_id:
            await self.stop_channel(account, link.channel_id, link.channel_resource_id)
        async with self.db.session() as s, s.begin():
            await s.execute(delete(BusyBlock).where(BusyBlock.link_id == link.id))
            await s.execute(delete(CalendarLink).where(CalendarLink.id == link.id))
