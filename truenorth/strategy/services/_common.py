"""Shared by every Vision workflow: the pillar's field lists and limits, the owner check, reading a
goal of the caller's organisation, and saving a goal's change with its history (a stale version is a 409).

Reads take the caller's Membership (which fixes the organisation: nothing outside it is ever found);
writes also take the acting User and record history.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.orgs.models import Membership
from truenorth.orgs.services import member_by_email as member_by_email  # re-exported for callers
from truenorth.orgs.services import require_writer as require_writer  # re-exported for callers
from truenorth.strategy.models import Goal

PRODUCT_FIELDS = ("name", "vision", "product_goal", "owner", "archived_at")
GOAL_FIELDS = (
    "title",
    "outcome",
    "level",
    "status",
    "owner",
    "target_date",
    "weight",
    "checkin_cadence_days",
    "parent",
    "position",
    "archived_at",
)
TARGET_FIELDS = ("name", "unit", "baseline", "target", "direction")
LEVEL_RANK = {
    Goal.Level.STRATEGIC: 0,
    Goal.Level.INTERMEDIATE: 1,
    Goal.Level.TACTICAL: 2,
    Goal.Level.SPRINT: 3,
}
NEXT_LEVEL = {
    Goal.Level.STRATEGIC: Goal.Level.INTERMEDIATE,
    Goal.Level.INTERMEDIATE: Goal.Level.TACTICAL,
    Goal.Level.TACTICAL: Goal.Level.SPRINT,
    Goal.Level.SPRINT: Goal.Level.SPRINT,
}
MAX_TEXT = 5000
MAX_WEIGHT = 1000.0
PROPOSABLE = ("title", "outcome", "target_date", "targets")


def _member_user(membership: Membership, user_id: int | None, field: str = "owner") -> User | None:
    """A user of the same organisation who can edit (stakeholders cannot own work)."""
    if user_id is None:
        return None
    owner = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if owner is None:
        raise ValidationFailed("No such member in this organisation.", field=field)
    if not owner.can_write:
        raise ValidationFailed("A stakeholder cannot own this; choose a member.", field=field)
    return owner.user


def goals_of(membership: Membership) -> QuerySet[Goal]:
    return Goal.objects.filter(organisation_id=membership.organisation_id)


def get_goal(membership: Membership, goal_id: int) -> Goal:
    try:
        return Goal.objects.select_related("owner", "product", "parent").get(
            pk=goal_id, organisation_id=membership.organisation_id
        )
    except Goal.DoesNotExist:
        raise NotFound("No such goal.") from None


def _goal_snapshot(goal: Goal) -> dict[str, Any]:
    data = snapshot(goal, GOAL_FIELDS)
    data["parent"] = goal.parent_id
    data["owner"] = goal.owner.email if goal.owner else None
    return data


def _locked_goal(membership: Membership, goal_id: int, version: int | None) -> Goal:
    get_goal(membership, goal_id)
    goal = Goal.objects.select_for_update(of=("self",)).select_related("owner").get(pk=goal_id)
    _check_version(goal, version)
    return goal


def _save_goal(
    membership: Membership,
    actor: User,
    goal: Goal,
    before: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Goal:
    changes = diff(before, _goal_snapshot(goal))
    changes.update(extra or {})
    if changes:
        goal.version += 1
        goal.updated_at = timezone.now()
        goal.save()
        record(membership.organisation, goal, actor, HistoryEntry.Action.UPDATED, changes)
    return goal
