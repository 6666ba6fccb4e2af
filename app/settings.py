"""All configuration, read once from the environment (and `.env`) and validated at start-up.

A wrong value raises `SettingsError` naming the variable; `app.main` turns that into a one-line message
instead of a stack trace, so an operator sees exactly what to fix.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.billing.plans import Plan, PlanError, parse_plans

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"
DEFAULT_GOOGLE_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"
DEFAULT_POLAR_API_BASE_URL = "https://api.polar.sh"
# Issue 15, Google Calendar: the API origin (the calendar discovery document's rootUrl is replaced by it) and
# Google's OAuth 2.0 endpoints for the calendar grant.
DEFAULT_GOOGLE_API_BASE_URL = "https://www.googleapis.com"
DEFAULT_GOOGLE_OAUTH_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
DEFAULT_GOOGLE_OAUTH_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_GOOGLE_OAUTH_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
DEFAULT_REALTIME_MODEL = "gpt-realtime-2.1"
DEFAULT_LIVE_MODEL = "gpt-live-1.1"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _http_url(name: str, value: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise SettingsError(f"{name} must be an absolute {'/'.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _int(name: str, value: str, *, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


# Fields whose values are credentials: hidden from repr and masked in log lines.
SECRET_FIELDS = frozenset({
    "turso_auth_token", "openai_api_key", "twilio_auth_token", "google_client_secret", "session_secrets",
    "polar_access_token", "polar_webhook_secret", "metrics_token", "sentry_dsn", "operator_token",
    "calendar_token_keys",  # issue 15
    "smtp_url",  # issue 9: carries the SMTP password
})


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = ROOT / "data"
    database_url: str = ""
    turso_auth_token: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    realtime_model: str = DEFAULT_REALTIME_MODEL
    supervisor_model: str = "gpt-4.1"
    summary_model: str = "gpt-4.1-mini"
    transcription_model: str = "gpt-4o-mini-transcribe"
    public_base_url: str = "http://localhost:8000"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base_url: str = DEFAULT_TWILIO_API_BASE_URL
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_discovery_url: str = DEFAULT_GOOGLE_DISCOVERY_URL
    session_secrets: tuple[str, ...] = ()
    polar_access_token: str | None = None
    polar_webhook_secret: str | None = None
    polar_api_base_url: str = DEFAULT_POLAR_API_BASE_URL
    polar_product_id: str | None = None
    # Issue 13 (billing): the paid plans (Polar products), the free trial's minutes (in total, no Polar needed),
    # and the name of the usage event a Polar meter counts. Polar's sandbox: POLAR_API_BASE_URL.
    polar_plans: tuple[Plan, ...] = ()
    free_trial_minutes: int = 30
    polar_usage_event: str = "call.minutes"
    recordings_dir: Path = ROOT / "data" / "recordings"
    # Per-model price overrides in USD per million tokens, merged over app.billing.pricing's dated table.
    price_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    supervisor_timeout_seconds: int = 20
    log_level: str = "INFO"
    # FORWARDED_ALLOW_IPS: reverse proxies whose X-Forwarded-For is believed (app.web.proxy), as validated,
    # normalised network strings; kept as text because handlers take Settings as a dependency and Litestar's
    # signature model rejects a union of the two ipaddress network types. `*` sets forwarded_allow_any (any
    # peer); networks listed beside it still count as proxy hops in the chain.
    forwarded_allow_ips: tuple[str, ...] = ()
    forwarded_allow_any: bool = False
    # Issue 8 (phone-line trust): TWILIO_ALLOW_PURCHASE lets owners buy a new number on the service's Twilio
    # account; TRANSFER_ALLOW_COUNTRIES (ISO codes) / TRANSFER_ALLOW_INTERNATIONAL widen where transfers may
    # dial beyond the business's own country.
    twilio_allow_purchase: bool = False
    transfer_allow_countries: tuple[str, ...] = ()
    transfer_allow_international: bool = False
    # issue 9 (owner's inbox): the SMTP server for owner notifications (smtp://user:pass@host:587 with STARTTLS
    # when offered, smtps://… for TLS from the start) and the From address of those emails.
    smtp_url: str | None = None
    smtp_from: str = ""

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_url and self.smtp_from)
    # -- issue 15: Google Calendar ---------------------------------------------------------------------
    google_api_base_url: str = DEFAULT_GOOGLE_API_BASE_URL
    google_oauth_authorize_url: str = DEFAULT_GOOGLE_OAUTH_AUTHORIZE_URL
    google_oauth_token_url: str = DEFAULT_GOOGLE_OAUTH_TOKEN_URL
    google_oauth_revoke_url: str = DEFAULT_GOOGLE_OAUTH_REVOKE_URL
    # Fernet keys for refresh tokens at rest, newest first; empty: derived from SESSION_SECRETS.
    calendar_token_keys: tuple[str, ...] = ()
    calendar_sync_seconds: int = 900
    calendar_watch_ttl_seconds: int = 7 * 24 * 3600
    # Issue 11, calls that survive faults: a call's realtime session is rolled over to a fresh one (with the
    # conversation restored) after this long, before OpenAI's 60-minute session limit; and how long a drain
    # waits for live calls before moving them elsewhere.
    realtime_session_max_seconds: int = 55 * 60
    operator_token: str | None = field(default=None, repr=False)  # opens POST /ops/drain to its bearer
    drain_timeout_seconds: int = 60
    # Operations (issue 10): METRICS_TOKEN opens GET /metrics to a bearer of it; SENTRY_DSN turns on error
    # reports (scrubbed of personal data, app.error_reporting).
    metrics_token: str | None = field(default=None, repr=False)
    sentry_dsn: str | None = field(default=None, repr=False)
    sentry_environment: str = "production"
    # Issue 12 (GPT-Live): the engine a business gets unless its owner chose one, and the Live model.
    voice_engine_default: str = "realtime"
    live_model: str = DEFAULT_LIVE_MODEL

    def __repr__(self) -> str:
        # Settings reach logs and tracebacks (a failing dependency, a debugger's repr): secrets never do.
        shown = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                text = "<hidden>" if value else repr(value)
            else:
                text = repr(value)
            shown.append(f"{name}={text}")
        return f"Settings({', '.join(shown)})"

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, for the log redactor to mask wherever one turns up."""
        values: list[str] = []
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            values.extend(value if isinstance(value, tuple) else [value] if value else [])
        return tuple(v for v in values if len(v) >= 8)

    @property
    def uses_libsql(self) -> bool:
        return "libsql" in self.database_url.split(":", 1)[0]

    @property
    def google_configured(self) -> bool:
        return bool(self.google_client_id)

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def public_base_is_loopback(self) -> bool:
        """Whether PUBLIC_BASE_URL names this machine itself (localhost, 127.0.0.0/8, ::1)."""
        host = (urlsplit(self.public_base_url).hostname or "").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def public_ws_base_url(self) -> str:
        return "wss://" + self.public_base_url.removeprefix("https://") if self.secure_cookies else (
            "ws://" + self.public_base_url.removeprefix("http://")
        )


