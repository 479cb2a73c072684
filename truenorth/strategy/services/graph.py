"""The contribution graph: a goal counts toward its parent and toward the goals it aligns to. A new
edge is refused when it would close a cycle or count a goal's progress twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from truenorth.core.errors import ValidationFailed
from truenorth.strategy.models import Goal, GoalLink


def _up_edges(organisation_id: int) -> dict[int, set[int]]:
    """goal id -> the goals it counts toward directly (its parent and the goals it aligns to)."""
    up: dict[int, set[int]] = defaultdict(set)
    for gid, parent_id in Goal.objects.filter(
        organisation_id=organisation_id, parent__isnull=False
    ).values_list("id", "parent_id"):
        up[gid].add(parent_id)
    for src, dst in GoalLink.objects.filter(
        organisation_id=organisation_id, kind=GoalLink.Kind.ALIGNS
    ).values_list("source_id", "target_id"):
        up[src].add(dst)
    return up


def _reachable(up: Mapping[int, set[int]], start: int) -> set[int]:
    seen: set[int] = set()
    stack = list(up.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(up.get(node, ()))
    return seen


def _refuse_cycle(up: dict[int, set[int]], source: Goal, target: Goal, field: str) -> None:
    """Refuse a new edge "source counts toward target" that would close a loop."""
    if source.pk == target.pk:
        raise ValidationFailed("A goal cannot count toward itself.", field=field)
    if source.pk in _reachable(up, target.pk):
        raise ValidationFailed(
            f"“{target.title}” already counts toward “{source.title}”: this would make a cycle.", field=field
        )


def _refuse_double_count(up: dict[int, set[int]], source: Goal, target: Goal, field: str) -> None:
    """Refuse a new edge "source counts toward target" when source, or a goal counting toward source,
    already counts toward target or one of its ancestors: its progress would be counted twice."""
    down: dict[int, set[int]] = defaultdict(set)
    for node, parents in up.items():
        for parent in parents:
            down[parent].add(node)
    destinations = {target.pk} | _reachable(up, target.pk)
    for node in {source.pk} | _reachable(down, source.pk):
        already = _reachable(up, node) & destinations
        if already:
            titles = dict(Goal.objects.filter(pk__in={node, *already}).values_list("pk", "title"))
            reached = titles.get(min(already), "")
            who = "It" if node == source.pk else f"“{titles.get(node, '')}”, which counts toward it,"
            raise ValidationFailed(
                f"{who} already counts toward “{reached}”: its progress would be counted twice.", field=field
            )
