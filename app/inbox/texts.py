"""The words of every notification: a two-line summary, who called, what to do, and a link to the call.

Composed when the notification is sent (not when it is queued), so an owner's email carries the call's
summary written after the call, and a caller's text the business's current name and number. Times are the
business's local wall clock.

Issue 16: the words come from the written-lines catalogue (`app.i18n.texts`), in the owner's language for the
owner (`languages.for_owner`: the business's primary one) and in the customer's for a customer
(`languages.for_customer`: the offered language they spoke on this call, else the one they last spoke, else
the primary); dates and times worded by Babel in that language (`app.i18n.dates`). What people said (the
call's summary, which is already written in the owner's language, a message, a purpose the owner typed) and
names stay as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.db.models import Appointment, Business, Call, Customer, Message, Notification
from app.i18n import languages
from app.i18n.dates import written_date, written_datetime
from app.i18n.languages import Language
from app.i18n.texts import Counted, Written, counted, number, text
from app.inbox.outcomes import CALLBACK_REQUESTED, TRANSFER_FAILED, end_reason_words, labels

OWNER_SMS_MAX = 600
# A time that ends in an abbreviation's full stop ("10:00 a.m.") at the end of a sentence gets one stop, not two.
_DOUBLE_STOP = re.compile(r"(?<!\.)\.\.(?!\.)")


def format_phone(phone: str) -> str:
    # E.164 as stored: unambiguous in any country, and phones and mail apps make it a link.
    return phone


@dataclass(slots=True)
class Context:
    notification: Notification
    business: Business
    base_url: str
    call: Call | None = None
    customer: Customer | None = None
    appointment: Appointment | None = None
    messages: list[Message] = field(default_factory=list)
    digest: dict[str, Any] = field(default_factory=dict)

    @property
    def owner_language(self) -> Language:
        return languages.for_owner(self.business.languages)

    @property
    def customer_language(self) -> Language:
        """The language to write to this customer in: the one they spoke on the notification's call (a
        booking made on a call is confirmed in the call's language, before the call's end records it on the
        customer), else the one they last spoke, else the business's primary language."""
        spoken = (self.call.language if self.call is not None else None) or (
            self.customer.language if self.customer is not None else None)
        return languages.for_customer(spoken, self.business.languages)

    @property
    def tz(self) -> Any:
        from app.inbox.outbox import business_tz

        return business_tz(self.business)

    def caller_name(self) -> str:
        details = self.notification.details or {}
        for name in (self.customer.name if self.customer else "",
                     *(m.caller_name for m in self.messages), details.get("customer_name", "")):
            if name:
                return str(name)
        return ""

    def caller_phone(self) -> str:
        details = self.notification.details or {}
        for phone in (self.customer.phone if self.customer else None, self.call.caller_phone if self.call else None,
                      *(m.caller_phone for m in self.messages), details.get("customer_phone")):
            if phone:
                return str(phone)
        return ""

    def who(self) -> str:
        name, phone = self.caller_name(), self.caller_phone()
        if name and phone:
            return f"{name} ({format_phone(phone)})"
        return name or (format_phone(phone) if phone else text(Written.A_CALLER, self.owner_language))

    def local(self, iso: str | None, language: Language | None = None) -> str:
        """A stored UTC moment on the business's clock, worded in `language` (default: the owner's)."""
        if not iso:
            return ""
        return written_datetime(datetime.fromisoformat(iso), language or self.owner_language, self.tz)

    def link(self) -> str:
        n = self.notification
        if n.call_id:
            return f"{self.base_url}/calls/{n.call_id}"
        if n.event == "digest":
            return f"{self.base_url}/"
        if n.event == "usage_warning":
            return f"{self.base_url}/billing"
        if n.event == "outbound_unreached":
            return f"{self.base_url}/outbound"
        if n.appointment_id:
            return f"{self.base_url}/appointments"
        return f"{self.base_url}/messages"


@dataclass(frozen=True, slots=True)
class Text:
    subject: str
    body: str


