"""Error reports to Sentry when SENTRY_DSN is set, with nothing personal in them.

What leaves the machine is what tells an operator where it broke, never what it broke on:
- the exception's type and its stack (file, line, function), the logger and the log line's *template*
  (`"could not write call %s"`, not its arguments), the release and environment;
- no exception message: a driver error quotes the row, a parse error the number, a model error the
  transcript, and no pattern can tell those from harmless text;
- no request data (headers carry the session cookie, bodies and query strings Twilio's From/To and tokens),
  no local variables or source lines (a bridge's locals hold transcripts), no user, no server name;
- breadcrumbs keep their category, level, time and template only, scrubbed of digit runs and addresses
  once more in case a library put a value into its template.
"""

from __future__ import annotations

import re
from typing import Any

from app import __version__
from app.settings import Settings

_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_MAX = 300
WITHHELD = "[withheld]"
_OFF = {"mode": "off"}


def scrub(text: str) -> str:
    return _EMAIL.sub("[email]", _PHONE.sub("[number]", text))[:_MAX]


def _template(entry: Any) -> str:
    if isinstance(entry, dict):
        return scrub(str(entry.get("message") or ""))  # the unformatted template; `params` are dropped
    return WITHHELD


def _scrub_event(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    for key in ("request", "user", "extra", "server_name", "modules", "tags"):
        event.pop(key, None)
    contexts = event.get("contexts") or {}
    event["contexts"] = {k: v for k, v in contexts.items() if k in {"runtime", "os", "trace"}}
    if "message" in event:
        event["message"] = WITHHELD
    if "logentry" in event:
        event["logentry"] = {"message": _template(event["logentry"])}
    for exc in (event.get("exception") or {}).get("values") or []:
        exc["value"] = WITHHELD
        for frame in (exc.get("stacktrace") or {}).get("frames") or []:
            for key in ("vars", "pre_context", "context_line", "post_context"):
                frame.pop(key, None)
    crumbs = (event.get("breadcrumbs") or {}).get("values") or []
    event["breadcrumbs"] = {"values": [
        {"category": c.get("category"), "level": c.get("level"), "timestamp": c.get("timestamp"),
         "message": _template({"message": (c.get("data") or {}).get("template") or c.get("message")})}
        for c in crumbs
    ]}
    return event


def _breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    record = (hint or {}).get("log_record")
    if record is not None:  # keep the log call's template, not the line it formatted
        crumb["message"] = str(record.msg)
    crumb.pop("data", None)
    return crumb


def init_error_reporting(settings: Settings) -> bool:
    """Start reporting to Sentry if SENTRY_DSN is set; True when it was started."""
    if not settings.sentry_dsn:
        return False
    # Imported only here: a worker that reports nowhere doesn't carry the SDK (~3 MB, ~70 ms of import).
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        release=f"receptionist@{__version__}",
        data_collection={  # type: ignore[typeddict-item]
            "user_info": False, "cookies": _OFF, "http_headers": {"request": _OFF}, "http_bodies": [],
            "url_query_params": _OFF, "database_query_data": False, "queues": False,
            "stack_frame_variables": False, "frame_context_lines": 0,
            "gen_ai": {"inputs": False, "outputs": False},
        },
        max_request_body_size="never",
        traces_sample_rate=0.0,
        before_send=_scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=_breadcrumb,  # type: ignore[arg-type]
        # Errors logged with log.exception/log.error become events; INFO and up become breadcrumbs.
        integrations=[LoggingIntegration(event_level="ERROR")],
    )
    return True
