"""Field validators shared by every domain's services: each raises ValidationFailed naming the field."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any, Protocol

from truenorth.core.errors import Conflict, ValidationFailed

MAX_TEXT = 5000


def text(value: Any, field: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str:
    """Stripped text; "" for None. Required text may not be blank."""
    value = "" if value is None else str(value).strip()
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
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"'{value}' is not a date (use YYYY-MM-DD).", field=field) from None


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
