"""Issue 16, what the service writes, in the reader's language: the owner's notifications (every kind, email and
SMS) in the business's primary language, the customer's confirmation / reminder / cancellation texts in the
language the customer speaks, dates and times worded by Babel on the business's clock, and English exactly as
it was. Each non-English text is checked word by word against the English catalogue: an English word left in it
(other than names and the STOP keyword) fails the test."""

from __future__ import annotations

import re
import string
from datetime import datetime
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from app.db.models import Business, Call, Customer, Message, Notification
from app.i18n import lines
from app.i18n.dates import short_datetime, written_date, written_datetime
from app.i18n.languages import SUPPORTED
from app.i18n.texts import (
    CATALOGUE,
    CATALOGUE_LANGUAGES,
    COUNTED,
    END_REASONS,
    OUTCOME_LABELS,
    Counted,
    Written,
    counted,
)
from app.inbox import outcomes
from app.inbox.texts import Context, compose
from tests.support import written

BASE_URL = "https://app.example"
STARTS = "2027-03-15T15:00:00+00:00"  # 09:00 in Mexico City, 16:00 in Paris and Berlin, 12:00 in São Paulo
ZONES = {"en-US": "America/New_York", "es-MX": "America/Mexico_City", "fr-FR": "Europe/Paris",
         "de-DE": "Europe/Berlin", "pt-BR": "America/Sao_Paulo"}
NAMES = ("Casa Lupita", "Lupe Ortiz", "Corte", "Starter")


def _fields(words: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(words) if name}


def test_every_written_line_exists_in_every_offered_language_with_the_same_placeholders() -> None:
    assert CATALOGUE_LANGUAGES == lines.CATALOGUE_LANGUAGES
    assert {lang.base for lang in SUPPORTED.values()} <= set(CATALOGUE_LANGUAGES)
    assert set(CATALOGUE) == set(Written) and set(COUNTED) == set(Counted)
    tables: list[tuple[object, dict[str, str]]] = [*CATALOGUE.items(), *OUTCOME_LABELS.items(), *END_REASONS.items()]
    tables += [((what, form), {b: words[b][form] for b in words}) for what, words in COUNTED.items() for form in (0, 1)]
    for key, words in tables:
        assert set(words) == set(CATALOGUE_LANGUAGES), key
        english = _fields(words["en"])
        for base in CATALOGUE_LANGUAGES:
            assert words[base].strip(), (key, base)
            assert _fields(words[base]) == english, (key, base)
            # lines appended to a sentence start with its space; a prefix ("URGENT: ") ends with one
            assert words[base].startswith(" ") == words["en"].startswith(" "), (key, base)
            assert words[base].endswith(" ") == words["en"].endswith(" "), (key, base)
    # the outcome labels and end-reason words the owner reads are the ones app.inbox.outcomes knows
    assert set(OUTCOME_LABELS) == set(outcomes.LABELS) and set(END_REASONS) == set(outcomes.END_REASONS)
    # Twilio's opt-out handling acts on the English keyword, in every language
    assert all(re.search(r"\bSTOP\b", CATALOGUE[Written.OPT_OUT][base]) for base in CATALOGUE_LANGUAGES)


def english_words_in(text: str, base: str) -> set[str]:
    return written.english_words_in(text, base, NAMES)


def business(code: str, *others: str) -> Business:
    return Business(name="Casa Lupita", languages=[code, *others], timezone=ZONES.get(code, "America/New_York"),
                    phone_number="+15550001000")


def notification(event: str, channel: str = "email", audience: str = "owner", call_id: Any = None,
                 **details: Any) -> Notification:
    return Notification(event=event, channel=channel, recipient="owner@example.com", audience=audience,
                        call_id=call_id, appointment_id=uuid4() if "starts_at" in details else None,
                        details=details)


