"""Alignment: links between goals (`aligns` counts toward another tree's goal, `relates` is a plain
cross-reference) and the organisation-wide view of which product goals serve which organisation goal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Goal, GoalLink
from truenorth.strategy.services._common import get_goal
from truenorth.strategy.services.graph import _reachable, _refuse_cycle, _refuse_double_count, _up_edges


@transaction.atomic
def link_goals(membership: Membership, actor: User, source_id: int, target_id: int, kind: str) -> GoalLink:
    """`aligns`: source counts toward target (roll-up, cycles refused); `relates`: a plain cross-reference."""
    require_writer(membership)
    kind = _choice(kind, GoalLink.Kind.values, "kind")
    source = get_goal(membership, source_id)
    try:
        target = get_goal(membership, target_id)
    except NotFound:
        raise ValidationFailed("No such goal in this organisation.", field="target") from None
    if source.pk == target.pk:
        raise ValidationFailed("A goal cannot link to itself.", field="target")
    if GoalLink.objects.filter(source=source, target=target, kind=kind).exists():
        raise Conflict("These goals are already linked that way.", field="target")
    if kind == GoalLink.Kind.ALIGNS:
        if source.product_id == target.product_id:
            raise ValidationFailed(
                "Both goals are in the same tree: move it under that goal instead.", field="target"
            )
        if target.archived_at is not None or target.status == Goal.Status.ABANDONED:
            raise ValidationFailed(
                "That goal is archived or abandoned: nothing can count toward it.", field="target"
            )
        up = _up_edges(membership.organisation_id)
        _refuse_cycle(up, source, target, "target")
        _refuse_double_count(up, source, target, "target")
    link = GoalLink.objects.create(
        organisation_id=membership.organisation_id, source=source, target=target, kind=kind
    )
    record(
        membership.organisation,
        source,
        actor,
        HistoryEntry.Action.UPDATED,
        {f"link:{kind}": {"old": None, "new": f"#{target.pk} {target.title}"}},
    )
    return link


@transaction.atomic
def unlink_goals(membership: Membership, actor: User, link_id: int) -> None:
    require_writer(membership)
    link = (
        GoalLink.objects.select_related("source", "target")
        .filter(pk=link_id, organisation_id=membership.organisation_id)
        .first()
    )
    if link is None:
        raise NotFound("No such link.")
    record(
        membership.organisation,
        link.source,
        actor,
        HistoryEntry.Action.UPDATED,
        {f"link:{link.kind}": {"old": f"#{link.target_id} {link.target.title}", "new": None}},
    )
    link.delete()


def links_of(membership: Membership, goal: Goal) -> dict[str, list[GoalLink]]:
    qs = GoalLink.objects.filter(organisation_id=membership.organisation_id).select_related(
        "source__product", "target__product"
    )
    return {
        "out": list(qs.filter(source=goal).order_by("kind", "id")),
        "in": list(qs.filter(target=goal).order_by("kind", "id")),
    }


@dataclass
class Alignment:
    org_goals: list[tuple[Goal, list[Goal]]]  # each organisation goal and the product goals that serve it
    unaligned: list[Goal]  # product strategic goals (roots) that serve no organisation goal


def alignment(membership: Membership) -> Alignment:
    """Which product goals serve which organisation goal (directly or through their tree), and which serve none."""
    goals = {
        g.pk: g
        for g in Goal.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True)
        .select_related("product", "owner")
        .order_by("position", "id")
    }
    up = _up_edges(membership.organisation_id)
    org_goals = [g for g in goals.values() if g.product_id is None]
    org_ids = {g.pk for g in org_goals}
    served: dict[int, list[Goal]] = defaultdict(list)
    unaligned: list[Goal] = []
    for g in goals.values():
        if g.product_id is None or g.product is None or g.product.archived_at is not None:
            continue
        if g.status == Goal.Status.ABANDONED:
            continue
        reach = _reachable(up, g.pk) & org_ids
        direct = {d for d in up.get(g.pk, set()) if d in org_ids}
        for org_id in direct:
            served[org_id].append(g)
        if g.parent_id is None and not reach:
            unaligned.append(g)
    return Alignment(
        org_goals=[
            (g, sorted(served[g.pk], key=lambda x: (x.product.name if x.product else "", x.title)))
            for g in org_goals
        ],
        unaligned=sorted(unaligned, key=lambda x: (x.product.name if x.product else "", x.title)),
    )