def _summary_line(ctx: Context, fallback: str) -> str:
    if ctx.call is not None and ctx.call.summary:
        return ctx.call.summary.strip()
    if ctx.messages:
        return "“" + ctx.messages[0].body.strip() + "”"
    return fallback


def _owner_parts(ctx: Context) -> tuple[str, str, str]:
    """(headline, summary, what to do) for the owner, in the owner's language."""
    n = ctx.notification
    lang = ctx.owner_language
    details = n.details or {}
    outcomes = set(details.get("outcomes") or (ctx.call.outcomes if ctx.call else []) or [])
    who = ctx.who()
    phone = ctx.caller_phone()
    if phone:
        name = ctx.caller_name()
        call_back = (text(Written.CALL_BACK_NAMED, lang, name=name, phone=format_phone(phone)) if name
                     else text(Written.CALL_BACK_THEM, lang, phone=format_phone(phone)))
    else:
        call_back = text(Written.NO_NUMBER, lang)
    if n.event == "follow_up":
        urgent = any(m.urgency == "urgent" for m in ctx.messages)
        if ctx.messages:
            headline = (text(Written.URGENT, lang) if urgent else "") + text(Written.LEFT_MESSAGE, lang, who=who)
        elif TRANSFER_FAILED in outcomes:
            headline = text(Written.NOBODY_REACHED, lang, who=who)
        elif CALLBACK_REQUESTED in outcomes:
            headline = text(Written.WANTS_CALLBACK, lang, who=who)
        else:
            headline = text(Written.NEEDS_REPLY, lang, who=who)
        fallback = ", ".join(labels(outcomes, lang)) or text(Written.SEE_THE_CALL, lang)
        return headline, _summary_line(ctx, fallback), call_back
    if n.event == "call_failed":
        reason = end_reason_words(ctx.call.end_reason if ctx.call else None, lang)
        headline = text(Written.CALL_FAILED, lang, who=who) + (f" ({reason})" if reason else "")
        return headline, _summary_line(ctx, text(Written.NOT_FINISHED, lang)), (
            call_back if phone else text(Written.CHECK_RECORD, lang))
    if n.event in {"booked", "rescheduled", "cancelled"}:
        service = details.get("service") or text(Written.APPOINTMENT, lang)
        when = ctx.local(details.get("starts_at"))
        head, by_phone, todo = {
            "booked": (Written.NEW_BOOKING, Written.BOOKED_BY_PHONE, Written.NOTHING_BOOKED),
            "rescheduled": (Written.BOOKING_MOVED, Written.RESCHEDULED_BY_PHONE, Written.NOTHING_BOOKED),
            "cancelled": (Written.BOOKING_CANCELLED, Written.CANCELLED_BY_PHONE, Written.NOTHING_FREE),
        }[n.event]
        return (text(head, lang, service=service, when=when, who=who),
                _summary_line(ctx, text(by_phone, lang)), text(todo, lang))
    if n.event == "outbound_unreached":  # issue 16: a call the receptionist was to make did not happen
        return _unreached_parts(ctx, lang)
    if n.event == "digest":
        d = ctx.digest
        headline = text(Written.DIGEST_HEAD, lang, calls=counted(Counted.CALLS, d.get("calls", 0), lang),
                        bookings=counted(Counted.NEW_BOOKINGS, d.get("bookings", 0), lang))
        summary = (f"{counted(Counted.UNREAD_MESSAGES, d.get('unread', 0), lang)}, "
                   f"{counted(Counted.CALLS_TO_FOLLOW_UP, d.get('follow_ups', 0), lang)}, "
                   f"{counted(Counted.CANCELLATIONS, d.get('cancellations', 0), lang)}.")
        todo = text(Written.READ_MESSAGES if d.get("unread") else Written.NOTHING_WAITING, lang)
        return headline, summary, todo
    if n.event == "usage_warning":
        return usage_warning_parts(ctx)
    if n.event == "test":
        return (text(Written.TEST_HEAD, lang), text(Written.TEST_SUMMARY, lang, business=ctx.business.name),
                text(Written.TEST_TODO, lang))
    return n.event, "", ""


