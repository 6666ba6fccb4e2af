"""The owner's pages in four more languages (issue 16): every English string the templates and the dashboard
handlers show is in each catalogue, translated, with the same placeholders.

The msgids are extracted here, at test time, with Babel's own extractors and the repository's babel.cfg, so
a new English string without its translations fails this test (the fix: README, "Pages in other languages")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import DictLoader, Environment
from litestar.serialization import encode_json

from app.i18n.pages import TRANSLATED, Text, catalogue_path, configure_environment, ntr, render_context, tr
from app.i18n.text import message_of

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {**DEFAULT_KEYWORDS, "tr": None, "ntr": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%%")


def _extracted() -> dict[str, tuple[str, ...]]:
    """msgid -> (msgid, plural…) for every marked string, with the files it comes from in the message."""
    with (ROOT / "babel.cfg").open() as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    found: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True):
        forms = (message,) if isinstance(message, str) else tuple(m for m in message if m)
        if forms and forms[0]:
            found.setdefault(forms[0], forms)
    return found


@pytest.fixture(scope="module")
def extracted() -> dict[str, tuple[str, ...]]:
    return _extracted()


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def test_extraction_sees_templates_and_handlers(extracted: dict[str, tuple[str, ...]]) -> None:
    # A guard on the guard: if babel.cfg stopped reading a kind of file, every catalogue would look complete.
    assert "Latest calls" in extracted  # templates/dashboard/overview.html
    assert "Settings" in extracted  # the nav, templates/base.html
    assert len(extracted) > 300


@pytest.mark.parametrize("base", TRANSLATED)
def test_every_string_is_translated_with_its_placeholders(base: str, extracted: dict[str, tuple[str, ...]]) -> None:
    with catalogue_path(base).open("rb") as fp:
        catalog = read_po(fp, locale=base)
    missing, empty, fuzzy, wrong = [], [], [], []
    for msgid, forms in extracted.items():
        message = catalog.get(forms if len(forms) > 1 else msgid)
        if message is None:
            missing.append(msgid)
            continue
        if message.fuzzy:
            fuzzy.append(msgid)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if not all(strings):
            empty.append(msgid)
            continue
        # Plural forms may drop %(num)d in a one-form ("one message"), never add or rename one.
        expected = set(_placeholders(forms[-1]))
        for text in strings:
            got = set(_placeholders(text))
            if got - expected or (len(forms) == 1 and got != expected):
                wrong.append(f"{msgid!r} -> {text!r}")
    assert not missing, f"{len(missing)} strings missing from the {base} catalogue: {missing[:20]}"
    assert not empty, f"{len(empty)} untranslated in {base}: {empty[:20]}"
    assert not fuzzy, f"fuzzy in {base}: {fuzzy[:20]}"
    assert not wrong, f"placeholders differ in {base}: {wrong[:20]}"


def test_handlers_text_is_english_and_translates_per_render() -> None:
    saved = tr("Saved.")
    assert saved == "Saved." and str(saved) == "Saved." and message_of(ValueError(saved)) is saved
    # Litestar's JSON encoder meets a Text as a plain str (an error's detail, a tool's result).
    assert encode_json({"error": saved}) == b'{"error":"Saved."}'

    assert ntr("%(num)d call", "%(num)d calls", 3) == "3 calls"
    env = Environment(loader=DictLoader({"t.html": "{% trans %}Settings{% endtrans %}|{{ notice }}|{{ _('Calls') }}"}),
                      autoescape=True)
    configure_environment(env)
    template = env.get_template("t.html")
    assert template.render(notice=saved) == "Settings|Saved.|Calls"  # no language: English
    spanish = template.render(notice=saved, **render_context("es-MX"))
    assert spanish.split("|")[0] == "Configuración" and "Saved." not in spanish
    assert template.render(notice=saved, **render_context("en-GB")) == "Settings|Saved.|Calls"
    assert isinstance(saved, Text)


def test_outcome_words_match_the_notifications_english() -> None:
    from app.dashboard.outcome_words import END_REASON_WORDS, OUTCOME_WORDS
    from app.inbox.outcomes import END_REASONS, LABELS

    assert {k: str(v) for k, v in OUTCOME_WORDS.items()} == LABELS
    assert {k: str(v) for k, v in END_REASON_WORDS.items()} == END_REASONS
