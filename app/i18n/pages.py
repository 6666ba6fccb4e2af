"""The owner's pages in the owner's language (issue 16): gettext catalogues for the templates and for the words
the dashboard handlers produce.

The English source strings are the msgids. Each translated base language (es, fr, de, pt) has a `.po` file in
`app/i18n/locale/<base>/LC_MESSAGES/messages.po`, read with Babel once, when the service starts (compiled in
memory: no `.mo` files, no build step). A locale (es-MX, fr-CA, pt-BR, …) reads its base language's catalogue.

The language is per request, never installed process-wide: every render point puts `gettext`/`ngettext` for the
owner's language into the template's context (`render_context`); Jinja's i18n extension (`{% trans %}`, `_()`)
resolves them from there. The environment's own globals are the untranslated English, which is what a page
without a business (landing, sign-in) shows.

Handlers don't know the request's language when they word an error deep in a form parser, so they return a
`Text`: an `str` holding the English (so logs, tests and `==` see English) that also carries its msgid and
parameters; the template environment's `finalize` hook translates any `Text` it prints with the context's
catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context, Undefined
from markupsafe import Markup

from app.i18n.languages import Language, get
from app.i18n.text import Text, ntr, tr

__all__ = ["Text", "configure_environment", "ntr", "render_context", "tr", "translations"]

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
#: base languages with a catalogue; English is the source strings
TRANSLATED = ("es", "fr", "de", "pt")
ENGLISH = NullTranslations()


def catalogue_path(base: str) -> Path:
    return LOCALE_DIR / base / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogues() -> dict[str, NullTranslations]:
    """Every base language's translations, read from its .po file (once per process)."""
    loaded: dict[str, NullTranslations] = {}
    for base in TRANSLATED:
        with catalogue_path(base).open("rb") as fp:
            catalog = read_po(fp, locale=base, domain=DOMAIN)
        compiled = BytesIO()
        write_mo(compiled, catalog)  # fuzzy entries stay out, as with msgfmt
        compiled.seek(0)
        loaded[base] = Translations(compiled, domain=DOMAIN)
    return loaded


def translations(language: Language | str | None) -> NullTranslations:
    """The catalogue for a language (a Language or a stored BCP-47 code); English for anything untranslated."""
    lang = get(language)
    return catalogues().get(lang.base, ENGLISH)


def in_language(text: str, language: Language | str | None) -> str:
    """A handler's string worded for a language, for places that aren't a template (headers, JSON)."""
    return text.translated(translations(language)) if isinstance(text, Text) else text


def _newstyle_gettext(catalogue: NullTranslations) -> Callable[..., str]:
    # Jinja's "newstyle" gettext (jinja2.ext._make_new_gettext): the result is Markup under autoescape and
    # always %-formatted with the keyword variables, which are escaped.
    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        words: str = catalogue.gettext(message)
        if context.eval_ctx.autoescape:
            words = Markup(words)
        # Markup's % costs ~10 µs; without variables or a "%%" it is the identity, and most strings are plain.
        return words % variables if variables or "%" in words else words

    return gettext


def _newstyle_ngettext(catalogue: NullTranslations) -> Callable[..., str]:
    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        words: str = catalogue.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            words = Markup(words)
        return words % variables

    return ngettext


@cache
def _callables(base: str) -> dict[str, Any]:
    catalogue = catalogues().get(base, ENGLISH)
    gettext = _newstyle_gettext(catalogue)
    # `_` directly, not the extension's alias (which looks `gettext` up and calls it again on every use).
    return {"gettext": gettext, "_": gettext, "ngettext": _newstyle_ngettext(catalogue), "i18n_catalogue": catalogue}


def render_context(language: Language | str | None) -> dict[str, Any]:
    """What a render point adds to a template's context so the page is in `language`: the gettext callables
    the i18n extension resolves, the catalogue `finalize` uses for handlers' `Text`, and the page's `lang`."""
    lang = get(language)
    return {**_callables(lang.base), "page_lang": lang.base, "page_locale": lang.code}


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    if isinstance(value, Text):
        catalogue = context.get("i18n_catalogue")
        if catalogue is not None and not isinstance(catalogue, Undefined):
            return value.translated(catalogue)
    return value


def configure_environment(env: Environment) -> None:
    """Give the template environment gettext: `{% trans %}` blocks (trimmed, so a msgid is one line of words),
    `_()`, newstyle formatting, English by default, and translation of handlers' `Text` on output."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.finalize = _finalize
    catalogues()  # read the .po files at start-up, not on the first page


def context_catalogue(context: Context) -> NullTranslations:
    """The catalogue a template is being rendered with (English when the render point gave none)."""
    catalogue = context.get("i18n_catalogue")
    return ENGLISH if catalogue is None or isinstance(catalogue, Undefined) else catalogue


def words_in(context: Context, text: str) -> str:
    """A handler's `Text` (or plain str) worded with the template's catalogue, for filters."""
    return text.translated(context_catalogue(context)) if isinstance(text, Text) else text