#: `details["reason_code"]` of an outbound call that didn't happen (app.outbound.dialer) -> its words
_REASONS: dict[str, Written] = {
    "opted_out": Written.REASON_OPTED_OUT,
    "not_on_record": Written.REASON_NOT_ON_RECORD,
    "no_business_number": Written.REASON_NO_BUSINESS_NUMBER,
    "minutes_used": Written.REASON_MINUTES_USED,
    "not_reached": Written.REASON_NOT_REACHED,
    "cant_call": Written.REASON_CANT_CALL,
    "twilio_refused": Written.REASON_TWILIO_REFUSED,
}
_ATTEMPT_OUTCOMES: dict[str, Written] = {
    "no_answer": Written.ATTEMPT_NO_ANSWER, "busy": Written.ATTEMPT_BUSY, "failed": Written.ATTEMPT_FAILED,
}


def _unreached_reason(details: dict[str, Any], lang: Language) -> str:
    code = details.get("reason_code")
    if code not in _REASONS:
        # Stored before reasons had codes: the words the dialer wrote then (English).
        return str(details.get("reason") or text(Written.REASON_NO_ANSWER, lang))
    outcome = str(details.get("outcome") or "no_answer")
    outcome_words = text(_ATTEMPT_OUTCOMES[outcome], lang) if outcome in _ATTEMPT_OUTCOMES else outcome
    return text(_REASONS[code], lang, attempts=number(int(details.get("attempts") or 0), lang),
                outcome=outcome_words, detail=str(details.get("detail") or ""))


def _unreached_parts(ctx: Context, lang: Language) -> tuple[str, str, str]:
    details = ctx.notification.details or {}
    name = details.get("customer_name") or format_phone(details.get("customer_phone") or "")
    purpose = str(details.get("purpose") or "")
    if details.get("kind") == "confirmation":
        line = Written.UNREACHED_CONFIRMATION_ABOUT if purpose else Written.UNREACHED_CONFIRMATION
    else:
        line = Written.UNREACHED_CALLBACK_ABOUT if purpose else Written.UNREACHED_CALLBACK
    summary = text(line, lang, purpose=purpose, reason=_unreached_reason(details, lang))
    phone = details.get("customer_phone")
    todo = (text(Written.CALL_YOURSELF, lang, name=name, phone=format_phone(phone)) if phone
            else text(Written.SEE_CALLS_OUT, lang))
    return text(Written.UNREACHED, lang, name=name), summary, todo


def usage_warning_parts(ctx: Context) -> tuple[str, str, str]:
    """Issue 13's 80 % / 100 % warning: how much is used, and what happens next on this plan (overage billed,
    or calls forwarded to the owner / to voicemail), from the facts frozen when the threshold was crossed."""
    lang = ctx.owner_language
    d = ctx.notification.details or {}
    threshold, included = int(d.get("threshold", 0)), int(d.get("included_minutes", 0))
    used = float(d.get("used_minutes", 0))
    plan = str(d.get("plan_name") or text(Written.PLAN_FALLBACK, lang))
    overage = d.get("over_limit") == "overage"
    forward_to = d.get("forward_to")
    fallback = (text(Written.FORWARDED_TO, lang, phone=format_phone(str(forward_to))) if forward_to
                else text(Written.TO_VOICEMAIL, lang))
    renews = ""
    if d.get("period_end"):
        renews = text(Written.RENEWS, lang,
                      date=written_date(datetime.fromisoformat(str(d["period_end"])), lang, ctx.tz))
    if threshold >= 100:
        headline = text(Written.ALL_USED, lang, included=number(included, lang), plan=plan)
        if overage:
            return (headline, text(Written.STILL_ANSWERED_BILLED, lang, renews=renews),
                    text(Written.NOTHING_BIGGER, lang))
        return (headline, text(Written.FROM_NOW, lang, fallback=fallback, renews=renews),
                text(Written.UPGRADE_AGAIN, lang))
    headline = text(Written.USED_SHARE, lang, threshold=number(threshold, lang), plan=plan,
                    used=number(used, lang), included=number(included, lang))
    if overage:
        return headline, text(Written.OVERAGE_LATER, lang, renews=renews), text(Written.NOTHING_BIGGER, lang)
    return (headline, text(Written.FALLBACK_LATER, lang, fallback=fallback, renews=renews),
            text(Written.UPGRADE_KEEP, lang))


