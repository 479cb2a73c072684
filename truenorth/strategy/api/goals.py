"""Vision API: goals (list, create, read, change, move, archive and restore)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.orgs import pagecache
from truenorth.orgs.models import Membership
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import goal_detail, goal_out, owner_from, product_in_body, router
from truenorth.strategy.schemas import (
    GoalDetailOut,
    GoalFilter,
    GoalIn,
    GoalOut,
    GoalPatch,
    MoveIn,
    VersionQuery,
)


@router.get("/{slug}/goals", response={200: list[GoalOut], **READ_ERRORS}, summary="List goals")
def list_goals(request: HttpRequest, slug: str, filters: Query[GoalFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return pagecache.cached_api(request, m, lambda: _goals(m, filters))


def _goals(m: Membership, filters: GoalFilter) -> list[dict[str, Any]]:
    qs = services.goals_of(m).select_related("owner")
    if filters.product == "org":
        qs = qs.filter(product__isnull=True)
    elif filters.product is not None:
        qs = qs.filter(product_id=int(filters.product))
    if filters.level is not None:
        qs = qs.filter(level=filters.level)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    if filters.owner is not None:
        qs = qs.filter(owner_id=filters.owner)
    if not filters.include_archived:
        qs = qs.filter(archived_at__isnull=True)
    goals = list(
        qs.order_by("product_id", "parent_id", "position", "id")[
            filters.offset : filters.offset + filters.limit
        ]
    )
    progress = services.progress_for_org(m.organisation_id)
    return [goal_out(g, progress) for g in goals]


@router.post("/{slug}/goals", response={201: GoalDetailOut, **ERRORS}, summary="Create a goal")
def create_goal(request: HttpRequest, slug: str, payload: GoalIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    services.require_writer(m)
    goal = services.create_goal(
        m,
        user,
        title=payload.title,
        product_id=product_in_body(m, payload.product),
        parent_id=payload.parent,
        level=payload.level,
        outcome=payload.outcome,
        owner_id=owner_from(m, payload.owner, payload.owner_email),
        target_date=payload.target_date,
        status=payload.status,
        weight=payload.weight,
        checkin_cadence_days=payload.checkin_cadence_days,
        targets=[t.model_dump() for t in payload.targets],
    )
    return Status(201, goal_detail(m, goal.pk))


@router.get(
    "/{slug}/goals/{goal_id}",
    response={200: GoalDetailOut, **READ_ERRORS},
    summary="Get a goal with targets, progress, links and lint findings",
)
def get_goal(request: HttpRequest, slug: str, goal_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return goal_detail(m, goal_id)


@router.patch("/{slug}/goals/{goal_id}", response={200: GoalDetailOut, **ERRORS}, summary="Change a goal")
def update_goal(request: HttpRequest, slug: str, goal_id: ObjectId, payload: GoalPatch) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_goal(m, goal_id)  # an unknown goal is a 404 before any field is looked at
    services.require_writer(m)
    given = payload.model_fields_set - {"version", "owner", "owner_email"}
    fields: dict[str, Any] = {}
    for name in given:
        value = getattr(payload, name)
        if value is None and name not in ("target_date",):
            raise ValidationFailed("Must not be null.", field=name)
        fields[name] = value
    if payload.owner_email:
        fields["owner_id"] = services.member_by_email(m, payload.owner_email).pk
    elif "owner" in payload.model_fields_set:
        fields["owner_id"] = payload.owner
    services.update_goal(m, user, goal_id, version=payload.version, **fields)
    return goal_detail(m, goal_id)


@router.post(
    "/{slug}/goals/{goal_id}/move",
    response={200: GoalDetailOut, **ERRORS},
    summary="Move a goal under another parent and/or to another position",
)
def move_goal(request: HttpRequest, slug: str, goal_id: ObjectId, payload: MoveIn) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.move_goal(
        m, user, goal_id, parent_id=payload.parent, position=payload.position, version=payload.version
    )
    return goal_detail(m, goal_id)


@router.post(
    "/{slug}/goals/{goal_id}/archive", response={200: GoalDetailOut, **ERRORS}, summary="Archive a goal"
)
def archive_goal(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.archive_goal(m, user, goal_id, archived=True, version=filters.version)
    return goal_detail(m, goal_id)


@router.post(
    "/{slug}/goals/{goal_id}/restore",
    response={200: GoalDetailOut, **ERRORS},
    summary="Restore an archived goal",
)
def restore_goal(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.archive_goal(m, user, goal_id, archived=False, version=filters.version)
    return goal_detail(m, goal_id)
