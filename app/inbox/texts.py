"""The words of every notification: a two-line summary, who called, what to do, and a link to the call.

Composed when the notification is sent (not when it is queued), so an owner's email carries the call's
summary written after the call, and a caller's text the business's current name and number. Times are the
business's local wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.db.models import Appointment, Business, Call, Customer, Message, Notification
from app.i18n import languages
from app.inbox.outcomes import CALLBACK_REQUESTED, TRANSFER_FAILED, end_reason_words, labels

OWNER_SMS_MAX = 600


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
        return name or (format_phone(phone) if phone else "A caller")

    def local(self, iso: str | None) -> str:
        if not iso:
            return ""
        return datetime.fromisoformat(iso).astimezone(self.tz).strftime("%a %d %b at %H:%M")

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


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary_line(ctx: Context, fallback: str) -> str:
    if ctx.call is not None and ctx.call.summary:
        return ctx.call.summary.strip()
    if ctx.messages:
        return "“" + ctx.messages[0].body.strip() + "”"
    return fallback


def _owner_parts(ctx: Context) -> tuple[str, str, str]:
    """(headline, summary, what to do) for the owner."""
    n = ctx.notification
    details = n.details or {}
    outcomes = set(details.get("outcomes") or (ctx.call.outcomes if ctx.call else []) or [])
    who = ctx.who()
    phone = ctx.caller_phone()
    call_back = f"Call {ctx.caller_name() or 'them'} back on {format_phone(phone)}." if phone else (
        "They left no number: see the call for details.")
    if n.event == "follow_up":
        urgent = any(m.urgency == "urgent" for m in ctx.messages)
        if ctx.messages:
            headline = f"{'URGENT: ' if urgent else ''}{who} left a message"
        elif TRANSFER_FAILED in outcomes:
            headline = f"{who} asked for a person, but nobody could be reached"
        elif CALLBACK_REQUESTED in outcomes:
            headline = f"{who} asked to be called back"
        else:
            headline = f"{who} needs a reply"
        return headline, _summary_line(ctx, ", ".join(labels(outcomes)) or "See the call."), call_back
    if n.event == "call_failed":
        reason = end_reason_words(ctx.call.end_reason if ctx.call else None)
        headline = f"A call from {who} failed" + (f" ({reason})" if reason else "")
        return headline, _summary_line(ctx, "The receptionist could not finish the call."), (
            call_back if phone else "Check the call record; the caller may not have been helped.")
    if n.event in {"booked", "rescheduled", "cancelled"}:
        service = details.get("service", "Appointment")
        when = ctx.local(details.get("starts_at"))
        headline = {
            "booked": f"New booking: {service}, {when}, for {who}",
            "rescheduled": f"Booking moved: {service} now {when}, for {who}",
            "cancelled": f"Booking cancelled: {service}, {when}, for {who}",
        }[n.event]
        summary = _summary_line(ctx, f"{'Booked' if n.event == 'booked' else n.event.capitalize()} by phone.")
        todo = "Nothing: it is in your appointments." if n.event != "cancelled" else (
            "Nothing: the time is free again.")
        return headline, summary, todo
    if n.event == "outbound_unreached":  # issue 16: a call the receptionist was to make did not happen
        name = details.get("customer_name") or format_phone(details.get("customer_phone") or "")
        what = "confirmation call" if details.get("kind") == "confirmation" else "callback"
        about = f" about {details['purpose']}" if details.get("purpose") else ""
        headline = f"The receptionist could not reach {name}"
        summary = f"The {what}{about} did not happen: {details.get('reason', 'no answer')}."
        phone = details.get("customer_phone")
        return headline, summary, (f"Call {name} yourself on {format_phone(phone)}." if phone else
                                   "See Calls out for details.")
    if n.event == "digest":
        d = ctx.digest
        headline = f"Your day: {_n(d.get('calls', 0), 'call')}, {_n(d.get('bookings', 0), 'new booking')}"
        summary = (f"{_n(d.get('unread', 0), 'unread message')}, {_n(d.get('follow_ups', 0), 'call')} to follow up, "
                   f"{_n(d.get('cancellations', 0), 'cancellation')}.")
        todo = "Read your messages." if d.get("unread") else "Nothing waiting."
        return headline, summary, todo
    if n.event == "usage_warning":
        return usage_warning_parts(ctx)
    if n.event == "test":
        return ("Test notification", f"Notifications from {ctx.business.name}'s receptionist reach you here.",
                "Nothing: this was a test.")
    return n.event, "", ""


def usage_warning_parts(ctx: Context) -> tuple[str, str, str]:
    """Issue 13's 80 % / 100 % warning: how much is used, and what happens next on this plan (overage billed,
    or calls forwarded to the owner / to voicemail), from the facts frozen when the threshold was crossed."""
    d = ctx.notification.details or {}
    threshold, included = int(d.get("threshold", 0)), int(d.get("included_minutes", 0))
    used, plan = float(d.get("used_minutes", 0)), str(d.get("plan_name") or "your plan")
    overage = d.get("over_limit") == "overage"
    forward_to = d.get("forward_to")
    fallback = (f"forwarded to your transfer number {format_phone(str(forward_to))}" if forward_to
                else "sent to voicemail (set a transfer number in Settings to have them forwarded to you)")
    renews = ""
    if d.get("period_end"):
        renews = f" Your minutes renew on {datetime.fromisoformat(str(d['period_end'])).astimezone(ctx.tz):%d %b %Y}."
    if threshold >= 100:
        headline = f"All {included} included minutes of your {plan} plan are used"
        if overage:
            return (headline, f"Calls are still answered by the receptionist; every further minute is billed as "
                              f"overage.{renews}", "Nothing, unless you want a bigger plan: see Billing.")
        return (headline, f"From now on calls are {fallback} instead of answered by the receptionist.{renews}",
                "Upgrade on the Billing page to have the receptionist answer again.")
    headline = f"You have used {threshold} % of your {plan} plan's minutes ({used:g} of {included})"
    if overage:
        return (headline, f"When they run out, calls are still answered and extra minutes are billed as "
                          f"overage.{renews}", "Nothing, unless you want a bigger plan: see Billing.")
    return (headline, f"When they run out, calls will be {fallback} instead of answered by the receptionist."
                      f"{renews}", "Upgrade on the Billing page to keep the receptionist answering.")


def _spoken_language(ctx: Context) -> str:
    """The language a call was held in, when it isn't the business's main one (the summary is in the main one)."""
    if ctx.call is None or not ctx.call.language:
        return ""
    main = languages.offered(ctx.business.languages)[0]
    spoken = languages.get(ctx.call.language)
    return spoken.name("en") if spoken.base != main.base else ""


def owner_text(ctx: Context) -> Text:
    headline, summary, todo = _owner_parts(ctx)
    link = ctx.link()
    if ctx.notification.channel == "sms":
        body = f"{ctx.business.name}: {headline}. {summary} {todo} {link}"
        if len(body) > OWNER_SMS_MAX:
            room = OWNER_SMS_MAX - len(link) - 2
            body = body[: max(0, room)].rstrip() + "… " + link
        return Text(subject="", body=body)
    lines = [headline, summary, ""]
    if ctx.notification.event not in {"digest", "test", "usage_warning"}:
        lines.append(f"Caller: {ctx.who()}")
        spoken = _spoken_language(ctx)
        if spoken:
            lines.append(f"Language: {spoken}")  # issue 16: call them back in it
    lines += [f"What to do: {todo}", f"Call: {link}" if ctx.notification.call_id else f"Open: {link}"]
    if ctx.digest.get("lines"):
        lines += ["", *ctx.digest["lines"]]
    return Text(subject=f"[{ctx.business.name}] {headline}", body="\n".join(lines) + "\n")


def caller_text(ctx: Context) -> Text:
    """A caller's confirmation or reminder: business name, local date and time, how to change it."""
    n = ctx.notification
    details = n.details or {}
    service = details.get("service", "appointment")
    when = ctx.local(details.get("starts_at"))
    number = format_phone(ctx.business.phone_number) if ctx.business.phone_number else ""
    change = f" To change or cancel it, call {number}." if number else ""
    body = {
        "confirm_booked": f"{ctx.business.name}: your {service} is booked for {when}.{change}",
        "confirm_rescheduled": f"{ctx.business.name}: your {service} has moved to {when}.{change}",
        "confirm_cancelled": f"{ctx.business.name}: your {service} on {when} is cancelled."
        + (f" To book again, call {number}." if number else ""),
        "reminder": f"Reminder from {ctx.business.name}: your {service} is tomorrow, {when}.{change}",
    }.get(n.event, f"{ctx.business.name}: {n.event}")
    return Text(subject="", body=body + " Reply STOP to opt out.")


def compose(ctx: Context) -> Text:
    return caller_text(ctx) if ctx.notification.audience == "caller" else owner_text(ctx)