def owner_cases() -> list[tuple[str, dict[str, Any]]]:
    """(kind, Context fields) for every kind of owner notification."""
    call_id = uuid4()
    lupe = Customer(name="Lupe Ortiz", phone="+15557770101")
    booking = {"service": "Corte", "starts_at": STARTS, "customer_name": "Lupe Ortiz",
               "customer_phone": "+15557770101"}
    warning = {"used_minutes": 812.5, "included_minutes": 1000, "plan_name": "Starter",
               "period_end": "2026-12-01T00:00:00+00:00"}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("message", {"notification": notification("follow_up", call_id=call_id, outcomes=["message_taken"]),
                     "call": Call(id=call_id, outcomes=[], caller_phone="+15557770101"),
                     "messages": [Message(body="Quiere cambiar su cita", urgency="urgent", caller_name="Lupe Ortiz",
                                          caller_phone="+15557770101")]}),
        ("transfer failed", {"notification": notification("follow_up", call_id=call_id, outcomes=["transfer_failed"]),
                             "call": Call(id=call_id, outcomes=[])}),
        ("call back", {"notification": notification("follow_up", call_id=call_id, outcomes=["callback_requested"]),
                       "call": Call(id=call_id, outcomes=[], caller_phone="+15557770101"), "customer": lupe}),
        ("needs reply", {"notification": notification("follow_up", call_id=call_id,
                                                       outcomes=["question_answered", "hung_up_early"]),
                         "call": Call(id=call_id, outcomes=[], caller_phone="+15557770101")}),
        ("failed", {"notification": notification("call_failed", call_id=call_id, outcomes=["failed"]),
                    "call": Call(id=call_id, outcomes=[], caller_phone="+15557770101",
                                 end_reason="realtime_closed")}),
        ("failed, nobody", {"notification": notification("call_failed", call_id=call_id, outcomes=["failed"]),
                            "call": Call(id=call_id, outcomes=[], end_reason="limit_reached_voicemail")}),
        *((event, {"notification": notification(event, **booking), "customer": lupe})
          for event in ("booked", "rescheduled", "cancelled")),
        *((f"unreached: {kind} {code}", {"notification": notification(
            "outbound_unreached", reason="(English words for the record)", reason_code=code, kind=kind,
            purpose=purpose, customer_name=name, customer_phone="+15557770101", attempts=3, outcome=outcome)})
          for code, kind, purpose, name, outcome in (
              ("not_reached", "confirmation", "", "Lupe Ortiz", "no_answer"),
              ("not_reached", "callback", "Corte", "", "busy"),
              ("opted_out", "callback", "", "Lupe Ortiz", ""),
              ("not_on_record", "confirmation", "", "Lupe Ortiz", ""),
              ("no_business_number", "confirmation", "", "Lupe Ortiz", ""),
              ("minutes_used", "callback", "", "Lupe Ortiz", ""))),
        ("digest", {"notification": notification("digest"), "digest": {
            "calls": 1, "bookings": 2, "unread": 2, "follow_ups": 0, "cancellations": 1,
            "waiting": [("Lupe Ortiz", "Quiere cambiar su cita"), ("", "Corte")]}}),
        ("quiet digest", {"notification": notification("digest"), "digest": {
            "calls": 0, "bookings": 0, "unread": 0, "follow_ups": 1, "cancellations": 0, "waiting": []}}),
        *((f"usage {threshold} {limit} {forward}", {"notification": notification(
            "usage_warning", threshold=threshold, over_limit=limit, forward_to=forward, **warning)})
          for threshold in (80, 100) for limit in ("overage", "stop") for forward in (None, "+15559990000")),
        ("test", {"notification": notification("test")}),
    ]
    return cases


def render(biz: Business, fields: dict[str, Any], channel: str = "email") -> tuple[str, str]:
    fields["notification"].channel = channel
    text = compose(Context(business=biz, base_url=BASE_URL, **fields))
    return text.subject, text.body


@pytest.mark.parametrize("code", ["es-MX", "fr-FR", "de-DE", "pt-BR"])
@pytest.mark.parametrize("kind", [kind for kind, _ in owner_cases()])
def test_every_owner_notification_is_written_in_the_owners_language(code: str, kind: str) -> None:
    fields = dict(owner_cases())[kind]
    biz = business(code, "en-US")  # English is offered too: the owner still reads the primary language
    for channel in ("email", "sms"):
        subject, body = render(biz, fields, channel)
        whole = subject + "\n" + body
        assert "{" not in whole and "}" not in whole, whole  # every placeholder filled
        assert not english_words_in(whole, code[:2]), (english_words_in(whole, code[:2]), whole)
        assert "Casa Lupita" in whole and BASE_URL in whole
    if "starts_at" in (fields["notification"].details or {}):
        subject, _ = render(biz, fields, "email")
        when = short_datetime(datetime.fromisoformat(STARTS), code, ZoneInfo(ZONES[code]))
        assert when in subject and "Lupe Ortiz" in subject and "Corte" in subject


@pytest.mark.parametrize("code", ["es-MX", "fr-FR", "de-DE", "pt-BR"])
@pytest.mark.parametrize("event", ["confirm_booked", "confirm_rescheduled", "confirm_cancelled", "reminder"])
def test_every_customer_text_is_written_in_the_customers_language_and_keeps_stop(code: str, event: str) -> None:
    biz = business("en-US", code)  # the business's primary language is English; the customer spoke `code`
    customer = Customer(name="Lupe Ortiz", phone="+15557770101", language=code)
    for service in ("Corte", None):
        details = {"starts_at": STARTS, **({"service": service} if service else {})}
        _, body = render(biz, {"notification": notification(event, "sms", "caller", **details),
                               "customer": customer}, "sms")
        assert "{" not in body and "}" not in body and ".." not in body, body
        assert not english_words_in(body, code[:2]), (english_words_in(body, code[:2]), body)
        assert "Casa Lupita" in body and "+15550001000" in body and re.search(r"\bSTOP\b", body)
        assert short_datetime(datetime.fromisoformat(STARTS), code, ZoneInfo("America/New_York")) in body
        assert (service or "") in body


