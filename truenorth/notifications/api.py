"""API: my in-app notifications in an organisation."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from truenorth.core.routers import keep_operation_ids
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.notifications import services
from truenorth.notifications.models import Notification
from truenorth.orgs.scoping import scope

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    text: str
    url: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationFilter(Schema):
    unread: bool = Field(False, description="Only notifications not yet read.")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class MarkReadIn(StrictSchema):
    ids: list[ObjectId] | None = Field(
        None, max_length=1000, description="Notifications to mark read; omit or null for all of them."
    )


class MarkReadOut(Schema):
    marked: int = Field(description="How many unread notifications were marked read.")


@router.get(
    "/{slug}/notifications",
    response={200: list[NotificationOut], **READ_ERRORS},
    summary="My notifications in this organisation, newest first",
)
def list_notifications(
    request: HttpRequest, slug: str, filters: Query[NotificationFilter]
) -> list[Notification]:
    m, user = scope(request, slug)
    qs = services.notifications_of(user, m.organisation)
    if filters.unread:
        qs = qs.filter(read_at__isnull=True)
    return list(qs[filters.offset : filters.offset + filters.limit])


@router.post(
    "/{slug}/notifications/read",
    response={200: MarkReadOut, **ERRORS},
    summary="Mark my notifications in this organisation read",
)
def mark_read(request: HttpRequest, slug: str, payload: MarkReadIn) -> dict[str, int]:
    m, user = scope(request, slug)
    mine = services.notifications_of(user, m.organisation).filter(read_at__isnull=True)
    if payload.ids is not None:
        mine = mine.filter(pk__in=payload.ids)
    ids = list(mine.values_list("pk", flat=True))
    return {"marked": services.mark_read(user, ids)}


# Operation ids are public (generated clients use them): the ones published before the app moved out of
# engagement.
keep_operation_ids(router, "truenorth_engagement_api_")
