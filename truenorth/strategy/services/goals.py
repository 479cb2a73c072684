"""Goals: creating, changing, moving (re-parenting and reordering) and archiving the goals of a product
tree or of the organisation level, with their levels, weights and check-in cadences.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import number as _number
from truenorth.core.validate import text as _text
from truenorth.core.validate import whole as _whole
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Goal, Product, TargetMeasure
from truenorth.strategy.services._common import (
    LEVEL_RANK,
    MAX_WEIGHT,
    NEXT_LEVEL,
    _goal_snapshot,
    _locked_goal,
    _member_user,
    _save_goal,
    get_goal,
)
from truenorth.strategy.services.graph import _refuse_cycle, _refuse_double_count, _up_edges
from truenorth.strategy.services.products import get_product
from truenorth.strategy.services.targets import TargetSpec, _resolved_target, _target_text


def _parent_for(membership: Membership, product: Product | None, parent_id: int | None) -> Goal | None:
    if parent_id is None:
        return None
    try:
        parent = get_goal(membership, parent_id)
    except NotFound:
        raise ValidationFailed("No such parent goal in this organisation.", field="parent") from None
    if parent.product_id != (product.pk if product else None):
        raise ValidationFailed(
            "A parent must be in the same product tree; to count toward a goal elsewhere, align to it.",
            field="parent",
        )
    return parent


def _check_level(level: str, parent: Goal | None) -> None:
    if parent is None:
        return
    if level == Goal.Level.STRATEGIC:
        raise ValidationFailed("A strategic goal is the top of its tree and has no parent.", field="level")
    if LEVEL_RANK[Goal.Level(level)] < LEVEL_RANK[Goal.Level(parent.level)]:
        raise ValidationFailed(
            f"A {Goal.Level(level).label.lower()} cannot sit under a {Goal.Level(parent.level).label.lower()}.",
            field="level",
        )


def _weight(value: Any) -> float:
    weight = _number(value, "weight")
    if not 0 < weight <= MAX_WEIGHT:
        raise ValidationFailed(f"Weight must be above 0 and at most {MAX_WEIGHT:g}.", field="weight")
    return weight


def _cadence(value: Any) -> int:
    days = _whole(value, "checkin_cadence_days", "a whole number of days")
    if not 1 <= days <= 366:
        raise ValidationFailed(
            "Check-in cadence must be between 1 and 366 days.", field="checkin_cadence_days"
        )
    return days


@transaction.atomic
def create_goal(
    membership: Membership,
    actor: User,
    *,
    title: str,
    product_id: int | None = None,
    parent_id: int | None = None,
    level: str | None = None,
    outcome: str = "",
    owner_id: int | None = None,
    target_date: dt.date | str | None = None,
    status: str = Goal.Status.PROPOSED,
    weight: float = 1.0,
    checkin_cadence_days: int = 7,
    targets: Iterable[TargetSpec | Mapping[str, Any]] = (),
) -> Goal:
    """Create a goal in a product tree (or at organisation level when product_id is None)."""
    require_writer(membership)
    product = get_product(membership, product_id) if product_id is not None else None
    if product is not None and product.archived_at is not None:
        raise ValidationFailed("This product is archived; restore it before adding goals.", field="product")
    parent = _parent_for(membership, product, parent_id)
    if level is None:
        level = NEXT_LEVEL[Goal.Level(parent.level)] if parent else Goal.Level.STRATEGIC
    level = _choice(level, Goal.Level.values, "level")
    _check_level(level, parent)
    resolved = [_resolved_target(membership, t, i) for i, t in enumerate(targets)]
    clean_targets = [clean for clean, _ in resolved]
    siblings = Goal.objects.filter(organisation_id=membership.organisation_id, product=product, parent=parent)
    position = (siblings.aggregate(m=Max("position"))["m"] or 0) + 1 if siblings.exists() else 0
    goal = Goal.objects.create(
        organisation_id=membership.organisation_id,
        product=product,
        parent=parent,
        level=level,
        title=_text(title, "title", required=True, max_length=200),
        outcome=_text(outcome, "outcome"),
        owner=_member_user(membership, owner_id),
        target_date=_date(target_date, "target_date"),
        status=_choice(status, Goal.Status.values, "status"),
        weight=_weight(weight),
        checkin_cadence_days=_cadence(checkin_cadence_days),
        position=position,
    )
    for i, t in enumerate(clean_targets):
        TargetMeasure.objects.create(goal=goal, position=i, **t.__dict__)
    changes = diff({}, _goal_snapshot(goal))
    if clean_targets:
        changes["targets"] = {"old": None, "new": [_target_text(t, m) for t, m in resolved]}
    record(membership.organisation, goal, actor, HistoryEntry.Action.CREATED, changes)
    return goal


@transaction.atomic
def update_goal(
    membership: Membership,
    actor: User,
    goal_id: int,
    *,
    version: int | None = None,
    **fields: Any,
) -> Goal:
    """Change any of: title, outcome, level, status, owner_id (None clears), target_date (None clears),
    weight, checkin_cadence_days. Fields not given are left alone; a stale version is a 409."""
    require_writer(membership)
    allowed = {
        "title",
        "outcome",
        "level",
        "status",
        "owner_id",
        "target_date",
        "weight",
        "checkin_cadence_days",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(f"Unknown field {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    goal = _locked_goal(membership, goal_id, version)
    before = _goal_snapshot(goal)
    if "title" in fields:
        goal.title = _text(fields["title"], "title", required=True, max_length=200)
    if "outcome" in fields:
        goal.outcome = _text(fields["outcome"], "outcome")
    if "level" in fields:
        level = _choice(fields["level"], Goal.Level.values, "level")
        _check_level(level, goal.parent)
        for child in goal.children.all():
            if (
                LEVEL_RANK[Goal.Level(child.level)] < LEVEL_RANK[Goal.Level(level)]
                or child.level == Goal.Level.STRATEGIC
            ):
                raise ValidationFailed(f"Its child “{child.title}” would then sit above it.", field="level")
        goal.level = level
    if "status" in fields:
        goal.status = _choice(fields["status"], Goal.Status.values, "status")
    if "owner_id" in fields:
        goal.owner = _member_user(membership, fields["owner_id"])
    if "target_date" in fields:
        goal.target_date = _date(fields["target_date"], "target_date")
    if "weight" in fields:
        goal.weight = _weight(fields["weight"])
    if "checkin_cadence_days" in fields:
        goal.checkin_cadence_days = _cadence(fields["checkin_cadence_days"])
    return _save_goal(membership, actor, goal, before)


@transaction.atomic
def move_goal(
    membership: Membership,
    actor: User,
    goal_id: int,
    *,
    parent_id: int | None,
    position: int | None = None,
    version: int | None = None,
) -> Goal:
    """Re-parent (within its tree; None makes it a root) and/or reorder among its new siblings."""
    require_writer(membership)
    goal = _locked_goal(membership, goal_id, version)
    before = _goal_snapshot(goal)
    product = goal.product
    parent = _parent_for(membership, product, parent_id)
    if parent is not None:
        up = _up_edges(membership.organisation_id)
        up[goal.pk].discard(goal.parent_id or 0)
        _refuse_cycle(up, goal, parent, "parent")
        _refuse_double_count(up, goal, parent, "parent")
        _check_level(goal.level, parent)
    elif goal.level != Goal.Level.STRATEGIC and goal.parent_id is not None:
        pass  # a non-strategic root is allowed (e.g. a tactical goal not yet placed), lint shows it
    siblings = list(
        Goal.objects.filter(
            organisation_id=membership.organisation_id,
            product=product,
            parent=parent,
            archived_at__isnull=True,
        )
        .exclude(pk=goal.pk)
        .order_by("position", "id")
    )
    index = len(siblings) if position is None else max(0, min(int(position), len(siblings)))
    siblings.insert(index, goal)
    old_parent_id = goal.parent_id
    goal.parent = parent
    for i, sibling in enumerate(siblings):
        if sibling.pk != goal.pk and sibling.position != i:
            Goal.objects.filter(pk=sibling.pk).update(position=i)
    goal.position = index
    if old_parent_id != goal.parent_id:  # close the gap it leaves among its former siblings
        former = Goal.objects.filter(
            organisation_id=membership.organisation_id,
            product=product,
            parent_id=old_parent_id,
            archived_at__isnull=True,
        ).exclude(pk=goal.pk)
        for i, sibling in enumerate(former.order_by("position", "id")):
            if sibling.position != i:
                Goal.objects.filter(pk=sibling.pk).update(position=i)
    return _save_goal(membership, actor, goal, before)


@transaction.atomic
def archive_goal(
    membership: Membership, actor: User, goal_id: int, *, archived: bool = True, version: int | None = None
) -> Goal:
    """Archive (hide from the tree, keep history) or restore; a goal with live children cannot be archived."""
    require_writer(membership)
    goal = _locked_goal(membership, goal_id, version)
    if archived and goal.children.filter(archived_at__isnull=True).exists():
        raise ValidationFailed("Archive or move its sub-goals first.", field="archived")
    if (goal.archived_at is not None) == archived:
        return goal  # already in that state: nothing changes, nothing is recorded
    if not archived and goal.parent is not None and goal.parent.archived_at is not None:
        raise ValidationFailed("Its parent goal is archived: restore the parent first.", field="archived")
    before = _goal_snapshot(goal)
    goal.archived_at = timezone.now() if archived else None
    return _save_goal(membership, actor, goal, before)