def _read_env(env: Mapping[str, str] | None) -> dict[str, str]:
    if env is not None:
        return {k: v for k, v in env.items() if v is not None}
    merged = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
    merged.update(os.environ)
    return merged


def _session_secrets(raw: str | None, data_dir: Path) -> tuple[str, ...]:
    if raw:
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        if any(len(k) < 16 for k in keys):
            raise SettingsError("SESSION_SECRETS: every key must be at least 16 characters")
        return keys
    # Local use only: one generated key kept beside the embedded database, so sign-ins survive restarts.
    path = data_dir / "session_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return (path.read_text().strip(),)


def _forwarded_allow_ips(raw: str | None) -> tuple[tuple[str, ...], bool]:
    networks: list[str] = []
    allow_any = False
    for item in (raw or "").split(","):
        entry = item.strip()
        if not entry:
            continue
        if entry == "*":
            allow_any = True
            continue
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise SettingsError(
                f"FORWARDED_ALLOW_IPS must be comma-separated IP addresses or networks, or *, got {entry!r}"
            ) from None
    return tuple(networks), allow_any


def _calendar_token_keys(raw: str | None) -> tuple[str, ...]:
    """CALENDAR_TOKEN_KEY: comma-separated Fernet keys (urlsafe base64 of 32 bytes), newest first."""
    import base64
    import binascii

    keys = tuple(k.strip() for k in (raw or "").split(",") if k.strip())
    for key in keys:
        try:
            if len(base64.urlsafe_b64decode(key.encode())) != 32:
                raise ValueError
        except (ValueError, binascii.Error):
            raise SettingsError(
                "CALENDAR_TOKEN_KEY must be Fernet keys (urlsafe base64 of 32 bytes), comma-separated"
            ) from None
    return keys


