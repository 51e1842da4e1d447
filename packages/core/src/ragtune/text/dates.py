"""Time expressions in text, resolved against the date a memory was written.

"yesterday" in a chat of 8 May 2023 means 7 May 2023; "last week" means the week before
8 May 2023. Resolved dates are phrased the way people (and LoCoMo's answers) phrase them.
"""

from __future__ import annotations

import datetime as dt
import re

from ragtune.text.lexicon import MONTHS, WEEKDAYS

_MONTH = "|".join(MONTHS + [m[:3] for m in MONTHS if m != "may"])
# "last Fri": the abbreviations people write, longest first so "thurs" wins over "thu".
_SHORT_DAYS = ("thurs", "tues", "mon", "tue", "wed", "thu", "thur", "fri", "sat", "sun")
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_DAY = re.compile(r"^\d{1,2} [A-Z][a-z]+ \d{4}$")  # as format_day writes it
_EXPLICIT = re.compile(
    rf"\b(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m1>{_MONTH})\.?,?\s+(?P<y1>\d{{4}})"
    rf"|(?P<m2>{_MONTH})\.?\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{{4}})"
    rf"|(?P<m3>{_MONTH})\s+(?P<y3>\d{{4}})"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}))\b",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"\b(?:yesterday|today|tonight|this (?:morning|afternoon|evening|week|weekend|month|year)"
    r"|last (?:night|week|weekend|month|year|"
    + "|".join(WEEKDAYS)
    + "|"
    + "|".join(_SHORT_DAYS)
    + r")"
    r"|next (?:week|weekend|month|year)"
    r"|(?:a|an|one|two|three|four|five|six|\d+|a few|a couple of)"
    r" (?:days?|weeks?|months?|years?) ago)\b",
    re.IGNORECASE,
)


def time_expressions(text: str) -> list[str]:
    """The time expressions in `text`, explicit dates first, in order of appearance."""
    explicit = [m.group(0) for m in _EXPLICIT.finditer(text)]
    return explicit + [m.group(0) for m in _RELATIVE.finditer(text)]


def resolve_time(expression: str, written: str | None) -> str | None:
    """The date `expression` refers to, as a phrase ("7 May 2023", "the week before
    8 May 2023", "2022"); None if it cannot be dated (a relative expression with no
    `written` timestamp, ISO 8601)."""
    match = _EXPLICIT.fullmatch(expression.strip())
    if match:
        return _explicit_date(match)
    if not written:
        return None
    try:
        anchor = dt.datetime.fromisoformat(written).date()
    except ValueError:
        return None
    return _relative_date(expression.lower(), anchor)


def format_day(day: dt.date) -> str:
    """A date as "7 May 2023"."""
    return f"{day.day} {day.strftime('%B')} {day.year}"


def parse_day(text: str) -> dt.date | None:
    """The day `format_day` wrote as `text` ("7 May 2023"), or None if `text` is not one."""
    if not _DAY.match(text):
        return None
    try:
        return dt.datetime.strptime(text, "%d %B %Y").date()
    except ValueError:
        return None


def when_phrase(date: str) -> str:
    """A resolved date (`resolve_time`'s phrasing) as the phrase opening a sentence: "On 7 May
    2023", "In May 2023", "In 2022", "The week before 9 June 2023"."""
    if _DAY.match(date):
        return f"On {date}"
    if date[:1].isdigit() or date.split(" ", 1)[0].lower() in MONTHS:
        return f"In {date}"
    return date[:1].upper() + date[1:]


def _explicit_date(match: re.Match[str]) -> str | None:
    parts = match.groupdict()
    if parts["iso"]:
        try:
            return format_day(dt.date.fromisoformat(parts["iso"]))
        except ValueError:
            return None
    month_text = parts["m1"] or parts["m2"] or parts["m3"]
    month = _month_number(month_text)
    year = int(parts["y1"] or parts["y2"] or parts["y3"])
    day_text = parts["d1"] or parts["d2"]
    if day_text is None:
        return f"{MONTHS[month - 1].capitalize()} {year}"
    try:
        return format_day(dt.date(year, month, int(day_text)))
    except ValueError:
        return None


def _month_number(text: str) -> int:
    prefix = text.lower()[:3]
    return next(n for n, name in enumerate(MONTHS, 1) if name.startswith(prefix))


def _relative_date(text: str, anchor: dt.date) -> str | None:
    words = text.split()
    if text in ("today", "tonight") or (
        text.startswith("this ")
        and words[1]
        in (
            "morning",
            "afternoon",
            "evening",
        )
    ):
        return format_day(anchor)
    if text in ("yesterday", "last night"):
        return format_day(anchor - dt.timedelta(days=1))
    if text.startswith("this "):
        return f"the {words[1]} of {format_day(anchor)}"
    weekday = _weekday(words[1]) if len(words) > 1 else None
    if text.startswith("last ") and weekday is not None:
        back = (anchor.weekday() - weekday) % 7 or 7
        return format_day(anchor - dt.timedelta(days=back))
    if text == "last month":
        first = anchor.replace(day=1) - dt.timedelta(days=1)
        return f"{first.strftime('%B')} {first.year}"
    if text == "last year":
        return str(anchor.year - 1)
    if text == "next month":
        following = (anchor.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return f"{following.strftime('%B')} {following.year}"
    if text == "next year":
        return str(anchor.year + 1)
    if text.startswith("last "):
        return f"the {words[1]} before {format_day(anchor)}"
    if text.startswith("next "):
        return f"the {words[1]} after {format_day(anchor)}"
    return _ago(words, anchor)


def _weekday(word: str) -> int | None:
    """The weekday number (Monday 0) of a weekday name or its abbreviation, or None."""
    for number, day in enumerate(WEEKDAYS):
        if word == day or (word in _SHORT_DAYS and day.startswith(word)):
            return number
    return None


def _ago(words: list[str], anchor: dt.date) -> str | None:
    # "<n> <unit>s ago", "a few days ago", "a couple of weeks ago"
    unit = words[-2].rstrip("s")
    count_text = " ".join(words[:-2])
    if count_text in ("a few", "a couple of"):
        return f"{count_text} {unit}s before {format_day(anchor)}"
    count = _NUMBER_WORDS.get(count_text) or (int(count_text) if count_text.isdigit() else None)
    if count is None:
        return None
    if unit == "day":
        return format_day(anchor - dt.timedelta(days=count))
    if unit == "week":
        return f"the week of {format_day(anchor - dt.timedelta(weeks=count))}"
    if unit == "year":
        return str(anchor.year - count)
    month_index = anchor.year * 12 + anchor.month - 1 - count
    return f"{MONTHS[month_index % 12].capitalize()} {month_index // 12}"
