"""Vision API: goal links (align a goal to, or relate it to, a goal elsewhere)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Status

from truenorth.core.schemas import ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import router
from truenorth.strategy.models import GoalLink
from truenorth.strategy.schemas import LinkIn, LinkOut


@router.post(
    "/{slug}/goals/{goal_id}/links",
    response={201: LinkOut, **ERRORS},
    summary="Align a goal to (or relate it to) a goal elsewhere",
)
def link_goals(request: HttpRequest, slug: str, goal_id: ObjectId, payload: LinkIn) -> Status[GoalLink]:
    m, user = scope(request, slug)
    link = services.link_goals(m, user, goal_id, payload.target, payload.kind)
    return Status(201, link)


@router.delete("/{slug}/links/{link_id}", response={204: None, **ERRORS}, summary="Remove a goal link")
def unlink_goals(request: HttpRequest, slug: str, link_id: ObjectId) -> Status[None]:
    m, user = scope(request, slug)
    services.unlink_goals(m, user, link_id)
    return Status(204, None)
