"""Settings → Languages (issue 16): the business's main language and the others its receptionist speaks. Its
own section and POST route beside the main business form; errors come back inline and change nothing."""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context, Undefined
from litestar import Request, get, post
from litestar.response import Redirect, Template

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, owner_language, page
from app.db.business_languages import LanguageScope
from app.db.engine import Database
from app.db.models import Business
from app.i18n.languages import SUPPORTED, LanguageError, offered
from app.i18n.text import message_of


def _choices(owner: Owner) -> list[dict[str, str]]:
    # Each language named in the owner's language, then in itself ("Spanish (Mexico) — español (México)").
    reader = owner_language(owner)
    shown_in = "en" if reader.base == "en" else reader.code
    return [{"code": code, "label": f"{lang.name(shown_in)} — {lang.name()}"} for code, lang in SUPPORTED.items()]


def _section(request: Request[Any, Any, Any], owner: Owner, *, primary: str, others: list[str],
             saved: bool = False, error: str | None = None) -> Template:
    context = {
        "language_choices": _choices(owner),
        "language_primary": primary,
        "language_others": others,
        "languages_saved": saved,
        "languages_error": error,
    }
    template = "dashboard/_language_settings.html" if is_htmx(request) else "dashboard/language_settings.html"
    return page(template, owner, status=200, **context)


def _current(business: Business) -> tuple[str, list[str]]:
    codes = [lang.code for lang in offered(business.languages)]
    return codes[0], codes[1:]


@get("/settings/languages", name="dashboard:settings-languages")
async def languages_section(request: Request[Any, Any, Any], owner: Owner, business: Business) -> Template:
    primary, others = _current(business)
    return _section(request, owner, primary=primary, others=others, saved=request.query_params.get("saved") == "1")


@post("/settings/languages", name="dashboard:settings-languages-save", status_code=200)
async def languages_save(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Any:
    form = await request.form()
    primary = str(form.get("primary") or "")
    others = [str(code) for code in form.getall("others")] if "others" in form else []
    try:
        codes = await LanguageScope(db.session_maker, business.id).choose(primary, others)
    except LanguageError as exc:
        # What the owner picked comes back as picked, with the reason; the stored languages are untouched.
        return _section(request, owner, primary=primary, others=[c for c in others if c != primary],
                        error=message_of(exc))
    if codes != list(business.languages or []):
        await audit.record(db, "settings.changed", business_id=business.id, user=owner.user, request=request,
                           detail={"languages": codes})
    if not is_htmx(request):
        return Redirect(path="/settings/languages?saved=1", status_code=303)
    return _section(request, owner, primary=codes[0], others=codes[1:], saved=True)


@pass_context
def language_name(context: Context, code: str | None) -> str:
    """A stored BCP-47 code as the owner reads it, in the page's language ("Spanish (Mexico)", "español
    (México)"); "—" for calls from before languages."""
    if not code:
        return "—"
    shown_in = context.get("page_locale") or "en"
    if isinstance(shown_in, Undefined) or str(shown_in).startswith("en"):
        shown_in = "en"
    return SUPPORTED[code].name(str(shown_in)) if code in SUPPORTED else code


ROUTES = [languages_section, languages_save]
FILTERS = {"language_name": language_name}
