"""The language of one call: which one is spoken now, how it changes, and what changes with it.

A call starts in the business's primary language (the greeting, and anything the service says before the
caller has spoken). When the caller speaks another language the business offers, the call switches for the
rest of the call; the switch is noticed two ways:

- the transcription says so: GA `conversation.item.input_audio_transcription.completed` carries `languages`
  (`[{"code": "es"}]`) with the transcription models that detect it (`gpt-transcribe`, `gpt-live-transcribe`,
  which are also given the offered languages as `audio.input.transcription.languages`);
- otherwise the receptionist model says so, by calling the `set_language` tool its instructions describe.

A switch updates the realtime session (instructions name the new language, so every later response and a
restored session after a reconnect speak it), the supervisor's instructions, the wording of dates and
times the tools read out, the language of the service's own lines (the fallback TwiML, apologies, the resume
line, silence prompts) and the call record (`Call.language`, a system event). A language the business does
not offer changes nothing but gets, in the primary language, the catalogue's polite line and the offer of a
message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from app.db.models import EventKind
from app.i18n import languages as langs
from app.i18n.languages import Language
from app.i18n.lines import Line, language_list, text

log = logging.getLogger(__name__)

SET_LANGUAGE_TOOL = "set_language"
#: transcription models whose completed events report the detected languages (and that take `languages`)
DETECTING_TRANSCRIBERS = frozenset({"gpt-transcribe", "gpt-live-transcribe"})
#: a transcript this short ("OK", "sí", "hola") says too little about the language to switch on it; counted in
#: letters, not words, since Japanese or Chinese put no spaces between words
MIN_LETTERS_TO_SWITCH = 6

Events = list[dict[str, Any]]


def set_language_tool() -> dict[str, Any]:
    return {
        "type": "function",
        "name": SET_LANGUAGE_TOOL,
        "description": "Call this as soon as the caller speaks a language other than the one you are speaking, "
        "before answering them. Say what it returns.",
        "parameters": {
            "type": "object",
            "properties": {
                "language": {
                    "type": "string",
                    "description": "The caller's language as an ISO 639-1 code, e.g. \"es\" for Spanish.",
                }
            },
            "required": ["language"],
            "additionalProperties": False,
        },
    }


class CallLanguage:
    """One call's language state; the bridge, the transport, the tools and the recorder follow it."""

    def __init__(self, offered: Sequence[Language], *, transcription_model: str = "",
                 remembered: str | None = None) -> None:
        self.offered = list(offered) or [langs.get(None)]
        self.primary = self.offered[0]
        self.current = self.primary
        #: the customer's language from an earlier call (an offered one), a hint for the model
        self.remembered = langs.match(self.offered, remembered) if remembered else None
        self._detects = transcription_model in DETECTING_TRANSCRIBERS
        self._listeners: list[Callable[[Language], None]] = []
        self._record: Callable[[EventKind, str, dict[str, Any]], None] | None = None
        self._session: dict[str, Any] | None = None
        self._base_instructions = ""
        self._refused: set[str] = set()

    @classmethod
    def for_business(cls, stored: Sequence[str] | None, **kwargs: Any) -> CallLanguage:
        return cls(langs.offered(stored), **kwargs)

    # -- wiring ---------------------------------------------------------------------------------------------
    def on_change(self, listener: Callable[[Language], None]) -> None:
        """`listener(language)` now and after every switch."""
        self._listeners.append(listener)
        listener(self.current)

    def record_with(self, record: Callable[[EventKind, str, dict[str, Any]], None]) -> None:
        self._record = record

    @property
    def switchable(self) -> bool:
        return len(self.offered) > 1

    def configure(self, session: dict[str, Any]) -> dict[str, Any]:
        """Add the language rules, the `set_language` tool and the transcription hints to a realtime
        `session.update` body, in place: the same dict is what a reconnect restores, so it keeps following
        the call's language."""
        self._session = session
        self._base_instructions = str(session.get("instructions") or "")
        session["instructions"] = self._instructions()
        session["tools"] = [*session.get("tools", []), set_language_tool()]
        transcription = session.get("audio", {}).get("input", {}).get("transcription")
        if isinstance(transcription, dict):
            transcription.update(self._transcription_hints())
        return session

    def _transcription_hints(self) -> dict[str, Any]:
        if not self.switchable:
            # One language only: naming it improves accuracy and latency.
            return {"language": self.primary.base}
        # Never a single `language` here: it would bias the transcript (and the detection) towards it.
        return {"languages": [lang.base for lang in self.offered]} if self._detects else {}

    # -- what the models are told -----------------------------------------------------------------------------
    def policy(self, *, with_tool: bool = True) -> str:
        """The receptionist's language rules for the current state of the call (`with_tool`: the model has the
        `set_language` tool; GPT-Live's front model hasn't, its supervisor has)."""
        listed = ", ".join(f"{lang.name('en')} [{lang.code}]" for lang in self.offered)
        lines = [f"Languages: this business answers calls in {listed}. The greeting is in "
                 f"{self.primary.name('en')}."]
        if self.current is self.primary:
            lines.append(f"Speak {self.primary.name('en')} unless the caller speaks another language.")
        else:
            lines.append(f"The caller speaks {self.current.name('en')}: speak only {self.current.language_name('en')} "
                         "for the rest of the call, whatever language your notes or the supervisor's answers are in.")
        if with_tool:
            lines.append(f"When the caller speaks a language other than the one you are speaking, first call "
                         f"{SET_LANGUAGE_TOOL} with its ISO 639-1 code, then say what it returns and go on in the "
                         "language it names.")
        else:
            lines.append("When the caller speaks another of these languages, answer in it for the rest of the call. "
                         f"If they speak a language not listed, answer in {self.primary.language_name('en')}: "
                         f"\"{self.not_offered_line()}\"")
        if self.remembered is not None and self.remembered is not self.current:
            lines.append(f"This caller spoke {self.remembered.language_name('en')} on an earlier call.")
        return "\n".join(lines)

    def _instructions(self) -> str:
        return f"{self._base_instructions}\n\n{self.policy()}" if self._base_instructions else self.policy()

    def supervisor_note(self, *, with_tool: bool = False) -> str:
        """For the supervisor's instructions: the words it returns are spoken as they are, so they must be in
        the call's language. `with_tool`: the supervisor has `set_language` (GPT-Live, whose front model can't
        report the caller's language itself)."""
        note = (f"\n\nLanguage: this call is in {self.current.name('en')} [{self.current.code}]. Write every reply "
                f"in {self.current.language_name('en')}. Say dates and times as the tools word them "
                "(`when`, `free_starts_spoken`).")
        if with_tool:
            listed = ", ".join(f"{lang.language_name('en')} [{lang.base}]" for lang in self.offered)
            note += (f" This business offers {listed}. If the caller's last words are in another language than "
                     f"the call's, first call {SET_LANGUAGE_TOOL} with its ISO 639-1 code and follow what it returns.")
        return note

    def line(self, line: Line, **values: str) -> str:
        """A catalogue line in the call's current language."""
        return text(line, self.current, **values)

    def not_offered_line(self) -> str:
        """The polite answer, in the primary language, to a caller speaking a language not offered."""
        return text(Line.NOT_OFFERED, self.primary, languages=language_list(self.offered, self.primary))

    # -- switching ------------------------------------------------------------------------------------------
    def heard(self, event: dict[str, Any]) -> Events:
        """A completed caller transcription: the events to send when it shows the caller changed language."""
        detected = event.get("languages")
        if not isinstance(detected, list) or not detected or not isinstance(detected[0], dict):
            return []
        code = str(detected[0].get("code") or "")
        letters = sum(ch.isalnum() for ch in str(event.get("transcript") or ""))
        if not code or letters < MIN_LETTERS_TO_SWITCH:
            return []
        language = langs.match(self.offered, code)
        if language is None:
            return self._refuse(code, "transcription")
        if language is self.current:
            return []
        return self._switch(language, "transcription")

    def run_tool(self, arguments: str) -> tuple[dict[str, Any], Events]:
        """`set_language`: the tool's output for the model and the events to send before it."""
        try:
            spoken = str(json.loads(arguments or "{}").get("language") or "")
        except (ValueError, AttributeError):
            spoken = ""
        if not spoken:
            return {"ok": False, "error": "language is required (an ISO 639-1 code such as \"es\")"}, []
        language = langs.match(self.offered, spoken)
        if language is None:
            events = self._refuse(spoken, SET_LANGUAGE_TOOL)
            return ({"ok": False, "offered": [lang.code for lang in self.offered],
                     "message": self.not_offered_line(),
                     "note": f"Say the message exactly, in {self.primary.language_name('en')}, then offer to take a "
                             "message (name, number, what it is about)."}, events)
        events = [] if language is self.current else self._switch(language, SET_LANGUAGE_TOOL)
        return ({"ok": True, "language": language.code,
                 "note": f"Speak only {language.language_name('en')} from now on, for the rest of the call. "
                         "Answer the caller's last words now."}, events)

    def _switch(self, language: Language, source: str) -> Events:
        previous, self.current = self.current, language
        for listener in self._listeners:
            listener(language)
        if self._record is not None:
            self._record(EventKind.SYSTEM, f"language: {language.name('en')}",
                         {"language": language.code, "previous": previous.code, "source": source})
        if self._session is None:
            return []
        self._session["instructions"] = self._instructions()
        update = {"type": "realtime", "instructions": self._session["instructions"]}
        return [{"type": "session.update", "session": update}]

    def _refuse(self, spoken: str, source: str) -> Events:
        """A language the business doesn't offer: recorded once; the model is told what to say (the tool
        path returns it as the tool's output instead)."""
        base = langs.normalise_base(spoken)
        first = base not in self._refused
        self._refused.add(base)
        if first and self._record is not None:
            self._record(EventKind.SYSTEM, f"caller spoke a language not offered ({base})",
                         {"language_not_offered": base, "source": source})
        if source == SET_LANGUAGE_TOOL or not first:
            return []
        note = (f"(The caller is speaking a language this line does not offer. Answer in "
                f"{self.primary.language_name('en')} and say exactly: \"{self.not_offered_line()}\")")
        return [{"type": "conversation.item.create", "item": {
            "type": "message", "role": "system", "content": [{"type": "input_text", "text": note}]}}]