def test_english_notifications_are_worded_as_they_always_were() -> None:
    biz = business("en-US", "es-MX")
    cases = dict(owner_cases())
    assert render(biz, cases["booked"])[0] == ("[Casa Lupita] New booking: Corte, Mon 15 Mar at 11:00, for Lupe Ortiz "
                                               "(+15557770101)")
    assert render(biz, cases["digest"])[0] == "[Casa Lupita] Your day: 1 call, 2 new bookings"
    assert render(biz, cases["digest"])[1].splitlines()[1] == ("2 unread messages, 0 calls to follow up, "
                                                               "1 cancellation.")
    assert render(biz, cases["usage 100 stop None"])[0] == ("[Casa Lupita] All 1000 included minutes of your "
                                                            "Starter plan are used")
    assert "Your minutes renew on 30 Nov 2026." in render(biz, cases["usage 80 overage None"])[1]
    assert render(biz, cases["unreached: confirmation not_reached"])[1].splitlines()[1] == (
        "The confirmation call did not happen: not reached after 3 attempts (no answer).")
    customer = Customer(name="Lupe Ortiz", phone="+15557770101", language="en-US")
    assert render(biz, {"notification": notification("confirm_booked", "sms", "caller", service="Corte",
                                                     starts_at=STARTS), "customer": customer}, "sms")[1] == (
        "Casa Lupita: your Corte is booked for Mon 15 Mar at 11:00. To change or cancel it, call +15550001000. "
        "Reply STOP to opt out.")


def test_an_outbound_reason_without_a_code_keeps_the_words_it_was_stored_with() -> None:
    biz = business("es-MX")
    fields = {"notification": notification("outbound_unreached", reason="no answer", kind="callback",
                                            customer_name="Lupe Ortiz", customer_phone="+15557770101")}
    assert "no se hizo: no answer." in render(biz, fields)[1]
    fields["notification"].details = {**fields["notification"].details, "reason_code": "cant_call",
                                      "detail": "+44 numbers are not allowed"}
    assert "no se hizo: no se puede llamar al número: +44 numbers are not allowed." in render(biz, fields)[1]


def test_the_customer_is_written_to_in_the_language_they_speak_if_the_business_offers_it() -> None:
    def body(biz: Business, customer_language: str | None, call_language: str | None = None) -> str:
        call = Call(id=uuid4(), language=call_language) if call_language else None
        fields = {"notification": notification("confirm_booked", "sms", "caller", service="Corte", starts_at=STARTS),
                  "customer": Customer(name="Lupe", phone="+15557770101", language=customer_language), "call": call}
        return render(biz, fields, "sms")[1]

    assert "est réservé" in body(business("es-MX", "fr-FR"), "fr-FR")
    assert "está reservada" in body(business("es-MX"), "fr-FR")  # French not offered: the primary language
    assert "está reservada" in body(business("es-MX", "fr-FR"), None)
    # booked on a call held in German: German, though the customer spoke French last time
    assert "ist für" in body(business("es-MX", "fr-FR", "de-DE"), "fr-FR", "de-DE")


def test_the_owners_email_names_the_callers_language_in_the_owners_language() -> None:
    call_id = uuid4()
    fields = {"notification": notification("follow_up", call_id=call_id, outcomes=["callback_requested"]),
              "call": Call(id=call_id, language="fr-FR", summary="Quiere cambiar su cita.", outcomes=[],
                           caller_phone="+15557770101")}
    assert "Idioma: francés (Francia)" in render(business("es-MX", "fr-FR"), fields)[1]
    assert "Language: French (France)" in render(business("en-US", "fr-FR"), fields)[1]


def test_counts_follow_each_languages_plural_rules_and_number_format() -> None:
    assert [counted(Counted.CALLS, n, "en-US") for n in (0, 1, 2)] == ["0 calls", "1 call", "2 calls"]
    assert [counted(Counted.CALLS, n, "fr-FR") for n in (0, 1, 2)] == ["0 appel", "1 appel", "2 appels"]
    assert counted(Counted.CALLS, 1200, "de-DE") == "1.200 Anrufe"
    assert counted(Counted.CALLS, 1200, "en-US") == "1200 calls"  # as English always wrote it


def test_written_dates_are_babels_in_the_language_on_the_business_clock() -> None:
    moment = datetime.fromisoformat(STARTS)
    assert written_datetime(moment, "en-US", ZoneInfo("America/New_York")) == "Mon 15 Mar at 11:00"
    assert written_datetime(moment, "es-MX", ZoneInfo("America/Mexico_City")) == "lun 15 de mar, 9:00 a.m."
    assert written_datetime(moment, "de-DE", ZoneInfo("Europe/Berlin")) == "Mo., 15. März, 16:00"
    assert written_date(moment, "en-US", ZoneInfo("UTC")) == "15 Mar 2027"
    assert written_date(moment, "fr-FR", ZoneInfo("UTC")) == "15 mars 2027"
