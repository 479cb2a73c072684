"""Field validators shared by every domain's services: each raises ValidationFailed naming the field."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any, Protocol

from truenorth.core.errors import Conflict, ValidationFailed

MAX_TEXT = 5000
# The sane window for every date and time TrueNorth accepts: nothing before 1900 (a year-1 date is a typo
# that stretches every chart to 2,000 years) and no plan past 2200. Observed values may not be in the
# future at all (`observed_time`).
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)  # clock skew between a client and the server


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def in_window(day: dt.date, field: str) -> dt.date:
    """The day, if it lies between EARLIEST_DATE and LATEST_DATE; else a ValidationFailed naming the field."""
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValidationFailed(
            f"{_label(field)} must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()} "
            f"(got {day.isoformat()}).",
            field=field,
        )
    return day


def observed_time(when: dt.datetime, field: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """When a value was observed: from EARLIEST_DATE up to now (plus clock skew), never in the future."""
    if when.date() < EARLIEST_DATE:
        raise ValidationFailed(
            f"{_label(field)} must be on or after {EARLIEST_DATE.isoformat()} (got {when.date().isoformat()}).",
            field=field,
        )
    if now is not None and when > now + FUTURE_TOLERANCE:
        raise ValidationFailed("An observation cannot be in the future.", field=field)
    return when


def text(value: Any, field: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str:
    """Stripped text with "\n" line breaks (browsers send a textarea's as "\r\n"); "" for None.
    Required text may not be blank."""
    value = "" if value is None else str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\x00" in value:  # PostgreSQL cannot store NUL in text
        raise ValidationFailed("Must not contain NUL characters.", field=field)
    if required and not value:
        raise ValidationFailed(f"{field.replace('_', ' ').capitalize()} is required.", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"Must be at most {max_length} characters (got {len(value)}).", field=field)
    return value


def choice(value: Any, choices: Iterable[str], field: str) -> str:
    allowed = list(choices)
    if value not in allowed:
        raise ValidationFailed(f"'{value}' is not one of: {', '.join(allowed)}.", field=field)
    return str(value)


def parse_number(value: Any) -> float:
    """A finite float from a number or its text; ValueError (with the message to show) otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"'{value}' is not a number.")
    if isinstance(value, int | float):
        number = float(value)
    else:
        raw = str(value).strip()
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"'{raw[:50]}' is not a number.") from None
    if not math.isfinite(number):
        raise ValueError(f"'{value}' is not a finite number.")
    return number


def number(value: Any, field: str) -> float:
    try:
        return parse_number(value)
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed(str(exc), field=field) from None


def optional_number(value: Any, field: str) -> float | None:
    return None if value in (None, "") else number(value, field)


def whole(value: Any, field: str, what: str = "a whole number") -> int:
    """An integer; 7.9 or "7.9" is refused rather than silently cut to 7."""
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed(f"'{value}' is not {what}.", field=field) from None
    if not math.isfinite(result) or result != int(result):
        raise ValidationFailed(f"'{value}' is not {what}.", field=field)
    return int(result)


def date(value: Any, field: str) -> dt.date | None:
    """A date from a date, a datetime or YYYY-MM-DD text; None for None or ""."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return in_window(value.date(), field)
    if isinstance(value, dt.date):
        return in_window(value, field)
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"'{value}' is not a date (use YYYY-MM-DD).", field=field) from None
    return in_window(day, field)


def required_date(value: Any, field: str) -> dt.date:
    day = date(value, field)
    if day is None:
        raise ValidationFailed(f"{field.replace('_', ' ').capitalize()} is required.", field=field)
    return day


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


def check_version(obj: Versioned, version: int | None) -> None:
    """Optimistic concurrency: a save based on a stale version is refused (409), never merged silently."""
    if version is not None and version != obj.version:
        raise Conflict(
            f"“{obj}” was changed by someone else (you edited version {version}, it is now at "
            f"version {obj.version}). Reload it and apply your change again.",
            field="version",
        )
