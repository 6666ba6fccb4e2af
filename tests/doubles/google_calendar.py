"""A Google Calendar double for tests: Google's OAuth 2.0 endpoints and Calendar API v3, on 127.0.0.1.

What it speaks, as Google documents it:
- OAuth: `GET /o/oauth2/v2/auth` (client_id, redirect_uri, response_type=code, scope, state,
  code_challenge + S256; consents at once and redirects with code, state and the granted scope, which with
  include_granted_scopes=true adds earlier grants), `POST /token` (authorization_code with the PKCE verifier
  checked, refresh_token; client authenticated by form fields or HTTP Basic; errors as RFC 6749 JSON),
  `POST /revoke` (token=...).
- Calendar v3 under `/calendar/v3/`: `users/me/calendarList`, `freeBusy`, `calendars/{id}/events` list (paged by
  nextPageToken, the last page carrying nextSyncToken; `syncToken` returns only changes, cancelled ones with
  status "cancelled"; an invalidated token is 410 fullSyncRequired) / insert (client ids: base32hex, 5-1024
  chars, 409 duplicate) / get / patch / delete, `calendars/{id}/events/watch` and `channels/stop`. Every call
  needs a live Bearer access token (401 otherwise, as Google answers).
- Push: after any change to a calendar, each live channel on it gets a POST with no body and the
  X-Goog-Channel-ID / -Token / -Expiration, X-Goog-Resource-ID / -URI / -State (`sync` once at creation,
  then `exists`) and X-Goog-Message-Number headers.

Its one concession: Google refuses a non-https channel address; the double also takes http://127.0.0.1.
`down = True` makes every endpoint answer 503 backendError, as Google does when it is failing.
The server runs in its own thread and event loop; tests drive it through the methods below.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from tests.support.threaded_site import OnThreadedSite, ThreadedSite

SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"
SCOPE_LIST = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _error(status: int, reason: str, message: str) -> web.Response:
    body = {"error": {"errors": [{"domain": "global", "reason": reason, "message": message}], "code": status,
                      "message": message}}
    return web.json_response(body, status=status)


@dataclass
class Calendar:
    id: str
    summary: str
    access_role: str = "owner"
    primary: bool = False
    time_zone: str = "UTC"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0
    changed_at: dict[str, int] = field(default_factory=dict)
    token_floor: int = 0  # sync tokens issued before this sequence are invalid (410)


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expiration_ms: int
    message_number: int = 0
    stopped: bool = False


class GoogleCalendarDouble(OnThreadedSite):
    def __init__(self, *, client_id: str = "calendar-test-client.apps.googleusercontent.com",
                 client_secret: str = "calendar-test-secret", account: str = "owner@example.com",
                 page_size: int = 250) -> None:
        self.client_id, self.client_secret, self.account = client_id, client_secret, account
        self.page_size = page_size
        self.down = False
        self.calendars: dict[str, Calendar] = {account: Calendar(account, account, primary=True)}
        self.channels: dict[str, Channel] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, set[str]] = {}  # refresh token -> scopes
        self.access_tokens: dict[str, tuple[str, float]] = {}  # access token -> (refresh token, expiry)
        self.granted: set[str] = set()
        self.revoked: list[str] = []
        self.notifications: list[dict[str, str]] = []
        self.notification_statuses: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._site = ThreadedSite("google-calendar-double", self._app)

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The service's configuration for this double (and for nothing else)."""
        return {
            "GOOGLE_CLIENT_ID": self.client_id,
            "GOOGLE_CLIENT_SECRET": self.client_secret,
            "GOOGLE_API_BASE_URL": self.base_url,
            "GOOGLE_OAUTH_AUTHORIZE_URL": self.base_url + "/o/oauth2/v2/auth",
            "GOOGLE_OAUTH_TOKEN_URL": self.base_url + "/token",
            "GOOGLE_OAUTH_REVOKE_URL": self.base_url + "/revoke",
        }

    def _app(self) -> web.Application:
        app = web.Application()
        self._routes(app)
        return app

    # -- test-side controls ----------------------------------------------------------------------------
    def add_calendar(self, calendar_id: str, summary: str, access_role: str = "owner") -> Calendar:
        with self._lock:
            calendar = Calendar(calendar_id, summary, access_role)
            self.calendars[calendar_id] = calendar
            return calendar

    def add_event(self, calendar_id: str, start: datetime, end: datetime, *, summary: str = "Private",
                  transparency: str | None = None, visibility: str = "private") -> dict[str, Any]:
        """An event created in Google by someone else (the owner's own appointment, a walk-in)."""
        body: dict[str, Any] = {"summary": summary, "visibility": visibility,
                                "start": {"dateTime": _rfc3339(start)}, "end": {"dateTime": _rfc3339(end)}}
        if transparency:
            body["transparency"] = transparency
        with self._lock:
            event = self._insert(self.calendars[calendar_id], body)
        self._notify(calendar_id)
        return event

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        with self._lock:
            self._cancel(self.calendars[calendar_id], event_id)
        self._notify(calendar_id)

    def move_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime) -> None:
        with self._lock:
            calendar = self.calendars[calendar_id]
            event = calendar.events[event_id]
            event["start"], event["end"] = {"dateTime": _rfc3339(start)}, {"dateTime": _rfc3339(end)}
            self._touch(calendar, event)
        self._notify(calendar_id)

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        with self._lock:
            calendar = self.calendars[calendar_id]
            calendar.token_floor = calendar.seq + 1

    def live_events(self, calendar_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.calendars[calendar_id].events.values() if e["status"] != "cancelled"]

    def live_channels(self, calendar_id: str | None = None) -> list[Channel]:
        now = time.time() * 1000
        return [c for c in self.channels.values() if not c.stopped and c.expiration_ms > now
                and (calendar_id is None or c.calendar_id == calendar_id)]

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    # -- internals -------------------------------------------------------------------------------------
    def _touch(self, calendar: Calendar, event: dict[str, Any]) -> None:
        calendar.seq += 1
        calendar.changed_at[event["id"]] = calendar.seq
        event["updated"] = _rfc3339(datetime.now(UTC))
        event["sequence"] = int(event.get("sequence", -1)) + 1
        event["etag"] = f'"{calendar.seq}{secrets.token_hex(4)}"'

    def _insert(self, calendar: Calendar, body: dict[str, Any]) -> dict[str, Any]:
        event_id = body.get("id") or uuid.uuid4().hex
        now = _rfc3339(datetime.now(UTC))
        event = {
            "kind": "calendar#event", "id": event_id, "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now, "iCalUID": f"{event_id}@google.com",
            "creator": {"email": self.account}, "organizer": {"email": calendar.id, "self": True},
            **{k: v for k, v in body.items() if k != "id"},
        }
        calendar.events[event_id] = event
        self._touch(calendar, event)
        return event

    def _cancel(self, calendar: Calendar, event_id: str) -> None:
        event = calendar.events[event_id]
        calendar.events[event_id] = {"kind": "calendar#event", "id": event_id, "status": "cancelled",
                                     "etag": event.get("etag")}
        self._touch(calendar, calendar.events[event_id])

    def _notify(self, calendar_id: str, state: str = "exists", only: Channel | None = None) -> None:
        if self._loop is None:
            return
        channels = [only] if only else self.live_channels(calendar_id)
        for channel in channels:
            channel.message_number += 1
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": datetime.fromtimestamp(channel.expiration_ms / 1000, UTC)
                .strftime("%a, %d %b %Y %H:%M:%S GMT"),
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": f"{self.base_url}/calendar/v3/calendars/{calendar_id}/events?alt=json",
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(channel.message_number),
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            asyncio.run_coroutine_threadsafe(self._deliver(channel.address, headers), self._loop)

    async def _deliver(self, address: str, headers: dict[str, str]) -> None:
        self.notifications.append(headers)
        try:
            async with aiohttp.ClientSession() as session, session.post(address, headers=headers, data=b"") as r:
                self.notification_statuses.append(r.status)
        except aiohttp.ClientError:
            self.notification_statuses.append(0)

    def _authorised(self, request: web.Request) -> web.Response | None:
        if self.down:
            return _error(503, "backendError", "Backend Error")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        with self._lock:
            entry = self.access_tokens.get(token)
        if entry is None or entry[1] < time.time():
            return _error(401, "authError", "Invalid Credentials")
        self.requests.append((request.method, request.path))
        return None

    def _calendar(self, request: web.Request, *, write: bool = False) -> Calendar | web.Response:
        """The request's calendar; or Google's answer to a bad token, an unknown calendar, or (`write`) a
        calendar the account may only read, checked in that order."""
        if (denied := self._authorised(request)) is not None:
            return denied
        calendar_id = request.match_info["calendar"]
        if calendar_id == "primary":
            calendar_id = self.account
        calendar = self.calendars.get(calendar_id)
        if calendar is None:
            return _error(404, "notFound", "Not Found")
        if write and (denied := self._writable(calendar)) is not None:
            return denied
        return calendar

    # -- routes ----------------------------------------------------------------------------------------
    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/o/oauth2/v2/auth", self._authorize)
        r.add_post("/token", self._token)
        r.add_post("/revoke", self._revoke)
        r.add_get("/calendar/v3/users/me/calendarList", self._calendar_list)
        r.add_post("/calendar/v3/freeBusy", self._freebusy)
        r.add_get("/calendar/v3/calendars/{calendar}/events", self._events_list)
        r.add_post("/calendar/v3/calendars/{calendar}/events", self._events_insert)
        r.add_post("/calendar/v3/calendars/{calendar}/events/watch", self._events_watch)
        r.add_get("/calendar/v3/calendars/{calendar}/events/{event}", self._events_get)
        r.add_patch("/calendar/v3/calendars/{calendar}/events/{event}", self._events_patch)
        r.add_delete("/calendar/v3/calendars/{calendar}/events/{event}", self._events_delete)
        r.add_post("/calendar/v3/channels/stop", self._channels_stop)

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if self.down:
            return web.Response(status=503, text="Service unavailable")
        if q.get("client_id") != self.client_id:
            return web.Response(status=400, text="Error 401: invalid_client")
        redirect = q.get("redirect_uri", "")
        if not redirect or q.get("response_type") != "code":
            return web.Response(status=400, text="Error 400: invalid_request")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="Error 400: invalid_request (PKCE S256 required by this test)")
        scopes = set(q.get("scope", "").split())
        if q.get("include_granted_scopes") == "true":
            scopes |= self.granted
        self.granted = scopes
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": redirect, "scopes": scopes,
                            "offline": q.get("access_type") == "offline"}
        params = {"state": q.get("state", ""), "code": code, "scope": " ".join(sorted(scopes))}
        raise web.HTTPFound(redirect + ("&" if urlsplit(redirect).query else "?") + urlencode(params))

    def _client_ok(self, request: web.Request, form: Any) -> bool:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        return client_id == self.client_id and secret == self.client_secret

    async def _token(self, request: web.Request) -> web.Response:
        if self.down:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        form = await request.post()
        if not self._client_ok(request, form):
            return web.json_response({"error": "invalid_client", "error_description": "Unauthorized"}, status=401)
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                entry = self.codes.pop(str(form.get("code")), None)
                verifier = str(form.get("code_verifier") or "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                redirect_ok = entry is not None and entry["redirect_uri"] == form.get("redirect_uri")
                if entry is None or not redirect_ok or challenge != entry["challenge"]:
                    return web.json_response({"error": "invalid_grant", "error_description": "Bad Request"},
                                             status=400)
                refresh = "1//" + secrets.token_urlsafe(32)
                self.refresh_tokens[refresh] = entry["scopes"]
                body = self._access(refresh)
                if entry["offline"]:
                    body["refresh_token"] = refresh
                return web.json_response(body)
            if grant == "refresh_token":
                refresh = str(form.get("refresh_token"))
                if refresh not in self.refresh_tokens:
                    return web.json_response({"error": "invalid_grant",
                                              "error_description": "Token has been expired or revoked."}, status=400)
                return web.json_response(self._access(refresh))
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    def _access(self, refresh: str) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(32)
        self.access_tokens[token] = (refresh, time.time() + 3599)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                "scope": " ".join(sorted(self.refresh_tokens[refresh]))}

    async def _revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token") or request.query.get("token") or "")
        with self._lock:
            refresh = token if token in self.refresh_tokens else self.access_tokens.get(token, ("", 0))[0]
            if not refresh:
                return web.json_response({"error": "invalid_token", "error_description": "Bad Request"}, status=400)
            self.refresh_tokens.pop(refresh, None)
            for access, (parent, _) in list(self.access_tokens.items()):
                if parent == refresh:
                    del self.access_tokens[access]
            self.revoked.append(refresh)
        return web.Response(status=200)

    async def _calendar_list(self, request: web.Request) -> web.Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        order = ["freeBusyReader", "reader", "writer", "owner"]
        minimum = order.index(request.query.get("minAccessRole", "freeBusyReader"))
        items = [
            {"kind": "calendar#calendarListEntry", "id": c.id, "summary": c.summary, "timeZone": c.time_zone,
             "accessRole": c.access_role, **({"primary": True} if c.primary else {})}
            for c in self.calendars.values() if order.index(c.access_role) >= minimum
        ]
        return web.json_response({"kind": "calendar#calendarList", "etag": '"p32"', "items": items,
                                  "nextSyncToken": "list-" + secrets.token_hex(4)})

    async def _freebusy(self, request: web.Request) -> web.Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = await request.json()
        try:
            start, end = _parse(body["timeMin"]), _parse(body["timeMax"])
        except (KeyError, ValueError):
            return _error(400, "badRequest", "Bad Request")
        calendars: dict[str, Any] = {}
        for item in body.get("items") or []:
            calendar = self.calendars.get(item.get("id"))
            if calendar is None:
                calendars[item.get("id")] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            busy = []
            for event in calendar.events.values():
                if event["status"] == "cancelled" or event.get("transparency") == "transparent":
                    continue
                a, b = _parse(event["start"]["dateTime"]), _parse(event["end"]["dateTime"])
                if a < end and b > start:
                    busy.append((max(a, start), min(b, end)))
            busy.sort()
            merged: list[list[datetime]] = []
            for a, b in busy:
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            calendars[calendar.id] = {"busy": [{"start": _rfc3339(a), "end": _rfc3339(b)} for a, b in merged]}
        return web.json_response({"kind": "calendar#freeBusy", "timeMin": body["timeMin"],
                                  "timeMax": body["timeMax"], "calendars": calendars})

    def _readable(self, calendar: Calendar) -> web.Response | None:
        if calendar.access_role == "freeBusyReader":
            return _error(403, "forbidden", "Forbidden")
        return None

    def _writable(self, calendar: Calendar) -> web.Response | None:
        if calendar.access_role not in ("owner", "writer"):
            return _error(403, "requiredAccessLevel", "You need to have writer access to this calendar.")
        return None

    async def _events_list(self, request: web.Request) -> web.Response:
        calendar = self._calendar(request)
        if isinstance(calendar, web.Response):
            return calendar
        if (denied := self._readable(calendar)) is not None:
            return denied
        q = request.query
        sync_token, page_token = q.get("syncToken"), q.get("pageToken")
        if sync_token and any(k in q for k in ("timeMin", "timeMax", "q", "orderBy", "updatedMin", "iCalUID")):
            return _error(400, "invalid", "Invalid sync token request: timeMin/timeMax/q/orderBy not allowed.")
        with self._lock:
            if page_token:
                state = json.loads(base64.urlsafe_b64decode(page_token))
                since, at_seq, offset = state["since"], state["at"], state["offset"]
            else:
                since = None
                if sync_token:
                    try:
                        since = int(base64.urlsafe_b64decode(sync_token).decode().split(":")[1])
                    except (ValueError, IndexError):
                        return _error(400, "invalid", "Invalid sync token value.")
                    if since < calendar.token_floor:
                        return _error(410, "fullSyncRequired",
                                      "Sync token is no longer valid, a full sync is required.")
                at_seq, offset = calendar.seq, 0
            events = [
                e for eid, e in calendar.events.items()
                if calendar.changed_at.get(eid, 0) <= at_seq
                and ((since is not None and calendar.changed_at.get(eid, 0) > since)
                     or (since is None and (e["status"] != "cancelled" or q.get("showDeleted") == "true")))
            ]
            try:
                size = min(int(q.get("maxResults", self.page_size)), self.page_size, 2500)
            except ValueError:
                return _error(400, "invalid", "Invalid value for maxResults")
            chunk = events[offset:offset + size]
            body: dict[str, Any] = {"kind": "calendar#events", "summary": calendar.summary,
                                    "timeZone": calendar.time_zone, "updated": _rfc3339(datetime.now(UTC)),
                                    "accessRole": calendar.access_role, "items": chunk}
            if offset + size < len(events):
                body["nextPageToken"] = base64.urlsafe_b64encode(
                    json.dumps({"since": since, "at": at_seq, "offset": offset + size}).encode()).decode()
            else:
                body["nextSyncToken"] = base64.urlsafe_b64encode(f"{calendar.id}:{at_seq}".encode()).decode()
        return web.json_response(body)

    async def _events_insert(self, request: web.Request) -> web.Response:
        calendar = self._calendar(request, write=True)
        if isinstance(calendar, web.Response):
            return calendar
        body = await request.json()
        if "id" in body and not _EVENT_ID.match(str(body["id"])):
            return _error(400, "invalid", "Invalid resource id value.")
        if not (body.get("start") or {}).get("dateTime") or not (body.get("end") or {}).get("dateTime"):
            return _error(400, "required", "Missing time.")
        if _parse(body["end"]["dateTime"]) <= _parse(body["start"]["dateTime"]):
            return _error(400, "timeRangeEmpty", "The specified time range is empty.")
        with self._lock:
            if body.get("id") in calendar.events:
                return _error(409, "duplicate", "The requested identifier already exists.")
            event = self._insert(calendar, body)
        self._notify(calendar.id)
        return web.json_response(event)

    async def _events_get(self, request: web.Request) -> web.Response:
        calendar = self._calendar(request)
        if isinstance(calendar, web.Response):
            return calendar
        event = calendar.events.get(request.match_info["event"])
        if event is None:
            return _error(404, "notFound", "Not Found")
        return web.json_response(event)

    async def _events_patch(self, request: web.Request) -> web.Response:
        calendar = self._calendar(request, write=True)
        if isinstance(calendar, web.Response):
            return calendar
        body = await request.json()
        with self._lock:
            event = calendar.events.get(request.match_info["event"])
            if event is None:
                return _error(404, "notFound", "Not Found")
            if event["status"] == "cancelled" and body.get("status") != "confirmed":
                return _error(410, "deleted", "Resource has been deleted")
            for key, value in body.items():
                if key == "extendedProperties":
                    merged = event.setdefault("extendedProperties", {})
                    for scope_name, props in value.items():
                        merged.setdefault(scope_name, {}).update(props)
                elif key != "id":
                    event[key] = value
            self._touch(calendar, event)
        self._notify(calendar.id)
        return web.json_response(event)

    async def _events_delete(self, request: web.Request) -> web.Response:
        calendar = self._calendar(request, write=True)
        if isinstance(calendar, web.Response):
            return calendar
        with self._lock:
            event = calendar.events.get(request.match_info["event"])
            if event is None:
                return _error(404, "notFound", "Not Found")
            if event["status"] == "cancelled":
                return _error(410, "deleted", "Resource has been deleted")
            self._cancel(calendar, event["id"])
        self._notify(calendar.id)
        return web.Response(status=204)

    async def _events_watch(self, request: web.Request) -> web.Response:
        calendar = self._calendar(request)
        if isinstance(calendar, web.Response):
            return calendar
        if (denied := self._readable(calendar)) is not None:
            return denied
        body = await request.json()
        channel_id, address = str(body.get("id") or ""), str(body.get("address") or "")
        if not channel_id or len(channel_id) > 64 or not re.match(r"^[A-Za-z0-9\-_+/=]+$", channel_id):
            return _error(400, "invalid", "Invalid channel id.")
        if body.get("type") != "web_hook":
            return _error(400, "invalid", "Invalid channel type.")
        parts = urlsplit(address)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname == "127.0.0.1"):
            return _error(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address)
        if channel_id in self.channels:
            return _error(400, "channelIdNotUnique", "Channel id not unique.")
        ttl = int((body.get("params") or {}).get("ttl") or 604800)
        expiration = int((time.time() + min(ttl, 2592000)) * 1000)
        channel = Channel(channel_id, "res-" + secrets.token_hex(8), calendar.id, address, body.get("token"),
                          expiration)
        self.channels[channel_id] = channel
        self._notify(calendar.id, "sync", only=channel)
        return web.json_response({
            "kind": "api#channel", "id": channel_id, "resourceId": channel.resource_id,
            "resourceUri": f"{self.base_url}/calendar/v3/calendars/{calendar.id}/events?alt=json",
            **({"token": channel.token} if channel.token is not None else {}),
            "expiration": str(expiration),
        })

    async def _channels_stop(self, request: web.Request) -> web.Response:
        if (denied := self._authorised(request)) is not None:
            return denied
        body = await request.json()
        channel = self.channels.get(str(body.get("id")))
        if channel is None or channel.resource_id != body.get("resourceId"):
            return _error(404, "notFound", "Channel not found")
        channel.stopped = True
        return web.Response(status=204)
