"""The alignment health check's rules: a pure core (no Django; mypy --strict).

`assess(facts)` scores four areas 0-100 from counts gathered by engagement/services/health.py, and
proposes the three most useful next steps. Every rule is documented in docs/engagement.md
("## Alignment health check"); keep the two in step.

- A rule scores a share as a percentage (0-100, rounded half up), or is "not applicable" (None) when
  there is nothing to judge (no active goals, no measures, …); it then counts in no score.
- An area's score is the weighted mean of its applicable rules' scores; None when none applies.
- The overall score is the plain mean of the scored areas; None when no area is scored.
- A rule below 100 fails and proposes a step. Its gain is how many points the overall score would
  rise if that rule alone reached 100: (100 - score) * weight / (sum of the area's applicable weights)
  / (number of scored areas). The next steps are the three largest gains (ties: rule order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

AREAS: tuple[str, ...] = ("vision", "value", "validation", "engagement")
AREA_LABELS: dict[str, str] = {
    "vision": "Vision",
    "value": "Value",
    "validation": "Validation",
    "engagement": "Engagement",
}
TOP_STEPS = 3


@dataclass(frozen=True)
class Facts:
    """The counts the rules read; all of one organisation at one moment."""

    # Vision
    active_goals: int = 0
    goals_with_target: int = 0
    goals_with_owner: int = 0
    goals_with_date: int = 0
    goals_endorsed: int = 0
    live_goals: int = 0  # proposed or active, not archived
    goals_with_open_concerns: int = 0
    # Value
    kva_cells: int = 0  # live products x the four Key Value Areas
    kva_cells_fresh: int = 0  # ... that hold at least one measure with fresh evidence
    measures: int = 0
    stale_measures: int = 0
    # Validation
    work_items: int = 0
    work_items_linked: int = 0
    concluded_hypotheses: int = 0
    concluded_with_decision: int = 0
    judged_experiments: int = 0  # experiments with at least one computed result
    trustworthy_experiments: int = 0
    # Engagement
    alignment_index: float | None = None
    stakeholders: int = 0
    stakeholders_with_gap: int = 0
    stakeholders_overdue: int = 0
    overdue_checkins: int = 0  # active goals whose check-in is overdue

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Facts:
        """Facts from a saved assessment; unknown keys ignored, missing ones take their default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def percent(part: float, whole: float) -> int | None:
    """part / whole as a whole percentage rounded half up, clamped to 0-100; None when whole is 0."""
    if whole <= 0:
        return None
    return max(0, min(100, math.floor(100 * part / whole + 0.5)))


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


@dataclass(frozen=True)
class Rule:
    key: str
    area: str
    title: str
    weight: int
    where: str  # which page to act on (services/health.py turns it into a link)
    score: Callable[[Facts], int | None]
    step: Callable[[Facts], str]


def _share_missing(f: Facts, have: int) -> int:
    return max(0, f.active_goals - have)


