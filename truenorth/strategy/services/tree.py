"""The goal tree as rows: one level at a time (lazy loading) or a whole tree depth-first, with progress."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from truenorth.orgs.models import Membership
from truenorth.strategy import progress as progress_core
from truenorth.strategy.models import Goal
from truenorth.strategy.services.progress import progress_for_org


@dataclass
class TreeRow:
    goal: Goal
    depth: int
    child_count: int
    progress: float | None
    findings: int


def _in_tree(qs: QuerySet[Goal], product_id: int | None) -> QuerySet[Goal]:
    """Goals of one product's tree, or the organisation-level goals when product_id is None."""
    return qs.filter(product__isnull=True) if product_id is None else qs.filter(product_id=product_id)


def tree_level(
    membership: Membership,
    *,
    product_id: int | None,
    parent_id: int | None,
    progress: Mapping[int, progress_core.Progress] | None = None,
    include_archived: bool = False,
) -> list[TreeRow]:
    """One level of a tree (the roots when parent_id is None), children counted, for lazy loading."""
    qs = _in_tree(Goal.objects.filter(organisation_id=membership.organisation_id), product_id)
    qs = qs.filter(parent__isnull=True) if parent_id is None else qs.filter(parent_id=parent_id)
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    live_children = Count("children", filter=Q(children__archived_at__isnull=True))
    rows = list(qs.select_related("owner").annotate(n_children=live_children).order_by("position", "id"))
    progress = progress if progress is not None else progress_for_org(membership.organisation_id)
    return [
        TreeRow(
            goal=g,
            depth=0,
            child_count=g.n_children,
            progress=progress[g.pk].value if g.pk in progress else None,
            findings=0,
        )
        for g in rows
    ]


def whole_tree(membership: Membership, product_id: int | None) -> list[TreeRow]:
    """Every live goal of a product (or the organisation level) in depth-first order, in fixed queries."""
    goals = list(
        _in_tree(
            Goal.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True),
            product_id,
        )
        .select_related("owner")
        .prefetch_related("targets")
        .order_by("position", "id")
    )
    progress = progress_for_org(membership.organisation_id)
    children: dict[int | None, list[Goal]] = defaultdict(list)
    ids = {g.pk for g in goals}
    for g in goals:
        children[g.parent_id if g.parent_id in ids else None].append(g)
    rows: list[TreeRow] = []
    stack = [(g, 0) for g in reversed(children[None])]
    while stack:
        goal, depth = stack.pop()
        p = progress.get(goal.pk)
        rows.append(TreeRow(goal, depth, len(children[goal.pk]), p.value if p else None, 0))
        stack.extend((c, depth + 1) for c in reversed(children[goal.pk]))
    return rows
