"""Goal progress maths. Pure: no Django, usable as a library.

Rules (documented in docs/concepts.md, "Progress roll-up"):
- A target's progress is where its latest observation sits between baseline and target, respecting
  direction: (current - baseline) / (target - baseline), clamped to [0, 1]. For "lower is better" the
  same formula works because target < baseline. No observation -> unknown (None). A target equal to
  its baseline has no defined progress (None; the lint flags it).
- A goal's *measured* progress is the mean of its targets' known progresses.
- A goal's *roll-up* is the weighted mean of its contributors' progress (children and goals aligned to
  it), each weighted by its weight (1 by default); contributors with unknown progress are left out.
- A goal's *progress* is its measured progress when it has one, else its roll-up: direct evidence on the
  goal itself wins over the sum of its parts. Abandoned contributors do not count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


def target_progress(
    baseline: float, target: float, current: float | None, direction: Direction | str = Direction.INCREASE
) -> float | None:
    """Share of the way from baseline to target reached by current, in [0, 1]; None if undefined."""
    if current is None or any(map(math.isnan, (baseline, target, current))):
        return None
    span = target - baseline
    if span == 0:
        return None
    direction = Direction(direction)
    # A target set in the wrong direction (e.g. "increase" to a lower value) has no meaningful progress.
    if (direction is Direction.INCREASE and span < 0) or (direction is Direction.DECREASE and span > 0):
        return None
    return min(1.0, max(0.0, (current - baseline) / span))


def mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def weighted_mean(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    known = [(p, w) for p, w in pairs if p is not None and w > 0]
    total = sum(w for _, w in known)
    return sum(p * w for p, w in known) / total if total else None


@dataclass
class GoalNode:
    """What the roll-up needs to know of one goal."""

    id: int
    weight: float = 1.0
    target_progress: Sequence[float | None] = ()
    contributors: list[int] = field(default_factory=list)  # children and goals aligned to this one
    counts: bool = True  # False for abandoned or archived goals


@dataclass(frozen=True)
class Progress:
    measured: float | None
    rollup: float | None

    @property
    def value(self) -> float | None:
        return self.measured if self.measured is not None else self.rollup


def rollup(nodes: Mapping[int, GoalNode]) -> dict[int, Progress]:
    """Progress of every goal, computed once per goal (memoised, iterative: deep trees are fine).

    The contributor graph must be acyclic; the services refuse cycles before they are stored, and a
    cycle that slips through is cut (the goal on the cycle gets no roll-up from it) rather than looping.
    """
    result: dict[int, Progress] = {}
    in_progress: set[int] = set()
    for root in nodes:
        if root in result:
            continue
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            goal_id, expanded = stack.pop()
            if goal_id in result:
                continue
            node = nodes[goal_id]
            if not expanded:
                in_progress.add(goal_id)
                stack.append((goal_id, True))
                for child in node.contributors:
                    if child in nodes and child not in result and child not in in_progress:
                        stack.append((child, False))
                continue
            in_progress.discard(goal_id)
            pairs = []
            for child in node.contributors:
                child_node = nodes.get(child)
                if child_node is None or not child_node.counts or child not in result:
                    continue
                pairs.append((result[child].value, child_node.weight))
            result[goal_id] = Progress(measured=mean(node.target_progress), rollup=weighted_mean(pairs))
    return result
