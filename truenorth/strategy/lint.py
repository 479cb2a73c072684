"""Goal quality checks ("strategy lint"). Pure: no Django.

Each rule takes a GoalFacts and yields findings; `lint_goals` runs all rules over many goals.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TargetFacts:
    name: str
    baseline: float
    target: float
    stale: bool = False  # set by the measures pillar when its last observation is older than its cadence


@dataclass(frozen=True)
class GoalFacts:
    id: int
    title: str
    outcome: str
    status: str
    owner: str | None
    target_date: dt.date | None
    targets: Sequence[TargetFacts] = ()
    parent_target_date: dt.date | None = None
    parent_title: str | None = None


@dataclass(frozen=True)
class Finding:
    goal_id: int
    rule: str
    severity: str  # "error" | "warning"
    message: str


@dataclass
class Rule:
    code: str
    description: str
    check: Callable[[GoalFacts, dt.date], Iterator[Finding]] = field(repr=False)


OPEN_STATUSES = {"proposed", "active"}
_WORD = re.compile(r"\w+")
SENTENCE_WORDS = 5  # an outcome shorter than this is not a sentence


def _is_sentence(text: str) -> bool:
    """At least five words (counted linearly: a backtracking pattern was quadratic on long words)."""
    return any(i + 1 >= SENTENCE_WORDS for i, _ in enumerate(_WORD.finditer(text)))


def _no_measure(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    if not g.targets:
        yield Finding(g.id, "no-measure", "error", "No target measure: how will we know it is achieved?")


def _no_owner(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    if not g.owner:
        yield Finding(g.id, "no-owner", "error", "No owner: someone must be accountable for this goal.")


def _no_date(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    if g.target_date is None:
        yield Finding(g.id, "no-date", "warning", "No target date: by when should it be achieved?")


def _past_date(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    if g.target_date is not None and g.target_date < today and g.status in OPEN_STATUSES:
        yield Finding(
            g.id,
            "past-date",
            "error",
            f"Target date {g.target_date.isoformat()} has passed but the goal is still {g.status}: "
            "mark it achieved or missed, or set a new date.",
        )


def _target_equals_baseline(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    for t in g.targets:
        if t.target == t.baseline:
            yield Finding(
                g.id,
                "target-equals-baseline",
                "error",
                f"Target of “{t.name}” equals its baseline: no change is asked for.",
            )


def _vague_outcome(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    if not g.outcome.strip():
        yield Finding(
            g.id, "vague-outcome", "error", "No outcome statement: say why this matters, in customer terms."
        )
    elif not _is_sentence(g.outcome):
        yield Finding(
            g.id,
            "vague-outcome",
            "warning",
            "Outcome statement is shorter than a sentence: say who benefits and how.",
        )


def _child_after_parent(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    if g.target_date and g.parent_target_date and g.target_date > g.parent_target_date:
        yield Finding(
            g.id,
            "date-after-parent",
            "warning",
            f"Target date {g.target_date.isoformat()} is after its parent's ({g.parent_target_date.isoformat()}"
            f"{', “' + g.parent_title + '”' if g.parent_title else ''}).",
        )


def _stale_target(g: GoalFacts, today: dt.date) -> Iterator[Finding]:
    for t in g.targets:
        if t.stale:
            yield Finding(
                g.id, "stale-evidence", "warning", f"“{t.name}” has no recent observation (stale evidence)."
            )


RULES: tuple[Rule, ...] = (
    Rule("no-measure", "The goal has no target measure.", _no_measure),
    Rule("no-owner", "The goal has no owner.", _no_owner),
    Rule("no-date", "The goal has no target date.", _no_date),
    Rule("past-date", "The target date has passed while the goal is still proposed or active.", _past_date),
    Rule("target-equals-baseline", "A target measure's target equals its baseline.", _target_equals_baseline),
    Rule(
        "vague-outcome",
        "The outcome statement is empty or shorter than a sentence (five words).",
        _vague_outcome,
    ),
    Rule("date-after-parent", "The goal's target date falls after its parent's.", _child_after_parent),
    Rule("stale-evidence", "A target measure has no recent observation.", _stale_target),
)


def lint_goal(goal: GoalFacts, today: dt.date) -> list[Finding]:
    return [finding for rule in RULES for finding in rule.check(goal, today)]


def lint_goals(goals: Iterable[GoalFacts], today: dt.date) -> list[Finding]:
    return [finding for goal in goals for finding in lint_goal(goal, today)]
