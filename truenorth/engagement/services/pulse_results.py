"""Results of alignment pulses: per round (invited, answers, response rate, clarity and commitment
distributions overall and by group, the alignment index, the answers that diverge most) and the trend
across rounds.

Anonymity: a round with fewer answers than its pulse's `min_group_size` shows only its counts (no
distribution, index or answer); a group (team or department, "no group given" is a group too) below
the threshold shows only that it is hidden, and its answers never appear among the divergent ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from truenorth.engagement import alignment
from truenorth.engagement.models import Pulse, PulseResponse, PulseRound
from truenorth.engagement.services.pulses import (
    RoundFigures,
    figures,
    get_pulse,
    get_round,
    is_open,
    similarity_scale,
)
from truenorth.orgs.models import Membership

DIVERGENT_ROWS = 5
NO_GROUP = "No group given"


def hidden_note(min_group_size: int) -> str:
    return f"hidden: fewer than {min_group_size} answers"


@dataclass(frozen=True)
class Distribution:
    """Counts of the answers 1..5 (index 0 is "1")."""

    counts: tuple[int, int, int, int, int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def mean(self) -> float | None:
        return sum((i + 1) * c for i, c in enumerate(self.counts)) / self.total if self.total else None

    def rows(self) -> list[tuple[int, int, float]]:
        """(score, count, share 0..100) for a bar list."""
        total = self.total or 1
        return [(i + 1, c, 100 * c / total) for i, c in enumerate(self.counts)]


def _distribution(values: list[int]) -> Distribution:
    counts = [0, 0, 0, 0, 0]
    for v in values:
        counts[v - 1] += 1
    return Distribution((counts[0], counts[1], counts[2], counts[3], counts[4]))


@dataclass(frozen=True)
class GroupResult:
    name: str
    responses: int
    hidden: bool
    clarity: Distribution | None
    commitment: Distribution | None
    index: float | None


@dataclass(frozen=True)
class Divergent:
    own_words: str
    similarity: float


@dataclass
class RoundResult:
    round: PulseRound
    pulse: Pulse
    figures: RoundFigures
    open: bool
    hidden: bool
    note: str
    clarity: Distribution | None = None
    commitment: Distribution | None = None
    groups: list[GroupResult] = field(default_factory=list)
    divergent: list[Divergent] = field(default_factory=list)

    @property
    def index(self) -> float | None:
        return self.figures.components.index


def _results(rnd: PulseRound, pulse: Pulse) -> RoundResult:
    threshold = pulse.min_group_size
    fig = figures(rnd, threshold)
    result = RoundResult(rnd, pulse, fig, is_open(rnd), fig.hidden, hidden_note(threshold))
    if fig.hidden:
        return result
    rows = list(
        PulseResponse.objects.filter(round=rnd)
        .order_by("id")
        .values_list("group", "clarity", "commitment", "similarity", "own_words")
    )
    result.clarity = _distribution([r[1] for r in rows])
    result.commitment = _distribution([r[2] for r in rows])
    by_group: dict[str, list[tuple[str, int, int, float, str]]] = defaultdict(list)
    for row in rows:
        by_group[row[0] or NO_GROUP].append(row)
    shown_groups: set[str] = set()
    scale = similarity_scale()
    for name in sorted(by_group, key=lambda g: (g == NO_GROUP, g.lower())):
        members = by_group[name]
        if len(members) < threshold:
            result.groups.append(GroupResult(name, len(members), True, None, None, None))
            continue
        shown_groups.add(name)
        index = alignment.alignment_index(
            [r[1] for r in members],
            [r[2] for r in members],
            [r[3] for r in members],
            scale=scale,
        )
        result.groups.append(
            GroupResult(
                name,
                len(members),
                False,
                _distribution([r[1] for r in members]),
                _distribution([r[2] for r in members]),
                index,
            )
        )
    # Divergent: below the calibration scale (an answer at or above it counts as fully understood).
    candidates = [r for r in rows if (r[0] or NO_GROUP) in shown_groups and r[3] < scale]
    candidates.sort(key=lambda r: (r[3], r[4]))
    result.divergent = [Divergent(r[4], r[3]) for r in candidates[:DIVERGENT_ROWS]]
    return result


def round_results(membership: Membership, round_id: int, pulse_id: int | None = None) -> RoundResult:
    rnd = get_round(membership, round_id, pulse_id)
    return _results(rnd, rnd.pulse)


def latest_round_results(membership: Membership, pulse_id: int) -> RoundResult | None:
    pulse = get_pulse(membership, pulse_id)
    rnd = pulse.rounds.order_by("-number").first()
    return _results(rnd, pulse) if rnd is not None else None


@dataclass(frozen=True)
class TrendPoint:
    number: int
    opened_at: object
    invited: int
    responses: int
    response_rate: float | None
    hidden: bool
    index: float | None
    clarity: float | None
    commitment: float | None
    similarity: float | None


def trend(membership: Membership, pulse_id: int) -> list[TrendPoint]:
    """One point per round, oldest first (index and means None for a hidden round)."""
    pulse = get_pulse(membership, pulse_id)
    rounds = pulse.rounds.annotate(invited=Count("invitations")).order_by("number")
    points = []
    for rnd in rounds:
        fig = figures(rnd, pulse.min_group_size, invited=rnd.invited)
        parts = fig.components
        points.append(
            TrendPoint(
                rnd.number,
                rnd.opened_at,
                fig.invited,
                fig.responses,
                fig.response_rate,
                fig.hidden,
                parts.index,
                parts.clarity,
                parts.commitment,
                parts.similarity,
            )
        )
    return points
