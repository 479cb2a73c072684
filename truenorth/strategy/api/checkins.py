"""Vision API: check-ins on goals, and the goals whose check-in is overdue."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Status

from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import router
from truenorth.strategy.models import CheckIn
from truenorth.strategy.schemas import CheckInIn, CheckInOut, ListFilter, OverdueFilter, OverdueOut


@router.get(
    "/{slug}/goals/{goal_id}/checkins",
    response={200: list[CheckInOut], **READ_ERRORS},
    summary="Check-ins of a goal, newest first",
)
def list_checkins(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[CheckIn]:
    m, _ = scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = goal.checkins.select_related("author", "observation__recorded_by").order_by("-created_at", "-id")
    return list(rows[filters.offset : filters.offset + filters.limit])


@router.post(
    "/{slug}/goals/{goal_id}/checkins",
    response={201: CheckInOut, **ERRORS},
    summary="Check in on an active goal (its owner or an admin)",
)
def check_in(request: HttpRequest, slug: str, goal_id: ObjectId, payload: CheckInIn) -> Status[CheckIn]:
    m, user = scope(request, slug)
    checkin = services.check_in(
        m,
        user,
        goal_id,
        status=payload.status,
        confidence=payload.confidence,
        narrative=payload.narrative,
        target_id=payload.target,
        value=payload.value,
        idempotency_key=payload.idempotency_key,
    )
    return Status(201, checkin)


@router.get(
    "/{slug}/checkins/overdue",
    response={200: list[OverdueOut], **READ_ERRORS},
    summary="Active goals whose check-in is overdue",
)
def overdue_checkins(
    request: HttpRequest, slug: str, filters: Query[OverdueFilter]
) -> list[services.Overdue]:
    m, _ = scope(request, slug)
    rows = services.overdue_checkins(m, product_id=filters.product, owner_id=filters.owner)
    return rows
