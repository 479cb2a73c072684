"""The stakeholder grid, pure (no Django; mypy --strict): quadrants, engagement gaps and how overdue a
contact is.

Quadrant rule: influence and interest are scored 1-5; a score is *high* when it is at least
HIGH_FROM (3, the middle of the scale counts as high: a neutral-scored person is not left to "monitor").

    high influence, high interest  -> manage closely   (manage_closely)
    high influence, low interest   -> keep satisfied   (keep_satisfied)
    low influence,  high interest  -> keep informed    (keep_informed)
    low influence,  low interest   -> monitor          (monitor)

Engagement gap = desired - current, in steps on unaware < resistant < neutral < supportive < leading;
above 0 means we need to move them (below 0: more engaged than we need, not a gap).

Contact intervals (CONTACT_INTERVAL_DAYS): how often each quadrant should hear from us. The overdue score
is days since the last logged interaction (or since the stakeholder was added, if never) divided by the
interval: 1.0 means exactly due, 2.0 twice as long as we should have waited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

HIGH_FROM: Final = 3
SCALE: Final = (1, 2, 3, 4, 5)

MANAGE_CLOSELY: Final = "manage_closely"
KEEP_SATISFIED: Final = "keep_satisfied"
KEEP_INFORMED: Final = "keep_informed"
MONITOR: Final = "monitor"
QUADRANTS: Final[tuple[str, ...]] = (MANAGE_CLOSELY, KEEP_SATISFIED, KEEP_INFORMED, MONITOR)
QUADRANT_LABELS: Final[dict[str, str]] = {
    MANAGE_CLOSELY: "Manage closely",
    KEEP_SATISFIED: "Keep satisfied",
    KEEP_INFORMED: "Keep informed",
    MONITOR: "Monitor",
}
CONTACT_INTERVAL_DAYS: Final[dict[str, int]] = {
    MANAGE_CLOSELY: 14,
    KEEP_SATISFIED: 30,
    KEEP_INFORMED: 30,
    MONITOR: 90,
}
ENGAGEMENT_LEVELS: Final[tuple[str, ...]] = ("unaware", "resistant", "neutral", "supportive", "leading")


def is_high(score: int) -> bool:
    return score >= HIGH_FROM


def quadrant(influence: int, interest: int) -> str:
    """The quadrant of a stakeholder scored influence x interest (each 1-5)."""
    if is_high(influence):
        return MANAGE_CLOSELY if is_high(interest) else KEEP_SATISFIED
    return KEEP_INFORMED if is_high(interest) else MONITOR


def quadrant_scores(name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """((influence lo, hi), (interest lo, hi)) of a quadrant's scores, inclusive (for filters)."""
    low, high = (1, HIGH_FROM - 1), (HIGH_FROM, 5)
    return {
        MANAGE_CLOSELY: (high, high),
        KEEP_SATISFIED: (high, low),
        KEEP_INFORMED: (low, high),
        MONITOR: (low, low),
    }[name]


def engagement_step(level: str) -> int:
    """0 (unaware) … 4 (leading); ValueError for an unknown level."""
    return ENGAGEMENT_LEVELS.index(level)


def engagement_gap(current: str, desired: str) -> int:
    """desired - current in steps; > 0 means we need to move them."""
    return engagement_step(desired) - engagement_step(current)


@dataclass(frozen=True)
class Contact:
    """How long since we last talked to someone, against their quadrant's interval."""

    quadrant: str
    days_since: int
    interval: int
    score: float

    @property
    def overdue(self) -> bool:
        return self.score >= 1.0


def contact(quadrant_name: str, last_contact: dt.date, today: dt.date) -> Contact:
    """The overdue score of someone last contacted (or added) on last_contact."""
    days = max(0, (today - last_contact).days)
    interval = CONTACT_INTERVAL_DAYS[quadrant_name]
    return Contact(quadrant=quadrant_name, days_since=days, interval=interval, score=days / interval)


def is_listed(c: Contact, min_days: int | None) -> bool:
    """On the "not talked to" list: overdue for its quadrant, or, with min_days given, not talked to in
    at least min_days days (the override replaces the quadrant's interval)."""
    if min_days is not None:
        return c.days_since >= min_days
    return c.overdue
