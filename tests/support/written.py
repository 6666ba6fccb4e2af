"""Is a text really in its language? The English words of the written-lines catalogue (app.i18n.texts) that a
text in another language still contains: a line that stayed English, or English glued into it by code."""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.i18n.texts import CATALOGUE, COUNTED, END_REASONS, OUTCOME_LABELS

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _all(base: str) -> list[str]:
    texts = [words[base] for words in (*CATALOGUE.values(), *OUTCOME_LABELS.values(), *END_REASONS.values())]
    return texts + [form for words in COUNTED.values() for form in words[base]]


def _words(texts: Iterable[str]) -> set[str]:
    return {w.lower() for text in texts for w in _WORD.findall(re.sub(r"\{\w+\}", " ", text)) if len(w) >= 3}


def english_words_in(text: str, base: str, names: Iterable[str] = ()) -> set[str]:
    """English words of the catalogue in `text` that aren't also words of the `base` language's own lines
    ("plan", "Twilio", "message" in French), nor of the `names` given, nor the STOP keyword; links are skipped."""
    allowed = _words(_all(base)) | _words(names) | {"stop"}
    found = _words([re.sub(r"https?://\S+", " ", text)])
    return (found & _words(_all("en"))) - allowed
