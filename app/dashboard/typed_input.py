"""What owners type into the business form, understood the way they meant it: hours, prices, durations, zones.

Each parser returns a clean value or raises `InputError` with a sentence the owner can act on. The rules for
hours written without am/pm follow how shops write them on a door: "9-5" is 09:00-17:00, "9-12, 1-5" is
09:00-12:00 and 13:00-17:00. A close before the open is an error unless the owner says "overnight", so
"17:00-09:00" is never silently read as a night shift. Stored hours keep the model's convention (a close at
or before the open runs past midnight); `format_hours` writes those back with "overnight" so a form that is
saved again unchanged means the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from zoneinfo import available_timezones

from app.db.hours import WEEKDAYS
from app.i18n.text import Text, message_of, tr

#: the days as the owner's pages name them (app.db.hours.WEEKDAY_NAMES stays English: the prompt reads it)
DAY_WORDS: dict[str, Text] = {"mon": tr("Monday"), "tue": tr("Tuesday"), "wed": tr("Wednesday"),
                              "thu": tr("Thursday"), "fri": tr("Friday"), "sat": tr("Saturday"), "sun": tr("Sunday")}


class InputError(ValueError):
    pass


_CLOSED = {"", "closed", "-", "none", "no", "off", "shut"}
_OVERNIGHT = re.compile(r"\s*(?:\(?\s*(?:overnight|next\s+day)\s*\)?|\+1)\s*$", re.IGNORECASE)
_SPLIT_RANGE = re.compile(r"\s*(?:-|–|—|\bto\b|\buntil\b|\btill\b)\s*", re.IGNORECASE)
_CLOCK = re.compile(
    r"^(?P<h>\d{1,2})(?:[:.h](?P<m>\d{2}))?\s*(?P<mer>a\.?m?\.?|p\.?m?\.?)?$|^(?P<hm>\d{3,4})$", re.IGNORECASE
)
_WORDS = {"noon": (12 * 60, True), "midday": (12 * 60, True), "midnight": (0, True)}


@dataclass(frozen=True, slots=True)
class _Clock:
    minutes: int  # 0..1439 as written, or an ambiguous 1..12 o'clock (resolved against the other end)
    explicit: bool  # 24-hour form, am/pm or a word: no guessing
    midnight: bool = False
    clock24: bool = False  # written on the 24-hour clock (13:00, 07:00): the other end is read that way too


def _clock(token: str) -> _Clock:
    text = token.strip().lower()
    if text in _WORDS:
        minutes, explicit = _WORDS[text]
        return _Clock(minutes, explicit, midnight=text == "midnight")
    match = _CLOCK.match(text)
    if not match:
        raise InputError(tr("couldn't read the time %(text)s", text=repr(token.strip())))
    if match.group("hm"):
        digits = match.group("hm").zfill(4)
        hour, minute, meridiem, padded = int(digits[:2]), int(digits[2:]), None, True
    else:
        hour, minute = int(match.group("h")), int(match.group("m") or 0)
        meridiem = (match.group("mer") or "")[:1] or None
        padded = match.group("h").startswith("0") and len(match.group("h")) == 2
    if minute > 59:
        raise InputError(tr("%(text)s has more than 59 minutes", text=repr(token.strip())))
    if meridiem:
        if not 1 <= hour <= 12:
            raise InputError(tr("%(text)s: with am/pm the hour is 1 to 12", text=repr(token.strip())))
        hour = hour % 12 + (12 if meridiem == "p" else 0)
        return _Clock(hour * 60 + minute, True, midnight=hour == 0 and minute == 0)
    if hour == 24 and minute == 0:
        return _Clock(0, True, midnight=True)
    if hour > 23:
        raise InputError(tr("%(text)s is not a time of day", text=repr(token.strip())))
    # 0:xx, 13:xx-23:xx and zero-padded 07:00 are plainly the 24-hour clock; 1-12 could be either half.
    explicit = padded or hour == 0 or hour > 12
    return _Clock(hour * 60 + minute, explicit, midnight=hour == 0 and minute == 0, clock24=explicit)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _resolve(opening: _Clock, closing: _Clock, overnight: bool) -> tuple[int, int]:
    """Minutes since midnight for both ends; a close of 1440 is midnight at the end of the day."""
    if opening.explicit:
        start = opening.minutes
    elif closing.explicit and closing.minutes >= 12 * 60 and opening.minutes % 720 + 720 < closing.minutes:
        start = opening.minutes % 720 + 720  # "1-5pm": the open takes the close's afternoon
    else:
        # A bare 1-6 opening is a shop's afternoon ("1-5"); 7-11 a morning; 12 is noon.
        hour = opening.minutes // 60
        start = opening.minutes + (720 if 1 <= hour <= 6 else 0)
        if hour == 12:
            start = opening.minutes
    if closing.midnight:
        end = 1440 if not overnight else 0
    elif closing.explicit or opening.clock24:
        end = closing.minutes
    else:
        # A bare close is the first reading after the open ("9-5" is 17:00, "9-12" noon), else as written.
        morning = closing.minutes % 720
        candidates = [morning, morning + 720]
        later = [c for c in candidates if c > start]
        end = later[0] if later and not overnight else (candidates[0] if overnight else closing.minutes)
    return start, end


def parse_day_hours(text: str) -> list[tuple[int, int, bool]]:
    """Ranges as (open, close, overnight) in minutes; `close` is on the next day when `overnight`."""
    if text.strip().lower() in _CLOSED:
        return []
    out: list[tuple[int, int, bool]] = []
    for part in re.split(r"\s*(?:,|;|\band\b|&)\s*", text.strip(), flags=re.IGNORECASE):
        if not part:
            continue
        overnight = bool(_OVERNIGHT.search(part))
        body = _OVERNIGHT.sub("", part)
        ends = [e for e in _SPLIT_RANGE.split(body) if e]
        if len(ends) != 2:
            raise InputError(tr("couldn't read %(text)s; write hours like 9am-5pm or 09:00-17:00",
                                text=repr(part.strip())))
        try:
            opening, closing = _clock(ends[0]), _clock(ends[1])
        except InputError as exc:
            raise InputError(tr("%(problem)s in %(text)s; write hours like 9am-5pm or 09:00-17:00",
                                problem=message_of(exc), text=repr(part.strip()))) from None
        start, end = _resolve(opening, closing, overnight)
        written = _hhmm(start) + "-" + _hhmm(end)
        if start == end or (overnight and end == start):
            raise InputError(tr("%(range)s opens and closes at the same time",
                                range=_hhmm(start) + "-" + _hhmm(end % 1440)))
        if end < start and not overnight:
            raise InputError(tr("%(range)s closes before it opens. For hours past midnight write “%(range)s "
                                "overnight”", range=written))
        if overnight and end > start:
            raise InputError(tr("%(range)s ends the same day, so it isn't overnight", range=written))
        out.append((start, end, overnight))
    out.sort()
    return out


def _span(opening: int, closing: int, overnight: bool) -> tuple[int, int]:
    return opening, closing + (1440 if overnight else 0)


def _label(opening: int, closing: int, overnight: bool) -> str:
    close = "24:00" if closing == 1440 else _hhmm(closing)
    return f"{_hhmm(opening)}-{close}" + (" overnight" if overnight else "")


def parse_week(texts: dict[str, str]) -> tuple[dict[str, list[list[str]]], dict[str, str]]:
    """Every day's ranges and every day's error at once (bad text, overlaps, a night that runs into the next day)."""
    parsed: dict[str, list[tuple[int, int, bool]]] = {}
    errors: dict[str, str] = {}
    for day in WEEKDAYS:
        try:
            ranges = parse_day_hours(texts.get(day, ""))
        except InputError as exc:
            errors[day] = tr("%(day)s: %(problem)s.", day=DAY_WORDS[day], problem=message_of(exc))
            continue
        for previous, current in pairwise(ranges):
            if _span(*current)[0] < _span(*previous)[1]:
                errors[day] = tr("%(day)s: %(first)s and %(second)s overlap. Join them into one range or make one end "
                                 "before the other starts.", day=DAY_WORDS[day], first=_label(*previous),
                                 second=_label(*current))
                break
        parsed[day] = ranges
    for index, day in enumerate(WEEKDAYS):
        following = WEEKDAYS[(index + 1) % 7]
        if day not in parsed or following not in parsed or following in errors:
            continue
        for opening, closing, overnight in parsed[day]:
            if overnight and any(start < closing for start, _end, _o in parsed[following]):
                errors[following] = tr("%(day)s: opens before %(previous)s's %(range)s has closed.",
                                       day=DAY_WORDS[following], previous=DAY_WORDS[day],
                                       range=_label(opening, closing, overnight))
    clean = {
        day: [[_hhmm(o), "24:00" if c == 1440 else _hhmm(c)] for o, c, _n in parsed.get(day, [])] for day in WEEKDAYS
    }
    return clean, errors


def format_hours(ranges: list[list[str]] | None) -> str:
    """Stored ranges as the form shows them; a close at or before the open is marked overnight."""
    parts = []
    for opening, closing in ranges or []:
        overnight = closing != "24:00" and closing <= opening
        parts.append(f"{opening}-{closing}" + (" overnight" if overnight else ""))
    return ", ".join(parts)


_MONEY = re.compile(
    r"^(?:usd|us\$|\$|€|£|eur|gbp)?\s*(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d{1,2}))?\s*(?:usd|\$|€|£|eur|gbp|dollars?)?$"
)


def parse_price(text: str) -> float:
    """"$250", "250", "1,200.50", "19.5", "free" -> a non-negative amount with cents."""
    value = text.strip().lower().replace(" ", "")
    if value in {"", "free", "0", "-"}:
        return 0.0
    if value.startswith("-"):
        raise InputError(tr("The price can't be negative."))
    match = _MONEY.match(value)
    if not match or not (match.group(1) or match.group(2)):
        raise InputError(tr("Couldn't read the price %(text)s; write it like 25, $19.50 or 1,200.",
                            text=repr(text.strip())))
    amount = float((match.group(1) or "0").replace(",", "") + "." + (match.group(2) or "0"))
    if amount > 100_000:
        raise InputError(tr("Prices above 100,000 aren't accepted."))
    return round(amount, 2)


_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)\s*(?:h|hr|hrs|hours?)\s*(?P<hm>\d+)?\s*(?:m|min|mins|minutes?)?"
    r"|(?P<c1>\d+):(?P<c2>[0-5]\d)"
    r"|(?P<m>\d+)\s*(?:m|min|mins|minutes?)?)$",
    re.IGNORECASE,
)


def parse_minutes(text: str) -> int:
    """"30", "30 min", "1h", "1h30", "1 hour 30", "1:30", "1.5h" -> whole minutes."""
    value = re.sub(r"\s+", " ", text.strip().lower()).replace(" and ", " ")
    match = _DURATION.match(value.replace(" ", "")) if value else None
    if not match:
        raise InputError(tr("Couldn't read %(text)s as a length; write it like 30, 45 min or 1h30.",
                            text=repr(text.strip())))
    if match.group("h") is not None:
        total = float(match.group("h")) * 60 + int(match.group("hm") or 0)
    elif match.group("c1") is not None:
        total = int(match.group("c1")) * 60 + int(match.group("c2"))
    else:
        total = int(match.group("m"))
    if total != int(total):
        raise InputError(tr("%(text)s isn't a whole number of minutes.", text=repr(text.strip())))
    return int(total)


@cache
def all_timezones() -> tuple[str, ...]:
    """Every IANA zone name except the legacy aliases, for the searchable picker."""
    legacy = ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Chile/", "Mexico/")
    names = {n for n in available_timezones() if "/" in n and not n.startswith(legacy)} | {"UTC"}
    return tuple(sorted(names))


@cache
def _zone_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for name in all_timezones():
        lookup.setdefault(name.lower(), name)
    for name in all_timezones():
        city = name.rsplit("/", 1)[-1].lower()
        lookup.setdefault(city, name)
        lookup.setdefault(city.replace("_", " "), name)
    return lookup


def parse_timezone(text: str) -> str:
    """An exact zone, any capitalisation, or just the city: "new york" -> America/New_York."""
    value = re.sub(r"\s+", " ", text.strip())
    if not value:
        raise InputError(tr("Choose your timezone, for example America/New_York or just the city, like London."))
    key = value.lower()
    found = _zone_lookup().get(key) or _zone_lookup().get(key.replace(" ", "_"))
    if found is None:
        raise InputError(tr("No timezone called %(text)s. Type your city (like Chicago or London) and pick from the "
                            "list.", text=repr(value)))
    return found
