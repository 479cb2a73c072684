"""How values read on every page: one number format, p-values, and history values for people.

Registered as template builtins (settings.TEMPLATES), so every template uses them without `{% load %}`:
`{{ value|num }}`, `{{ p|p_value }}`, `{{ change.new|human }}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django import template

from truenorth.stats.engine import format_p_value

register = template.Library()

PLACES = 4  # decimals kept for numbers from 1 up; below 1, significant digits


def format_number(value: Any, places: int = PLACES) -> str:
    """29.4 → "29.4", 28.0 → "28", 0.012345 → "0.01235", 1234.56789 → "1234.5679": no trailing zeros."""
    if value is None or value == "" or isinstance(value, bool):
        return "" if value in (None, "") else str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "not a number"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    if abs(x) >= 1e15 or abs(x) < 1e-6:
        return f"{x:.{places}g}"
    text = f"{x:.{places}f}" if abs(x) >= 1 else f"{x:.{places}g}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@register.filter
def num(value: Any, places: int = PLACES) -> str:
    return format_number(value, int(places))


@register.filter
def p_value(value: Any) -> str:
    """The p-value as "p = 0.0368", "p = 0.0012" or "p < 0.0001", the same wording as the sentences."""
    if value is None or value == "":
        return ""
    try:
        return format_p_value(float(value))
    except (TypeError, ValueError):
        return str(value)


def humanise(value: Any) -> str:
    """A history value as a person reads it: lists joined, mappings as "field: value", none as "—"."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list | tuple | set):
        return ", ".join(humanise(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{label(k)}: {humanise(v)}" for k, v in value.items())
    return str(value)


@register.filter
def human(value: Any) -> str:
    return humanise(value)


@register.filter
def label(name: Any) -> str:
    """A field name as words: "target_date" → "target date"."""
    return str(name).replace("_", " ")