RULES: tuple[Rule, ...] = (
    # Vision
    Rule(
        "goals_measured",
        "vision",
        "Active goals with a target measure",
        2,
        "goals",
        lambda f: percent(f.goals_with_target, f.active_goals),
        lambda f: (
            f"Give {_share_missing(f, f.goals_with_target)} active "
            f"{_plural(_share_missing(f, f.goals_with_target), 'goal', 'goals')} a target measure."
        ),
    ),
    Rule(
        "goals_owned",
        "vision",
        "Active goals with an owner",
        1,
        "goals",
        lambda f: percent(f.goals_with_owner, f.active_goals),
        lambda f: (
            f"Name an owner for {_share_missing(f, f.goals_with_owner)} active "
            f"{_plural(_share_missing(f, f.goals_with_owner), 'goal', 'goals')}."
        ),
    ),
    Rule(
        "goals_dated",
        "vision",
        "Active goals with a target date",
        1,
        "goals",
        lambda f: percent(f.goals_with_date, f.active_goals),
        lambda f: (
            f"Set a target date on {_share_missing(f, f.goals_with_date)} active "
            f"{_plural(_share_missing(f, f.goals_with_date), 'goal', 'goals')}."
        ),
    ),
    Rule(
        "endorsement",
        "vision",
        "Active goals endorsed by someone",
        1,
        "alignment",
        lambda f: percent(f.goals_endorsed, f.active_goals),
        lambda f: (
            f"Ask people to read and endorse {_share_missing(f, f.goals_endorsed)} active "
            f"{_plural(_share_missing(f, f.goals_endorsed), 'goal', 'goals')} nobody has endorsed yet."
        ),
    ),
    Rule(
        "open_concerns",
        "vision",
        "Goals without an open concern",
        1,
        "goals",
        lambda f: percent(f.live_goals - f.goals_with_open_concerns, f.live_goals),
        lambda f: (
            f"Answer the open concerns on {f.goals_with_open_concerns} "
            f"{_plural(f.goals_with_open_concerns, 'goal', 'goals')}."
        ),
    ),
    # Value
    Rule(
        "kva_coverage",
        "value",
        "Key Value Areas with fresh evidence",
        2,
        "value",
        lambda f: percent(f.kva_cells_fresh, f.kva_cells),
        lambda f: (
            f"Measure the {f.kva_cells - f.kva_cells_fresh} Key Value "
            f"{_plural(f.kva_cells - f.kva_cells_fresh, 'Area', 'Areas')} (per product) that have no fresh value."
        ),
    ),
    Rule(
        "fresh_measures",
        "value",
        "Measures with fresh evidence",
        1,
        "value",
        lambda f: percent(f.measures - f.stale_measures, f.measures),
        lambda f: (
            f"Record values for {f.stale_measures} stale {_plural(f.stale_measures, 'measure', 'measures')}."
        ),
    ),
    # Validation
    Rule(
        "work_linked",
        "validation",
        "Work items linked to a goal",
        1,
        "work",
        lambda f: percent(f.work_items_linked, f.work_items),
        lambda f: (
            f"Link {f.work_items - f.work_items_linked} work "
            f"{_plural(f.work_items - f.work_items_linked, 'item', 'items')} to the goal they serve."
        ),
    ),
    Rule(
        "decisions",
        "validation",
        "Concluded hypotheses with a decision",
        1,
        "hypotheses",
        lambda f: percent(f.concluded_with_decision, f.concluded_hypotheses),
        lambda f: (
            f"Record the decision (persevere, pivot or stop) of {f.concluded_hypotheses - f.concluded_with_decision}"
            f" concluded {_plural(f.concluded_hypotheses - f.concluded_with_decision, 'hypothesis', 'hypotheses')}."
        ),
    ),
    Rule(
        "trustworthy",
        "validation",
        "Experiments with trustworthy results",
        1,
        "hypotheses",
        lambda f: percent(f.trustworthy_experiments, f.judged_experiments),
        lambda f: (
            f"Check {f.judged_experiments - f.trustworthy_experiments} "
            f"{_plural(f.judged_experiments - f.trustworthy_experiments, 'experiment', 'experiments')}"
            " whose results fail the sample-ratio check or lack the planned sample."
        ),
    ),
    # Engagement
    Rule(
        "alignment_index",
        "engagement",
        "Alignment index",
        2,
        "pulses",
        lambda f: (
            None if f.alignment_index is None else max(0, min(100, math.floor(f.alignment_index + 0.5)))
        ),
        lambda f: "Run an alignment pulse and talk through the answers that diverge most from the goal.",
    ),
    Rule(
        "stakeholder_gaps",
        "engagement",
        "Stakeholders engaged as desired",
        1,
        "stakeholders",
        lambda f: percent(f.stakeholders - f.stakeholders_with_gap, f.stakeholders),
        lambda f: (
            f"Close the engagement gap of {f.stakeholders_with_gap} "
            f"{_plural(f.stakeholders_with_gap, 'stakeholder', 'stakeholders')}."
        ),
    ),
    Rule(
        "stakeholder_contact",
        "engagement",
        "Stakeholders talked to in time",
        1,
        "stakeholders",
        lambda f: percent(f.stakeholders - f.stakeholders_overdue, f.stakeholders),
        lambda f: (
            f"Talk to {f.stakeholders_overdue} {_plural(f.stakeholders_overdue, 'stakeholder', 'stakeholders')}"
            " not contacted for too long."
        ),
    ),
    Rule(
        "checkins_on_time",
        "engagement",
        "Active goals checked in on time",
        1,
        "overdue",
        lambda f: percent(f.active_goals - f.overdue_checkins, f.active_goals),
        lambda f: (
            f"Check in on {f.overdue_checkins} {_plural(f.overdue_checkins, 'goal', 'goals')} whose check-in is overdue."
        ),
    ),
)


@dataclass(frozen=True)
class RuleResult:
    key: str
    area: str
    title: str
    weight: int
    score: int | None  # None: not applicable
    where: str


@dataclass(frozen=True)
class Step:
    key: str
    area: str
    text: str
    gain: float  # points the overall score would rise
    where: str


@dataclass(frozen=True)
class Assessment:
    overall: int | None
    areas: dict[str, int | None]
    rules: tuple[RuleResult, ...]
    next_steps: tuple[Step, ...]

    def scores(self) -> dict[str, int | None]:
        return {"overall": self.overall, **self.areas}

    def steps_as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.next_steps]


def assess(facts: Facts, rules: tuple[Rule, ...] = RULES) -> Assessment:
    """Score every rule, area and the whole; propose the TOP_STEPS steps with the largest gains."""
    results = tuple(RuleResult(r.key, r.area, r.title, r.weight, r.score(facts), r.where) for r in rules)
    weights: dict[str, int] = {a: 0 for a in AREAS}
    sums: dict[str, float] = {a: 0.0 for a in AREAS}
    for res in results:
        if res.score is not None:
            weights[res.area] += res.weight
            sums[res.area] += res.score * res.weight
    areas: dict[str, int | None] = {
        a: (math.floor(sums[a] / weights[a] + 0.5) if weights[a] else None) for a in AREAS
    }
    scored = [s for s in areas.values() if s is not None]
    overall = math.floor(sum(scored) / len(scored) + 0.5) if scored else None
    candidates: list[Step] = []
    for rule, res in zip(rules, results, strict=True):
        if res.score is None or res.score >= 100:
            continue
        gain = (100 - res.score) * res.weight / weights[res.area] / len(scored)
        candidates.append(Step(rule.key, rule.area, rule.step(facts), round(gain, 1), rule.where))
    order = {r.key: i for i, r in enumerate(rules)}
    candidates.sort(key=lambda s: (-s.gain, order[s.key]))
    return Assessment(overall, areas, results, tuple(candidates[:TOP_STEPS]))


def trend(current: Mapping[str, int | None], previous: Mapping[str, Any] | None) -> dict[str, int | None]:
    """Per score, the change since a previous assessment's scores (None when either is missing)."""
    out: dict[str, int | None] = {}
    for key, value in current.items():
        before = previous.get(key) if previous else None
        out[key] = value - before if isinstance(value, int) and isinstance(before, int) else None
    return out
