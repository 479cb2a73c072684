"""Vision API: work items and their line of sight to the goals they serve."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Status

from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import product_in_body, router
from truenorth.strategy.models import WorkItem
from truenorth.strategy.schemas import WorkItemFilter, WorkItemIn, WorkItemOut, WorkItemPatch


@router.get("/{slug}/work-items", response={200: list[WorkItemOut], **READ_ERRORS}, summary="List work items")
def list_work_items(request: HttpRequest, slug: str, filters: Query[WorkItemFilter]) -> list[WorkItem]:
    m, _ = scope(request, slug)
    qs = services.work_items_of(m, product_id=filters.product, goal_id=filters.goal, orphans=filters.orphans)
    return list(qs[filters.offset : filters.offset + filters.limit])


@router.post("/{slug}/work-items", response={201: WorkItemOut, **ERRORS}, summary="Create a work item")
def create_work_item(request: HttpRequest, slug: str, payload: WorkItemIn) -> Status[WorkItem]:
    m, user = scope(request, slug)
    services.require_writer(m)
    product_id = product_in_body(m, payload.product)
    assert product_id is not None
    item = services.create_work_item(
        m,
        user,
        product_id,
        title=payload.title,
        external_key=payload.external_key,
        url=payload.url,
        status=payload.status,
        team_id=payload.team,
        goal_id=payload.goal,
    )
    return Status(201, item)


@router.patch(
    "/{slug}/work-items/{work_item_id}",
    response={200: WorkItemOut, **ERRORS},
    summary="Link a work item to the goal it serves (or unlink it)",
)
def link_work_item(
    request: HttpRequest, slug: str, work_item_id: ObjectId, payload: WorkItemPatch
) -> WorkItem:
    m, user = scope(request, slug)
    item = services.link_work_item(m, user, work_item_id, payload.goal)
    return item
