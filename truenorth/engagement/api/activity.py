"""Engagement API: the organisation's activity feed (from the append-only history), filterable by kind,
action, person, goal and product, in pages (keyset: pass the answer's `next` back as `before`).
Rules: engagement/services/activity.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from truenorth.core.schemas import READ_ERRORS, ObjectId
from truenorth.engagement.services import activity as services
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])


class ActivityEntryOut(Schema):
    id: int
    at: dt.datetime
    actor: str = Field(description="E-mail of who made the change, or 'system'.")
    actor_id: int | None
    action: str = Field(description="created, updated, deleted or archived.")
    kind: str = Field(description="The object's type, e.g. strategy.goal.")
    kind_label: str
    object_id: str
    object_repr: str
    changes: dict[str, Any] = Field(description='{"field": {"old": …, "new": …}}')
    url: str | None = Field(description="The object's page, while the object still exists.")


class ActivityPageOut(Schema):
    entries: list[ActivityEntryOut]
    next: str | None = Field(description="Pass as `before` for the next (older) page; null on the last.")


class ActivityFilter(Schema):
    kind: str | None = Field(None, max_length=60, description="An object type, e.g. strategy.goal.")
    action: str | None = Field(None, max_length=20, description="created, updated, deleted or archived.")
    person: ObjectId | None = Field(None, description="The id of the person who acted.")
    goal: ObjectId | None = Field(None, description="A goal: its entries and its targets' and proposals'.")
    product: ObjectId | None = Field(None, description="A product: its entries and its objects'.")
    before: str | None = Field(None, max_length=60, description="The previous page's `next`.")
    limit: int = Field(services.PAGE_SIZE, ge=1, le=services.MAX_PAGE_SIZE)


@router.get(
    "/{slug}/activity",
    response={200: ActivityPageOut, **READ_ERRORS},
    summary="Activity feed of the organisation, newest first",
)
def list_activity(request: HttpRequest, slug: str, filters: Query[ActivityFilter]) -> dict[str, Any]:
    m, _ = scope(request, slug)
    cleaned = services.clean_filters(
        kind=filters.kind,
        action=filters.action,
        person=filters.person,
        goal=filters.goal,
        product=filters.product,
    )
    page = services.activity(m, cleaned, before=filters.before, limit=filters.limit)
    return {
        "entries": [
            {
                "id": e.entry.pk,
                "at": e.entry.at,
                "actor": e.entry.actor_name,
                "actor_id": e.entry.actor_id,
                "action": e.entry.action,
                "kind": e.entry.object_type,
                "kind_label": e.kind,
                "object_id": e.entry.object_id,
                "object_repr": e.entry.object_repr,
                "changes": e.entry.changes,
                "url": e.url,
            }
            for e in page.entries
        ],
        "next": page.next_cursor,
    }
