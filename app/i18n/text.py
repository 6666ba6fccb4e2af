"""A UI string a handler words in English and a page shows in the owner's language (issue 16; see
app.i18n.pages). No imports beyond the standard library, so any layer (db validation, telephony numbers) can
mark its owner-facing messages."""

from __future__ import annotations

from gettext import NullTranslations
from typing import Any


class Text(str):
    """A UI string worded in English that a page shows in the owner's language.

    It *is* the English text (formatted with its parameters); `translated()` words it with a catalogue.
    Parameters that are themselves `Text` are translated too ("status: %(state)s")."""

    msgid: str
    plural: str | None
    count: int | None
    params: dict[str, Any]

    def __new__(cls, msgid: str, plural: str | None = None, count: int | None = None, **params: Any) -> Text:
        english = plural if plural is not None and count != 1 else msgid
        if plural is not None:
            params.setdefault("num", count)
        self = super().__new__(cls, english % params if params else english)
        self.msgid, self.plural, self.count, self.params = msgid, plural, count, params
        return self

    def translated(self, catalogue: NullTranslations) -> str:
        if self.plural is not None:
            words = catalogue.ngettext(self.msgid, self.plural, self.count or 0)
        else:
            words = catalogue.gettext(self.msgid)
        if not self.params:
            return words
        params = {k: v.translated(catalogue) if isinstance(v, Text) else v for k, v in self.params.items()}
        return words % params


def tr(msgid: str, **params: Any) -> Text:
    """Mark a handler's English string for translation (extracted by `pybabel extract` as keyword `tr`)."""
    return Text(msgid, **params)


def ntr(singular: str, plural: str, count: int, **params: Any) -> Text:
    """A plural string; `%(num)d` is the count."""
    return Text(singular, plural, count, **params)


def message_of(exc: BaseException) -> str:
    """An exception's message as raised: the `Text` itself when it was raised with one (`str(exc)` would give
    plain English; JSON encoders need that plain `str`, so `Text.__str__` stays str's own)."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, Text) else str(exc)

