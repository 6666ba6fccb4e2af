"""Issue 16, the sharp logic of languages: the catalogue (every line in every offered language, Twilio voice and
language pairs that Twilio accepts), the owner's choice, dates and times in each locale, and one call's
language state (switching on a transcript or the model's tool, refusing a language not offered)."""

from __future__ import annotations

import json
import re
import string
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.i18n import languages
from app.i18n.dates import short_datetime, spoken_datetime
from app.i18n.languages import SUPPORTED, LanguageError, validate
from app.i18n.lines import CATALOGUE, CATALOGUE_LANGUAGES, Line, language_list, text
from app.telephony import fallback, twiml
from app.voice.language import SET_LANGUAGE_TOOL, CallLanguage
from app.voice.summary import owner_language_note

# Twilio's <Say> voices (Amazon Polly neural, as Twilio names them) and the one locale each speaks, from Twilio's
# text-to-speech voice list / Amazon Polly's "available voices" table: written out here, apart from the app's own
# table, so a wrong pairing there fails.
TWILIO_POLLY_NEURAL = {
    "Polly.Joanna-Neural": "en-US", "Polly.Matthew-Neural": "en-US", "Polly.Salli-Neural": "en-US",
    "Polly.Amy-Neural": "en-GB", "Polly.Brian-Neural": "en-GB", "Polly.Emma-Neural": "en-GB",
    "Polly.Mia-Neural": "es-MX", "Polly.Andres-Neural": "es-MX",
    "Polly.Lupe-Neural": "es-US", "Polly.Pedro-Neural": "es-US",
    "Polly.Lucia-Neural": "es-ES", "Polly.Sergio-Neural": "es-ES",
    "Polly.Lea-Neural": "fr-FR", "Polly.Remi-Neural": "fr-FR",
    "Polly.Gabrielle-Neural": "fr-CA", "Polly.Liam-Neural": "fr-CA",
    "Polly.Vicki-Neural": "de-DE", "Polly.Daniel-Neural": "de-DE",
    "Polly.Camila-Neural": "pt-BR", "Polly.Vitoria-Neural": "pt-BR", "Polly.Thiago-Neural": "pt-BR",
    "Polly.Ines-Neural": "pt-PT",
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


# -- the catalogue ----------------------------------------------------------------------------------------------
def test_every_line_exists_in_every_offered_language_with_the_same_placeholders() -> None:
    assert {lang.base for lang in SUPPORTED.values()} <= set(CATALOGUE_LANGUAGES)
    assert set(CATALOGUE) == set(Line)
    for line, words in CATALOGUE.items():
        assert set(words) == set(CATALOGUE_LANGUAGES), line
        english = set(PLACEHOLDER.findall(words["en"]))
        for base, sentence in words.items():
            assert sentence.strip() == sentence and sentence, (line, base)
            assert set(PLACEHOLDER.findall(sentence)) == english, (line, base)
            # every field is a named placeholder (str.format would choke on stray braces)
            assert all(name for _lit, name, _spec, _conv in string.Formatter().parse(sentence) if name is not None)
        # a line said in another language must not be the English one copied over
        assert len({words[b] for b in CATALOGUE_LANGUAGES}) == len(CATALOGUE_LANGUAGES), line


def test_each_language_is_read_by_a_twilio_voice_of_that_exact_locale() -> None:
    for code, lang in SUPPORTED.items():
        assert TWILIO_POLLY_NEURAL.get(lang.twilio_voice) == code, code
        assert lang.twilio_language == code


@pytest.mark.parametrize("code", sorted(SUPPORTED))
def test_fallback_twiml_speaks_the_call_language_with_its_voice(code: str) -> None:
    business = SimpleNamespace(languages=["en-US", code] if not code.startswith("en") else [code],
                               phone_number="+15550001000")
    for document in (
        fallback.fallback_twiml(business, "ai_lost", base_url="https://x.example", forward_to="+15557654321",
                                language=code),
        fallback.voicemail_twiml(business, "ai_lost", base_url="https://x.example", language=code),
        fallback.thanks_twiml(business, code),
    ):
        says = ET.fromstring(document).findall("Say")
        assert says, document
        for say in says:
            assert (say.get("voice"), say.get("language")) == (SUPPORTED[code].twilio_voice, code)
    voicemail = ET.fromstring(fallback.voicemail_twiml(business, "ai_lost", base_url="https://x.example",
                                                       language=code))
    assert voicemail.find("Say").text == f"{text(Line.VOICEMAIL_TROUBLE, code)} {text(Line.VOICEMAIL_PROMPT, code)}"


def test_a_fallback_never_speaks_a_language_the_business_does_not_offer() -> None:
    business = SimpleNamespace(languages=["fr-CA", "en-US"], phone_number=None)
    document = ET.fromstring(fallback.voicemail_twiml(business, "ai_unavailable", base_url="https://x.example",
                                                      language="de-DE"))
    assert document.find("Say").get("language") == "fr-CA"  # not offered: the primary language
    assert document.find("Say").text.startswith(text(Line.NOBODY_AVAILABLE, "fr-CA"))
    # The apology after <Connect> is fixed when the call is answered: the primary language.
    stream = ET.fromstring(twiml.connect_stream("wss://x.example/twilio/media", "tok", "fr-CA"))
    assert stream.find("Say").text == text(Line.CUT_OFF, "fr-CA") and stream.find("Say").get("voice") == \
        "Polly.Gabrielle-Neural"


# -- the owner's choice -----------------------------------------------------------------------------------------
def test_languages_are_validated_primary_first_one_locale_per_language() -> None:
    assert validate("es-MX", ["en-US", "es-MX", "fr-FR"]) == ["es-MX", "en-US", "fr-FR"]
    with pytest.raises(LanguageError, match="same language"):
        validate("es-MX", ["es-ES"])
    with pytest.raises(LanguageError, match="not a language"):
        validate("en-US", ["it-IT"])
    with pytest.raises(LanguageError, match="main language"):
        validate("xx", [])
    assert [lang.code for lang in languages.offered(["nope", "de-DE"])] == ["de-DE"]
    assert [lang.code for lang in languages.offered([])] == ["en-US"]


def test_what_a_model_reports_matches_an_offered_language() -> None:
    offered = languages.offered(["en-US", "es-MX"])
    for spoken in ("es", "es-419", "spa", "Spanish", "español", "ES-mx"):
        assert languages.match(offered, spoken) is SUPPORTED["es-MX"], spoken
    assert languages.match(offered, "ja") is None and languages.match(offered, "Japanese") is None
    assert language_list(offered, "es-MX") == "inglés y español"
    assert language_list(offered, "en-US") == "English and Spanish"


# -- dates and times --------------------------------------------------------------------------------------------
def test_times_are_worded_in_the_callers_language_on_the_business_clock() -> None:
    moment = datetime(2026, 5, 5, 19, 30, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")
    assert spoken_datetime(moment, "en-US", new_york) == "Tuesday, May 5, 2026, 3:30 PM"
    assert spoken_datetime(moment, "es-MX", new_york) == "martes, 5 de mayo de 2026, 3:30 p.m."
    assert spoken_datetime(moment, "es-ES", new_york) == "martes, 5 de mayo de 2026, 15:30"
    assert spoken_datetime(moment, "de-DE", new_york) == "Dienstag, 5. Mai 2026, 15:30"
    assert spoken_datetime(moment, "fr-FR", new_york) == "mardi 5 mai 2026, 15:30"
    assert spoken_datetime(moment, "pt-BR", new_york).startswith("terça-feira, 5 de maio de 2026")
    assert short_datetime(moment, "en-US", new_york) == "Tue, May 5, 3:30 PM"
    assert short_datetime(moment, "de-DE", new_york) == "Di., 5. Mai, 15:30"


def test_the_wall_clock_follows_daylight_saving_in_every_language() -> None:
    london = ZoneInfo("Europe/London")
    winter, summer = datetime(2026, 3, 28, 10, 0, tzinfo=UTC), datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    assert spoken_datetime(winter, "en-GB", london).endswith("10:00")
    assert spoken_datetime(summer, "en-GB", london).endswith("11:00")  # BST from 29 March
    assert spoken_datetime(summer, "fr-FR", london) == "lundi 30 mars 2026, 11:00"


# -- one call's language ----------------------------------------------------------------------------------------
def _session() -> dict[str, Any]:
    return {"type": "realtime", "instructions": "You are the receptionist.", "tools": [],
            "audio": {"input": {"transcription": {"model": "gpt-transcribe"}}}}


def _call(stored: list[str], model: str = "gpt-transcribe") -> tuple[CallLanguage, list[tuple[str, dict]], list[str]]:
    language = CallLanguage.for_business(stored, transcription_model=model)
    recorded: list[tuple[str, dict]] = []
    followed: list[str] = []
    language.record_with(lambda _kind, words, data: recorded.append((words, data)))
    language.on_change(lambda lang: followed.append(lang.code))
    return language, recorded, followed


def test_a_transcript_in_an_offered_language_switches_the_call_and_its_session() -> None:
    language, recorded, followed = _call(["en-US", "es-MX"])
    session = language.configure(_session())
    assert session["tools"][-1]["name"] == SET_LANGUAGE_TOOL
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-transcribe", "languages": ["en", "es"]}
    assert "Speak English (United States)" in session["instructions"]
    heard = {"transcript": "Hola, quisiera una cita", "languages": [{"code": "es"}]}
    [update] = language.heard(heard)
    assert update["type"] == "session.update" and "speak only Spanish" in update["session"]["instructions"]
    assert session["instructions"] == update["session"]["instructions"]  # what a reconnect restores
    assert language.current.code == "es-MX" and followed == ["en-US", "es-MX"]
    assert recorded == [("language: Spanish (Mexico)", {"language": "es-MX", "previous": "en-US",
                                                       "source": "transcription"})]
    assert language.line(Line.TROUBLE) == text(Line.TROUBLE, "es-MX")
    assert "Write every reply in Spanish" in language.supervisor_note()
    assert language.heard(heard) == []  # already Spanish
    assert language.heard({"transcript": "Sí", "languages": [{"code": "en"}]}) == []  # too short to tell


def test_a_transcript_in_a_language_not_offered_gets_the_primary_language_line_once() -> None:
    language, recorded, _followed = _call(["en-US", "es-MX"])
    language.configure(_session())
    [item] = language.heard({"transcript": "こんにちは 予約 したい です", "languages": [{"code": "ja"}]})
    note = item["item"]["content"][0]["text"]
    assert item["item"]["role"] == "system" and text(Line.NOT_OFFERED, "en-US", languages="English and Spanish") in note
    assert language.current.code == "en-US"
    assert recorded == [("caller spoke a language not offered (ja)", {"language_not_offered": "ja",
                                                                      "source": "transcription"})]
    assert language.heard({"transcript": "もう 一度 お願い します", "languages": [{"code": "ja"}]}) == []


def test_the_set_language_tool_switches_or_refuses() -> None:
    language, recorded, followed = _call(["de-DE", "fr-FR"], model="gpt-4o-mini-transcribe")
    session = language.configure(_session())
    assert "languages" not in session["audio"]["input"]["transcription"]  # this model can't detect
    output, events = language.run_tool(json.dumps({"language": "fr"}))
    assert output["ok"] and output["language"] == "fr-FR" and events[0]["type"] == "session.update"
    assert followed == ["de-DE", "fr-FR"] and recorded[0][1]["source"] == SET_LANGUAGE_TOOL
    refused, events = language.run_tool(json.dumps({"language": "it"}))
    assert not refused["ok"] and events == [] and language.current.code == "fr-FR"
    assert refused["message"] == text(Line.NOT_OFFERED, "de-DE", languages="Deutsch und Französisch")
    assert refused["message"].startswith("Es tut mir leid")
    missing, _ = language.run_tool("{}")
    assert not missing["ok"]


def test_one_language_only_names_it_for_the_transcription_and_never_switches() -> None:
    language, _recorded, _followed = _call(["pt-BR"])
    session = language.configure(_session())
    assert session["audio"]["input"]["transcription"]["language"] == "pt"
    assert language.heard({"transcript": "Hello I would like to book", "languages": [{"code": "en"}]})[0]["item"]


def test_the_summary_is_written_in_the_owners_language() -> None:
    assert owner_language_note(["de-DE", "es-MX"], "es-MX") == (" Write it in German; the call was in Spanish, so "
                                                                "translate what was said.")
    assert owner_language_note(["en-US"], "en-US") == " Write it in English."
    assert owner_language_note(None, None) == " Write it in English."


def test_the_owners_email_says_which_language_the_caller_spoke() -> None:
    from uuid import uuid4

    from app.db.models import Business, Call, Notification
    from app.inbox.texts import Context, owner_text

    business = Business(name="Casa Lupita", languages=["en-US", "es-MX"])
    call_id = uuid4()
    notification = Notification(event="follow_up", channel="email", recipient="o@example.com", call_id=call_id,
                                details={"outcomes": ["callback_requested"]})
    spanish = Call(id=call_id, language="es-MX", summary="Lupe wants to move her haircut.", outcomes=[],
                   caller_phone="+15557770101")
    body = owner_text(Context(notification=notification, business=business, base_url="https://x.example",
                              call=spanish)).body
    assert "Lupe wants to move her haircut." in body and "Language: Spanish (Mexico)" in body
    english = Call(id=call_id, language="en-US", summary="Wants a call back.", outcomes=[], caller_phone="+1555")
    assert "Language:" not in owner_text(Context(notification=notification, business=business,
                                                 base_url="https://x.example", call=english)).body
