"""Settings → Voice engine (issue 12): the owner picks Realtime or GPT-Live for their calls, or follows the
service's default. Its own section and POST route beside the main business form; errors come back inline."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page
from app.db.engine import Database
from app.db.models import Business
from app.db.voice_engine import VoiceEngineScope
from app.i18n.text import tr
from app.settings import Settings

ENGINE_LABELS = {
    "realtime": "OpenAI Realtime",
    "live": "GPT-Live",
}
ENGINE_NOTES = {
    "realtime": tr("Priced per audio token. The receptionist model hands facts and bookings to the supervisor."),
    "live": tr("Priced per minute of call (usually several times cheaper), listens while it speaks, and delegates "
               "facts and bookings to the same supervisor. If GPT-Live can't be reached, calls are answered on "
               "Realtime."),
}
CHOICES = ("default", "realtime", "live")


def _section(request: Request[Any, Any, Any], owner: Owner, settings: Settings, *, choice: str,
             saved: bool = False, error: str | None = None) -> Template:
    context = {
        "engine_choice": choice,
        "engine_default": settings.voice_engine_default,
        "engine_labels": ENGINE_LABELS,
        "engine_notes": ENGINE_NOTES,
        "engine_saved": saved,
        "engine_error": error,
        "live_model": settings.live_model,
        "realtime_model": settings.realtime_model,
    }
    template = "dashboard/_engine_settings.html" if is_htmx(request) else "dashboard/engine_settings.html"
    return page(template, owner, status=200, **context)


@get("/settings/engine", name="dashboard:settings-engine")
async def engine_section(request: Request[Any, Any, Any], owner: Owner, business: Business,
                         settings: Settings) -> Template:
    saved = request.query_params.get("saved") == "1"
    return _section(request, owner, settings, choice=business.voice_engine or "default", saved=saved)


@post("/settings/engine", name="dashboard:settings-engine-save", status_code=200)
async def engine_save(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                      settings: Settings) -> Any:
    form = await request.form()
    choice = str(form.get("voice_engine") or "")
    if choice not in CHOICES:
        return _section(request, owner, settings, choice=business.voice_engine or "default",
                        error=tr("Choose one of the engines listed."))
    await VoiceEngineScope(db.session_maker, business.id).choose(None if choice == "default" else choice)
    if not is_htmx(request):
        return Redirect(path="/settings/engine?saved=1", status_code=303)
    return _section(request, owner, settings, choice=choice, saved=True)


ROUTES = [engine_section, engine_save]
