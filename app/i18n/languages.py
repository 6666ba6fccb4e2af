"""The languages a business can answer in: each one a BCP-47 code that both sides of a call can speak.

A language is offered only when the realtime voices speak it (the Realtime and GPT-Live models are
multilingual; their transcription takes an ISO-639-1 hint) AND Twilio's `<Say>` has a voice for that exact
locale, because the lines the service speaks itself (fallbacks, voicemail, the cut-off apology) are TwiML.
Each locale therefore names the Amazon Polly neural voice Twilio reads it with (Twilio's voice list:
`Polly.<Name>-Neural`, language attribute = the voice's locale).

A business offers one primary language (greeting, owner's summaries, anything said before the caller
speaks) and optional others; at most one locale per base language, so "the caller speaks Spanish" maps to
exactly one offered locale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from babel import Locale

from app.i18n.text import tr


@dataclass(frozen=True, slots=True)
class Language:
    #: BCP-47 code stored on the business, the call and the customer (e.g. "es-MX")
    code: str
    #: Twilio `<Say voice=…>` for this locale (an Amazon Polly neural voice Twilio offers)
    twilio_voice: str

    @property
    def base(self) -> str:
        """ISO-639-1 language ("es"): what the transcription model takes and reports."""
        return self.code.split("-", 1)[0]

    @property
    def twilio_language(self) -> str:
        """Twilio `<Say language=…>`: the voice's own locale."""
        return self.code

    @property
    def babel(self) -> Locale:
        return Locale.parse(self.code, sep="-")

    def name(self, in_language: str | None = None) -> str:
        """The language's name in `in_language` (default: in itself), e.g. "español (México)"."""
        shown_in = Locale.parse(in_language or self.code, sep="-")
        return str(self.babel.get_display_name(shown_in))

    def language_name(self, in_language: str | None = None) -> str:
        """The base language's name ("Spanish", "español"): what a caller is told is spoken here."""
        shown_in = Locale.parse(in_language or self.code, sep="-")
        return str(Locale.parse(self.base).get_display_name(shown_in))


SUPPORTED: dict[str, Language] = {
    language.code: language
    for language in (
        Language("en-US", "Polly.Joanna-Neural"),
        Language("en-GB", "Polly.Amy-Neural"),
        Language("es-MX", "Polly.Mia-Neural"),
        Language("es-US", "Polly.Lupe-Neural"),
        Language("es-ES", "Polly.Lucia-Neural"),
        Language("fr-FR", "Polly.Lea-Neural"),
        Language("fr-CA", "Polly.Gabrielle-Neural"),
        Language("de-DE", "Polly.Vicki-Neural"),
        Language("pt-BR", "Polly.Camila-Neural"),
        Language("pt-PT", "Polly.Ines-Neural"),
    )
}
DEFAULT_LANGUAGE = "en-US"


class LanguageError(ValueError):
    """An owner's language choice that can't be used; the message says why, for the settings form."""


def warm_locale_data() -> None:
    """Load each supported language's CLDR data (babel reads a locale's file on its first use: ~10 ms that
    would otherwise fall on the event loop, inside some page or call)."""
    for language in SUPPORTED.values():
        language.babel.languages  # noqa: B018 (the lookup loads the locale and its parents)
        Locale.parse(language.base).languages  # noqa: B018


def get(code: str | Language | None) -> Language:
    """The supported language for a stored code (a Language is itself); anything unknown (or None) is the
    default."""
    if isinstance(code, Language):
        return code
    return SUPPORTED.get(code or "", SUPPORTED[DEFAULT_LANGUAGE])


def validate(primary: str, others: Iterable[str]) -> list[str]:
    """The business's languages as stored (primary first), or LanguageError."""
    if primary not in SUPPORTED:
        raise LanguageError(tr("Pick the main language from the list."))
    chosen = [primary]
    for code in others:
        if code in chosen:
            continue
        if code not in SUPPORTED:
            raise LanguageError(tr("%(code)s is not a language the receptionist can speak on the phone.",
                                   code=repr(code)))
        clash = next((c for c in chosen if SUPPORTED[c].base == SUPPORTED[code].base), None)
        if clash is not None:
            raise LanguageError(tr("%(one)s and %(other)s are the same language: offer one of them.",
                                   one=SUPPORTED[code].name("en"), other=SUPPORTED[clash].name("en")))
        chosen.append(code)
    return chosen


def offered(stored: Sequence[str] | None) -> list[Language]:
    """A business's offered languages (primary first) from its stored codes, skipping unknown ones."""
    languages = [SUPPORTED[c] for c in stored or () if c in SUPPORTED]
    return languages or [SUPPORTED[DEFAULT_LANGUAGE]]


def for_owner(stored: Sequence[str] | None) -> Language:
    """The language the owner reads: the business's primary one. The dashboard, the owner's notifications and
    the call summaries are written in it; transcripts stay as spoken."""
    return offered(stored)[0]


def for_customer(customer_language: str | None, stored: Sequence[str] | None) -> Language:
    """The language to write to a customer in: the offered one they last spoke, else the business's primary."""
    offered_languages = offered(stored)
    return match(offered_languages, customer_language) or offered_languages[0]


def match(offered_languages: Sequence[Language], spoken: str | None) -> Language | None:
    """The offered language a caller speaks: `spoken` is an ISO-639-1 code ("es"), a BCP-47 tag ("es-419")
    or an English name ("Spanish"), as a transcription or the voice model reports it."""
    if not spoken:
        return None
    text = spoken.strip()
    by_code = {lang.code.lower(): lang for lang in offered_languages}
    if text.lower() in by_code:
        return by_code[text.lower()]
    base = normalise_base(text)
    return next((lang for lang in offered_languages if lang.base == base), None)


def normalise_base(spoken: str) -> str:
    """ISO-639-1 for what a model reports: "es", "es-419", "spa", "Spanish", "español" → "es"."""
    text = spoken.strip().replace("_", "-")
    head = text.split("-", 1)[0].lower()
    if len(head) == 2 and head.isalpha():
        return head
    if len(head) == 3 and head.isalpha():
        try:
            return str(Locale.parse(head).language)  # 3-letter ISO-639 codes Babel has data for
        except Exception:
            pass
    lowered = text.lower()
    for code in ("en", "es", "fr", "de", "pt", "it", "nl", "ja", "zh", "ko", "ru", "ar", "hi", "pl", "tr", "vi",
                 "uk", "sv", "el", "he", "ro", "cs", "hu", "th", "id", "tl"):
        locale = Locale.parse(code)
        names = {str(locale.get_display_name("en")).lower(), str(locale.get_display_name(code)).lower()}
        if lowered in names:
            return code
    return lowered[:16]
