"""Prioritisation scores (DOMAIN.md §4). Pure Python, no Django; `mypy --strict` clean.

Every function returns None when an input it needs is missing or would divide by zero, so a hypothesis
that is not estimated yet ranks after the estimated ones instead of getting a made-up score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

Method = Literal["ice", "rice", "wsjf", "cd3"]
METHODS: tuple[Method, ...] = ("ice", "rice", "wsjf", "cd3")
LABELS: Mapping[Method, str] = {
    "ice": "ICE = impact * confidence * ease",
    "rice": "RICE = reach * impact * confidence / effort",
    "wsjf": "WSJF = (business value + time criticality + risk reduction) / job size",
    "cd3": "CD3 = cost of delay / duration",
}


@dataclass(frozen=True)
class Inputs:
    """The estimates a score is computed from; None: not estimated."""

    impact: float | None = None
    confidence: float | None = None
    ease: float | None = None
    reach: float | None = None
    effort: float | None = None
    cost_of_delay: float | None = None
    duration_weeks: float | None = None
    business_value: float | None = None
    time_criticality: float | None = None
    risk_reduction: float | None = None
    job_size: float | None = None


def _all(*values: float | None) -> list[float] | None:
    out: list[float] = []
    for value in values:
        if value is None or not math.isfinite(value):
            return None
        out.append(float(value))
    return out


def ice(i: Inputs) -> float | None:
    """Impact * Confidence * Ease (each 1 to 10)."""
    v = _all(i.impact, i.confidence, i.ease)
    return None if v is None else v[0] * v[1] * v[2]


def rice(i: Inputs) -> float | None:
    """Reach * Impact * Confidence / Effort."""
    v = _all(i.reach, i.impact, i.confidence, i.effort)
    if v is None or v[3] <= 0:
        return None
    return v[0] * v[1] * v[2] / v[3]


def wsjf(i: Inputs) -> float | None:
    """(Business value + time criticality + risk reduction/opportunity enablement) / job size."""
    v = _all(i.business_value, i.time_criticality, i.risk_reduction, i.job_size)
    if v is None or v[3] <= 0:
        return None
    return (v[0] + v[1] + v[2]) / v[3]


def cd3(i: Inputs) -> float | None:
    """Cost of delay (value per week) / duration (weeks)."""
    v = _all(i.cost_of_delay, i.duration_weeks)
    if v is None or v[1] <= 0:
        return None
    return v[0] / v[1]


SCORES: Mapping[Method, Callable[[Inputs], float | None]] = {
    "ice": ice,
    "rice": rice,
    "wsjf": wsjf,
    "cd3": cd3,
}


def score(method: Method, inputs: Inputs) -> float | None:
    return SCORES[method](inputs)


T = TypeVar("T")


def rank(items: Iterable[tuple[T, Inputs]], method: Method) -> Sequence[tuple[T, float | None]]:
    """Items by score, highest first; unscored items last, in their given order (the sort is stable)."""
    scored = [(item, score(method, inputs)) for item, inputs in items]
    return sorted(scored, key=lambda row: (row[1] is None, -(row[1] or 0.0)))
