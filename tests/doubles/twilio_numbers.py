"""The phone-number part of the Twilio REST double: one account's IncomingPhoneNumbers and the
AvailablePhoneNumbers search, as Twilio's 2010-04-01 API speaks them.

- `GET  /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json` with `PhoneNumber`, `FriendlyName`, `PageSize`,
  `Page`, `PageToken`: a page `{"incoming_phone_numbers": [...], "page", "page_size", "start", "end", "uri",
  "first_page_uri", "next_page_uri", "previous_page_uri"}`; `next_page_uri` carries a `PageToken` (PA…) as
  Twilio's does, and the SDK follows it.
- `GET|POST /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json`: fetch / update (`VoiceUrl`,
  `VoiceMethod`, `StatusCallback`, `StatusCallbackMethod`, `FriendlyName`...), the full resource back.
- `POST /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json` with `PhoneNumber` (or `AreaCode`): a purchase of
  an available number, 201 with the new resource.
- `GET /2010-04-01/Accounts/{AC}/AvailablePhoneNumbers/{Country}/Local.json` with `AreaCode`, `Contains`,
  `PageSize`: `{"available_phone_numbers": [...], ...paging}`.

Errors are Twilio's JSON (`code`, `message`, `more_info`, `status`): 20003 bad credentials (401), 20404 a number
not in this account (404), 21421 an invalid PhoneNumber, 21422 a number that is not available to buy, 21452 no
numbers in that area code, 21502 an invalid VoiceUrl (all 400). A number of another account is a 404 here, as
on Twilio. Every write is recorded in `updates` for tests to read.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

if TYPE_CHECKING:
    from tests.doubles.twilio_double import TwilioDouble

API = "/2010-04-01"
MAX_PAGE_SIZE = 1000
_UPDATABLE = {
    "FriendlyName": "friendly_name", "VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url", "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback", "StatusCallbackMethod": "status_callback_method",
    "SmsUrl": "sms_url", "SmsMethod": "sms_method",
}
_URL_FIELDS = {"VoiceUrl", "VoiceFallbackUrl", "StatusCallback", "SmsUrl"}


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                              "status": status}, status=status)


@dataclass
class IncomingNumber:
    sid: str
    phone_number: str
    friendly_name: str
    iso_country: str = "US"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    fields: dict[str, str] = field(default_factory=lambda: {
        "voice_url": "", "voice_method": "POST", "voice_fallback_url": "", "voice_fallback_method": "POST",
        "status_callback": "", "status_callback_method": "POST", "sms_url": "", "sms_method": "POST",
    })

    @property
    def voice_url(self) -> str:
        return self.fields["voice_url"]

    @property
    def status_callback(self) -> str:
        return self.fields["status_callback"]

    def resource(self, account_sid: str) -> dict[str, Any]:
        uri = f"{API}/Accounts/{account_sid}/IncomingPhoneNumbers/{self.sid}.json"
        return {
            "account_sid": account_sid, "address_requirements": "none", "address_sid": None,
            "api_version": "2010-04-01", "beta": False,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": _rfc2822(self.created), "date_updated": _rfc2822(self.updated),
            "emergency_status": "Inactive", "emergency_address_sid": None, "emergency_address_status": "unregistered",
            "friendly_name": self.friendly_name, "identity_sid": None, "origin": "twilio",
            "phone_number": self.phone_number, "sid": self.sid, "sms_application_sid": "",
            "sms_fallback_method": "POST", "sms_fallback_url": "", "sms_method": self.fields["sms_method"],
            "sms_url": self.fields["sms_url"], "status_callback": self.fields["status_callback"],
            "status_callback_method": self.fields["status_callback_method"], "trunk_sid": None, "uri": uri,
            "voice_receive_mode": "voice", "voice_application_sid": "", "voice_caller_id_lookup": False,
            "voice_fallback_method": self.fields["voice_fallback_method"],
            "voice_fallback_url": self.fields["voice_fallback_url"], "voice_method": self.fields["voice_method"],
            "voice_url": self.fields["voice_url"], "bundle_sid": None, "status": "in-use", "type": "local",
            "subresource_uris": {"assigned_add_ons": uri.replace(".json", "/AssignedAddOns.json")},
        }


@dataclass
class AvailableNumber:
    phone_number: str
    iso_country: str
    locality: str = ""
    region: str = ""
    postal_code: str = ""

    def resource(self) -> dict[str, Any]:
        return {
            "friendly_name": self.national(), "phone_number": self.phone_number, "lata": None,
            "locality": self.locality or None, "rate_center": self.locality.upper() or None, "latitude": None,
            "longitude": None, "region": self.region or None, "postal_code": self.postal_code or None,
            "iso_country": self.iso_country, "address_requirements": "none", "beta": False,
            "capabilities": {"voice": True, "SMS": True, "MMS": True, "fax": False},
        }

    def national(self) -> str:
        digits = self.phone_number
        if digits.startswith("+1") and len(digits) == 12:
            return f"({digits[2:5]}) {digits[5:8]}-{digits[8:]}"
        return digits

    def area_code(self) -> str:
        return self.phone_number[2:5] if self.phone_number.startswith("+1") else ""


@dataclass(frozen=True)
class NumberUpdate:
    at: float
    method: str
    sid: str | None
    form: dict[str, str]
    status_code: int


class NumbersApi:
    """Phone numbers of the double's account, plus numbers of some *other* account (to prove they're refused)."""

    def __init__(self, double: TwilioDouble) -> None:
        self.double = double
        self.owned: dict[str, IncomingNumber] = {}
        self.foreign: dict[str, IncomingNumber] = {}  # another account's numbers: 404 through this account
        self.available: dict[str, list[AvailableNumber]] = {}
        self.updates: list[NumberUpdate] = []
        #: status codes the next number writes answer with (e.g. [500]); consumed in order
        self.failures: list[int] = []
        self._tokens: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- set-up by tests ----------------------------------------------------------------------------------
    def own(self, phone_number: str, friendly_name: str | None = None, iso_country: str = "US") -> IncomingNumber:
        number = IncomingNumber("PN" + secrets.token_hex(16), phone_number, friendly_name or phone_number, iso_country)
        with self._lock:
            self.owned[number.sid] = number
        return number

    def own_elsewhere(self, phone_number: str) -> IncomingNumber:
        number = IncomingNumber("PN" + secrets.token_hex(16), phone_number, phone_number)
        self.foreign[number.sid] = number
        return number

    def offer(self, phone_number: str, iso_country: str = "US", locality: str = "") -> AvailableNumber:
        number = AvailableNumber(phone_number, iso_country, locality=locality)
        self.available.setdefault(iso_country, []).append(number)
        return number

    def reset(self) -> None:
        with self._lock:
            self.owned.clear()
            self.foreign.clear()
            self.available.clear()
            self.updates.clear()
            self.failures.clear()
            self._tokens.clear()

    def by_number(self, phone_number: str) -> IncomingNumber | None:
        return next((n for n in self.owned.values() if n.phone_number == phone_number), None)

    # -- routes -------------------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        base = API + "/Accounts/{account}"
        app.router.add_get(base + "/IncomingPhoneNumbers.json", self._list)
        app.router.add_post(base + "/IncomingPhoneNumbers.json", self._create)
        app.router.add_get(base + "/IncomingPhoneNumbers/{sid}.json", self._fetch)
        app.router.add_post(base + "/IncomingPhoneNumbers/{sid}.json", self._update)
        app.router.add_get(base + "/AvailablePhoneNumbers/{country}/Local.json", self._available)

    def _denied(self, request: web.Request) -> web.Response | None:
        if not self.double._authorised(request) or request.match_info["account"] != self.double.account_sid:
            return _error(401, 20003, "Authenticate")
        return None

    def _record(self, method: str, sid: str | None, form: dict[str, str], status: int) -> None:
        with self._lock:
            self.updates.append(NumberUpdate(time.monotonic(), method, sid, form, status))

    @staticmethod
    def _page_size(request: web.Request) -> int:
        try:
            return max(1, min(MAX_PAGE_SIZE, int(request.query.get("PageSize", "50"))))
        except ValueError:
            return 50

    def _paged(self, request: web.Request, key: str, rows: list[dict[str, Any]]) -> web.Response:
        """One page as Twilio's 2010 API pages: Page + PageToken in next_page_uri, relative URIs."""
        size = self._page_size(request)
        page = 0
        token = request.query.get("PageToken")
        if token is not None:
            if token not in self._tokens:
                return _error(400, 20001, "Invalid PageToken")
            page = self._tokens[token]
        start = page * size
        chunk = rows[start : start + size]
        filters = {k: v for k, v in request.query.items() if k not in {"PageSize", "Page", "PageToken"}}

        def uri(number: int, page_token: str | None = None) -> str:
            query = {**filters, "PageSize": str(size), "Page": str(number)}
            if page_token:
                query["PageToken"] = page_token
            return f"{request.path}?{urlencode(query)}"

        next_uri = None
        if start + size < len(rows):
            next_token = "PA" + secrets.token_hex(16)
            self._tokens[next_token] = page + 1
            next_uri = uri(page + 1, next_token)
        body = {
            key: chunk, "end": start + max(0, len(chunk) - 1), "first_page_uri": uri(0), "next_page_uri": next_uri,
            "page": page, "page_size": size, "previous_page_uri": uri(page - 1) if page else None, "start": start,
            "uri": uri(page, token),
        }
        return web.json_response(body)

    async def _list(self, request: web.Request) -> web.Response:
        if denied := self._denied(request):
            return denied
        wanted_number, wanted_name = request.query.get("PhoneNumber"), request.query.get("FriendlyName")
        rows = [n.resource(self.double.account_sid) for n in sorted(self.owned.values(), key=lambda n: n.created)
                if (wanted_number is None or wanted_number in n.phone_number)
                and (wanted_name is None or n.friendly_name == wanted_name)]
        return self._paged(request, "incoming_phone_numbers", rows)

    async def _fetch(self, request: web.Request) -> web.Response:
        if denied := self._denied(request):
            return denied
        number = self.owned.get(request.match_info["sid"])
        if number is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(number.resource(self.double.account_sid))

    def _invalid_url(self, form: dict[str, str]) -> str | None:
        for name in _URL_FIELDS & form.keys():
            value = form[name]
            if value and urlsplit(value).scheme not in {"http", "https"}:
                return name
        return None

    async def _update(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        sid = request.match_info["sid"]
        if denied := self._denied(request):
            self._record("POST", sid, form, 401)
            return denied
        if self.failures:
            status = self.failures.pop(0)
            self._record("POST", sid, form, status)
            return _error(status, 20500, "An internal server error has occurred")
        number = self.owned.get(sid)
        if number is None:
            self._record("POST", sid, form, 404)
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if bad := self._invalid_url(form):
            self._record("POST", sid, form, 400)
            return _error(400, 21502, f"{bad} is not valid")
        for name, attribute in _UPDATABLE.items():
            if name in form:
                if attribute == "friendly_name":
                    number.friendly_name = form[name]
                else:
                    number.fields[attribute] = form[name]
        number.updated = time.time()
        self._record("POST", sid, form, 200)
        return web.json_response(number.resource(self.double.account_sid))

    async def _create(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if denied := self._denied(request):
            self._record("CREATE", None, form, 401)
            return denied
        wanted, area = form.get("PhoneNumber"), form.get("AreaCode")
        if not wanted and not area:
            self._record("CREATE", None, form, 400)
            return _error(400, 21421, "PhoneNumber or AreaCode is required")
        pool = [n for offered in self.available.values() for n in offered]
        if wanted:
            if not wanted.startswith("+") or not wanted[1:].isdigit():
                self._record("CREATE", None, form, 400)
                return _error(400, 21421, f"PhoneNumber {wanted} is invalid")
            match = next((n for n in pool if n.phone_number == wanted), None)
            if match is None:
                self._record("CREATE", None, form, 400)
                return _error(400, 21422, f"PhoneNumber {wanted} is not available")
        else:
            match = next((n for n in pool if n.area_code() == area), None)
            if match is None:
                self._record("CREATE", None, form, 400)
                return _error(400, 21452, f"No phone numbers found in area code {area}")
        if bad := self._invalid_url(form):
            self._record("CREATE", None, form, 400)
            return _error(400, 21502, f"{bad} is not valid")
        self.available[match.iso_country].remove(match)
        number = self.own(match.phone_number, form.get("FriendlyName") or match.national(), match.iso_country)
        for name, attribute in _UPDATABLE.items():
            if name in form and attribute != "friendly_name":
                number.fields[attribute] = form[name]
        self._record("CREATE", number.sid, form, 201)
        return web.json_response(number.resource(self.double.account_sid), status=201)

    async def _available(self, request: web.Request) -> web.Response:
        if denied := self._denied(request):
            return denied
        country = request.match_info["country"]
        if len(country) != 2 or not country.isupper():
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        area, contains = request.query.get("AreaCode"), request.query.get("Contains")
        rows = [n.resource() for n in self.available.get(country, [])
                if (area is None or n.area_code() == area) and (contains is None or contains in n.phone_number)]
        return self._paged(request, "available_phone_numbers", rows)