def _bearer_token(name: str, raw: str | None) -> str | None:
    if raw is not None and len(raw) < 16:
        raise SettingsError(f"{name} must be at least 16 characters")
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (default: `.env` overlaid by the process environment)."""
    e = _read_env(env)

    def opt(name: str) -> str | None:
        value = e.get(name, "").strip()
        return value or None

    data_dir = Path(opt("DATA_DIR") or ROOT / "data")
    database_url = opt("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'receptionist.db'}"
    scheme = database_url.split(":", 1)[0]
    if scheme not in {"sqlite+aiosqlite", "libsql", "sqlite+libsql"}:
        raise SettingsError(
            f"DATABASE_URL must start with sqlite+aiosqlite://, libsql:// or sqlite+libsql://, got {scheme}://"
        )
    turso_token = opt("TURSO_AUTH_TOKEN")
    if scheme == "libsql" and not turso_token and "secure=false" not in database_url:
        raise SettingsError("TURSO_AUTH_TOKEN is required with a libsql:// DATABASE_URL")

    public_base_url = _http_url("PUBLIC_BASE_URL", opt("PUBLIC_BASE_URL") or "http://localhost:8000")
    if urlsplit(public_base_url).path not in {"", "/"}:
        raise SettingsError("PUBLIC_BASE_URL must be an origin with no path, e.g. https://example.com")

    twilio_sid, twilio_token = opt("TWILIO_ACCOUNT_SID"), opt("TWILIO_AUTH_TOKEN")
    if bool(twilio_sid) != bool(twilio_token):
        raise SettingsError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set together")
    if twilio_sid and not twilio_sid.startswith("AC"):
        raise SettingsError(f"TWILIO_ACCOUNT_SID must start with AC, got {twilio_sid[:4]!r}…")

    google_id, google_secret = opt("GOOGLE_CLIENT_ID"), opt("GOOGLE_CLIENT_SECRET")
    if google_id and not google_secret:
        raise SettingsError("GOOGLE_CLIENT_SECRET is required when GOOGLE_CLIENT_ID is set")

    overrides: dict[str, dict[str, float]] = {}
    if raw := opt("PRICE_OVERRIDES"):
        try:
            parsed = json.loads(raw)
            overrides = {str(m): {str(k): float(v) for k, v in p.items()} for m, p in parsed.items()}
        except (ValueError, AttributeError, TypeError):
            raise SettingsError(
                'PRICE_OVERRIDES must be JSON like {"gpt-realtime": {"audio_input": 32.0}}'
            ) from None

    log_level = (opt("LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    forwarded_allow_ips, forwarded_allow_any = _forwarded_allow_ips(opt("FORWARDED_ALLOW_IPS"))
    calendar_token_keys = _calendar_token_keys(opt("CALENDAR_TOKEN_KEY"))

    transfer_countries = tuple(c.strip().upper() for c in (opt("TRANSFER_ALLOW_COUNTRIES") or "").split(",")
                               if c.strip())
    if any(len(c) != 2 or not c.isalpha() for c in transfer_countries):
        raise SettingsError("TRANSFER_ALLOW_COUNTRIES must be comma-separated two-letter country codes, like CA,GB")
    smtp_url, smtp_from = opt("SMTP_URL"), opt("SMTP_FROM") or ""
    if smtp_url:
        parts = urlsplit(smtp_url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise SettingsError("SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
        try:
            parts.port  # noqa: B018 - a non-numeric port raises here
        except ValueError:
            raise SettingsError("SMTP_URL has a port that is not a number") from None
        if not smtp_from:
            raise SettingsError("SMTP_FROM (the notification emails' From address) is required with SMTP_URL")
    if smtp_from and "@" not in smtp_from:
        raise SettingsError(f"SMTP_FROM must be an email address, got {smtp_from!r}")
    try:
        polar_plans = parse_plans(opt("POLAR_PLANS"), opt("POLAR_PRODUCT_ID"))
    except PlanError as exc:
        raise SettingsError(str(exc)) from None
    if polar_plans and not opt("POLAR_ACCESS_TOKEN"):
        raise SettingsError("POLAR_ACCESS_TOKEN is required when POLAR_PLANS (or POLAR_PRODUCT_ID) is set")

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        turso_auth_token=turso_token,
        openai_api_key=opt("OPENAI_API_KEY"),
        openai_base_url=_http_url("OPENAI_BASE_URL", opt("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL),
        realtime_model=opt("REALTIME_MODEL") or DEFAULT_REALTIME_MODEL,
        supervisor_model=opt("SUPERVISOR_MODEL") or "gpt-4.1",
        summary_model=opt("SUMMARY_MODEL") or "gpt-4.1-mini",
        transcription_model=opt("TRANSCRIPTION_MODEL") or "gpt-4o-mini-transcribe",
        public_base_url=public_base_url,
        twilio_account_sid=twilio_sid,
        twilio_auth_token=twilio_token,
        twilio_api_base_url=_http_url(
            "TWILIO_API_BASE_URL", opt("TWILIO_API_BASE_URL") or DEFAULT_TWILIO_API_BASE_URL
        ),
        google_client_id=google_id,
        google_client_secret=google_secret,
        google_discovery_url=_http_url(
            "GOOGLE_DISCOVERY_URL", opt("GOOGLE_DISCOVERY_URL") or DEFAULT_GOOGLE_DISCOVERY_URL
        ),
        session_secrets=_session_secrets(opt("SESSION_SECRETS"), data_dir),
        polar_access_token=opt("POLAR_ACCESS_TOKEN"),
        polar_webhook_secret=opt("POLAR_WEBHOOK_SECRET"),
        polar_api_base_url=_http_url(
            "POLAR_API_BASE_URL", opt("POLAR_API_BASE_URL") or DEFAULT_POLAR_API_BASE_URL
        ),
        polar_product_id=opt("POLAR_PRODUCT_ID"),
        polar_plans=polar_plans,
        free_trial_minutes=_int("FREE_TRIAL_MINUTES", opt("FREE_TRIAL_MINUTES") or "30", low=0, high=100_000),
        polar_usage_event=opt("POLAR_USAGE_EVENT") or "call.minutes",
        recordings_dir=Path(opt("RECORDINGS_DIR") or data_dir / "recordings"),
        price_overrides=overrides,
        supervisor_timeout_seconds=_int(
            "SUPERVISOR_TIMEOUT_SECONDS", opt("SUPERVISOR_TIMEOUT_SECONDS") or "20", low=1, high=120
        ),
        log_level=log_level,
        forwarded_allow_ips=forwarded_allow_ips,
        forwarded_allow_any=forwarded_allow_any,
        twilio_allow_purchase=_bool("TWILIO_ALLOW_PURCHASE", opt("TWILIO_ALLOW_PURCHASE") or ""),
        transfer_allow_countries=transfer_countries,
        transfer_allow_international=_bool("TRANSFER_ALLOW_INTERNATIONAL", opt("TRANSFER_ALLOW_INTERNATIONAL") or ""),
        smtp_url=smtp_url,
        smtp_from=smtp_from,
        google_api_base_url=_http_url(
            "GOOGLE_API_BASE_URL", opt("GOOGLE_API_BASE_URL") or DEFAULT_GOOGLE_API_BASE_URL
        ),
        google_oauth_authorize_url=_http_url(
            "GOOGLE_OAUTH_AUTHORIZE_URL", opt("GOOGLE_OAUTH_AUTHORIZE_URL") or DEFAULT_GOOGLE_OAUTH_AUTHORIZE_URL
        ),
        google_oauth_token_url=_http_url(
            "GOOGLE_OAUTH_TOKEN_URL", opt("GOOGLE_OAUTH_TOKEN_URL") or DEFAULT_GOOGLE_OAUTH_TOKEN_URL
        ),
        google_oauth_revoke_url=_http_url(
            "GOOGLE_OAUTH_REVOKE_URL", opt("GOOGLE_OAUTH_REVOKE_URL") or DEFAULT_GOOGLE_OAUTH_REVOKE_URL
        ),
        calendar_token_keys=calendar_token_keys,
        calendar_sync_seconds=_int(
            "CALENDAR_SYNC_SECONDS", opt("CALENDAR_SYNC_SECONDS") or "900", low=5, high=86400
        ),
        calendar_watch_ttl_seconds=_int(
            "CALENDAR_WATCH_TTL_SECONDS", opt("CALENDAR_WATCH_TTL_SECONDS") or str(7 * 24 * 3600),
            low=60, high=30 * 24 * 3600,
        ),
        realtime_session_max_seconds=_int(
            "REALTIME_SESSION_MAX_SECONDS", opt("REALTIME_SESSION_MAX_SECONDS") or str(55 * 60), low=5, high=3590
        ),
        operator_token=_bearer_token("OPERATOR_TOKEN", opt("OPERATOR_TOKEN")),
        drain_timeout_seconds=_int("DRAIN_TIMEOUT_SECONDS", opt("DRAIN_TIMEOUT_SECONDS") or "60", low=0, high=3600),
        metrics_token=_bearer_token("METRICS_TOKEN", opt("METRICS_TOKEN")),
        sentry_dsn=_http_url("SENTRY_DSN", dsn) if (dsn := opt("SENTRY_DSN")) else None,
        sentry_environment=opt("SENTRY_ENVIRONMENT") or "production",
        voice_engine_default=_voice_engine(opt("VOICE_ENGINE_DEFAULT")),
        live_model=opt("LIVE_MODEL") or DEFAULT_LIVE_MODEL,
    )


# Issue 12 (GPT-Live) ---------------------------------------------------------------------------------------
VOICE_ENGINES = ("realtime", "live")


def _voice_engine(raw: str | None) -> str:
    value = (raw or "realtime").lower()
    if value not in VOICE_ENGINES:
        raise SettingsError(f"VOICE_ENGINE_DEFAULT must be realtime or live, got {raw!r}")
    return value