def _spoken_language(ctx: Context) -> str:
    """The language a call was held in, named in the owner's language, when it isn't the business's main one
    (the summary is in the main one)."""
    if ctx.call is None or not ctx.call.language:
        return ""
    main = ctx.owner_language
    spoken = languages.get(ctx.call.language)
    return spoken.name(main.code) if spoken.base != main.base else ""


def _digest_lines(ctx: Context) -> list[str]:
    """The unread messages listed under the digest: who (or "A caller") and the first words they left."""
    waiting = ctx.digest.get("waiting") or []
    if not waiting:
        return []
    lang = ctx.owner_language
    return [text(Written.UNREAD_HEADING, lang),
            *(f"- {who or text(Written.A_CALLER, lang)}: {body}" for who, body in waiting)]


def owner_text(ctx: Context) -> Text:
    headline, summary, todo = _owner_parts(ctx)
    lang = ctx.owner_language
    link = ctx.link()
    if ctx.notification.channel == "sms":
        body = f"{ctx.business.name}: {headline}. {summary} {todo} {link}"
        if len(body) > OWNER_SMS_MAX:
            room = OWNER_SMS_MAX - len(link) - 2
            body = body[: max(0, room)].rstrip() + "… " + link
        return Text(subject="", body=body)
    lines = [headline, summary, ""]
    if ctx.notification.event not in {"digest", "test", "usage_warning"}:
        lines.append(text(Written.CALLER_LINE, lang, who=ctx.who()))
        spoken = _spoken_language(ctx)
        if spoken:
            lines.append(text(Written.LANGUAGE_LINE, lang, language=spoken))  # issue 16: call them back in it
    lines += [text(Written.WHAT_TO_DO, lang, todo=todo),
              text(Written.CALL_LINK if ctx.notification.call_id else Written.OPEN_LINK, lang, link=link)]
    digest_lines = _digest_lines(ctx)
    if digest_lines:
        lines += ["", *digest_lines]
    return Text(subject=f"[{ctx.business.name}] {headline}", body="\n".join(lines) + "\n")


_CALLER_TEXTS: dict[str, Written] = {
    "confirm_booked": Written.CONFIRM_BOOKED,
    "confirm_rescheduled": Written.CONFIRM_RESCHEDULED,
    "confirm_cancelled": Written.CONFIRM_CANCELLED,
    "reminder": Written.REMINDER,
}


def caller_text(ctx: Context) -> Text:
    """A caller's confirmation or reminder, in their language: business name, local date and time, how to
    change it, and how to stop texts (the keyword STOP in every language)."""
    n = ctx.notification
    lang = ctx.customer_language
    details = n.details or {}
    service = details.get("service")
    your_service = (text(Written.YOUR_SERVICE, lang, service=service) if service
                    else text(Written.YOUR_APPOINTMENT, lang))
    when = ctx.local(details.get("starts_at"), lang)
    number_ = format_phone(ctx.business.phone_number) if ctx.business.phone_number else ""
    line = _CALLER_TEXTS.get(n.event)
    if line is None:
        body = f"{ctx.business.name}: {n.event}"
    else:
        body = text(line, lang, business=ctx.business.name, your_service=your_service, when=when)
        if number_:
            body += text(Written.TO_BOOK_AGAIN if n.event == "confirm_cancelled" else Written.TO_CHANGE, lang,
                         number=number_)
    return Text(subject="", body=_DOUBLE_STOP.sub(".", body + text(Written.OPT_OUT, lang)))


def compose(ctx: Context) -> Text:
    return caller_text(ctx) if ctx.notification.audience == "caller" else owner_text(ctx)
