"""Dates and times in a call's (or an owner's) language, with Babel's CLDR data.

The wall clock is always the business's time zone; only the wording follows the language: "Tuesday, May
5, 2026, 3:30 PM" for en-US, "martes, 5 de mayo de 2026, 3:30 p.m." for es-MX, "Dienstag, 5. Mai 2026,
15:30" for de-DE. The supervisor reads these to the caller, so they are the full forms (weekday, month
name), which speak well; pages and texts use the medium forms.

Written notifications (`written_datetime`, `written_date`) use CLDR's compact forms in every language but
English, whose texts keep the form they always had ("Mon 15 Mar at 10:00", "05 May 2026"): owners and
customers of English-speaking businesses see no change, and it is still Babel that writes it.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

from babel.dates import format_date, format_datetime, format_skeleton, format_time, get_datetime_format

from app.i18n.languages import Language, get


def _plain(words: str) -> str:
    # CLDR puts narrow and no-break spaces inside times ("3:30\u202fPM", "15\xa0h\xa030"): plain spaces read the
    # same aloud and keep a text message in the GSM alphabet (one such character makes it UCS-2, half as long).
    return words.replace("\u202f", " ").replace("\xa0", " ")


def spoken_datetime(moment: datetime, language: str | Language | None, tz: tzinfo) -> str:
    """A date and time to say to a caller, in their language, on the business's wall clock."""
    lang = get(language)
    local = moment.astimezone(tz)
    day = format_date(local.date(), "full", locale=lang.babel)
    clock = format_time(local.time(), "short", locale=lang.babel)
    return _plain(str(get_datetime_format("full", locale=lang.babel)).replace("{1}", day).replace("{0}", clock))


def spoken_date(day: date, language: str | Language | None) -> str:
    return _plain(str(format_date(day, "full", locale=get(language).babel)))


def spoken_time(moment: datetime, language: str | Language | None, tz: tzinfo) -> str:
    return _plain(str(format_time(moment.astimezone(tz).time(), "short", locale=get(language).babel)))


def short_datetime(moment: datetime, language: str | Language | None, tz: tzinfo) -> str:
    """A compact date and time for texts and pages ("Tue, May 5, 3:30 PM" / "mar, 5 de mayo, 15:30")."""
    lang = get(language)
    local = moment.astimezone(tz)
    day = format_skeleton("MMMEd", local, locale=lang.babel)
    clock = format_time(local.time(), "short", locale=lang.babel)
    return _plain(f"{day}, {clock}")


#: English notifications' own patterns (CLDR pattern syntax), unchanged since before languages existed
_ENGLISH_WRITTEN_DATETIME = "EEE dd MMM 'at' HH:mm"
_ENGLISH_WRITTEN_DATE = "dd MMM yyyy"


def written_datetime(moment: datetime, language: str | Language | None, tz: tzinfo) -> str:
    """An appointment's date and time in a notification or a text, on the business's wall clock."""
    lang = get(language)
    if lang.base == "en":
        return _plain(str(format_datetime(moment.astimezone(tz), _ENGLISH_WRITTEN_DATETIME, locale=lang.babel)))
    return short_datetime(moment, lang, tz)


def written_date(moment: datetime, language: str | Language | None, tz: tzinfo) -> str:
    """A day (a plan's renewal) in a notification: "05 May 2026" / "5 may 2026" / "05.05.2026"."""
    lang = get(language)
    day = moment.astimezone(tz).date()
    if lang.base == "en":
        return _plain(str(format_date(day, _ENGLISH_WRITTEN_DATE, locale=lang.babel)))
    return _plain(str(format_date(day, "medium", locale=lang.babel)))
