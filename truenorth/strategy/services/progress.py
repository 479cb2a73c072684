"""Progress: the latest value of every target (its own observations, or its Value measure's), which
targets are stale, and the weighted roll-up of every goal and product, each in a fixed number of queries.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from truenorth.orgs.models import Membership
from truenorth.strategy import progress as progress_core
from truenorth.strategy import value_port
from truenorth.strategy.models import Goal, GoalLink, TargetMeasure, TargetObservation
from truenorth.strategy.services._common import goals_of


def latest_values(target_ids: Iterable[int]) -> dict[int, float]:
    """The latest value of each target measure (one query): from its Value measure's current
    (non-superseded) observations when it tracks one, else from its own observations."""
    latest = TargetObservation.objects.filter(target_measure=OuterRef("pk")).order_by("-observed_at", "-id")
    rows = (
        TargetMeasure.objects.filter(pk__in=list(target_ids))
        .annotate(
            latest=Subquery(latest.values("value")[:1]),
            measured=value_port.port().latest_value(OuterRef("measure_id")),
        )
        .values_list("pk", "measure_id", "latest", "measured")
    )
    values = {pk: (measured if measure_id is not None else own) for pk, measure_id, own, measured in rows}
    return {pk: value for pk, value in values.items() if value is not None}


def stale_target_ids(targets: Iterable[TargetMeasure], now: dt.datetime | None = None) -> set[int]:
    """The targets whose Value measure is stale (last observation older than its cadence, or none).
    One query for any number of targets; none when no target tracks a measure."""
    by_measure: dict[int, list[int]] = defaultdict(list)
    for t in targets:
        if t.measure_id is not None:
            by_measure[t.measure_id].append(t.pk)
    if not by_measure:
        return set()
    now = now or timezone.now()
    # An archived measure takes no new observation, so a target tracking it is stale as well.
    stale = value_port.port().stale_measure_ids(by_measure, now)
    return {tid for pk in stale for tid in by_measure[pk]}


def goals_tracking(membership: Membership, measure_id: int) -> list[tuple[TargetMeasure, float | None]]:
    """The live goals' target measures that track this Value measure, with each goal's progress
    (a fixed number of queries, however many goals track it)."""
    targets = list(
        TargetMeasure.objects.filter(
            measure_id=measure_id,
            goal__organisation_id=membership.organisation_id,
            goal__archived_at__isnull=True,
        )
        .select_related("goal", "goal__product", "goal__owner")
        .order_by("goal__title", "goal_id", "position", "id")
    )
    if not targets:
        return []
    progress = progress_for_org(membership.organisation_id)
    return [(t, progress[t.goal_id].value if t.goal_id in progress else None) for t in targets]


def target_progress_of(target: TargetMeasure, current: float | None) -> float | None:
    return progress_core.target_progress(target.baseline, target.target, current, target.direction)


def progress_for_org(organisation_id: int) -> dict[int, progress_core.Progress]:
    """Progress of every live goal of the organisation (a fixed number of queries)."""
    goals = list(
        Goal.objects.filter(organisation_id=organisation_id, archived_at__isnull=True).values_list(
            "id", "parent_id", "weight", "status"
        )
    )
    targets = list(
        TargetMeasure.objects.filter(goal__organisation_id=organisation_id, goal__archived_at__isnull=True)
    )
    latest = latest_values(t.pk for t in targets)
    by_goal: dict[int, list[float | None]] = defaultdict(list)
    for t in targets:
        by_goal[t.goal_id].append(target_progress_of(t, latest.get(t.pk)))
    nodes = {
        gid: progress_core.GoalNode(
            id=gid,
            weight=weight,
            target_progress=by_goal.get(gid, []),
            counts=status != Goal.Status.ABANDONED,
        )
        for gid, _, weight, status in goals
    }
    for gid, parent_id, _, _ in goals:
        if parent_id in nodes:
            nodes[parent_id].contributors.append(gid)
    for src, dst in GoalLink.objects.filter(
        organisation_id=organisation_id, kind=GoalLink.Kind.ALIGNS
    ).values_list("source_id", "target_id"):
        if src in nodes and dst in nodes:
            nodes[dst].contributors.append(src)
    return progress_core.rollup(nodes)


def product_progress(
    membership: Membership, progress: Mapping[int, progress_core.Progress]
) -> dict[int, float | None]:
    """A product's progress: the weighted roll-up of its top-level goals (one query)."""
    roots: dict[int, list[tuple[float | None, float]]] = {}
    rows = (
        goals_of(membership)
        .filter(parent__isnull=True, product__isnull=False, archived_at__isnull=True)
        .exclude(status=Goal.Status.ABANDONED)
        .values_list("id", "product_id", "weight")
    )
    for pk, product_id, weight in rows:
        p = progress.get(pk)
        roots.setdefault(product_id, []).append((p.value if p else None, weight))
    return {pid: progress_core.weighted_mean(pairs) for pid, pairs in roots.items()}
