"""API: the append-only history of an organisation or one of its objects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.schemas import READ_ERRORS
from truenorth.history.models import HistoryEntry
from truenorth.orgs.services import membership_for

router = Router(tags=["history"])


class HistoryOut(Schema):
    id: int
    object_type: str
    object_id: str
    object_repr: str
    action: str
    changes: dict[str, Any]
    actor: str = Field(description="E-mail of who made the change, or 'system'.")
    at: dt.datetime


class HistoryFilter(Schema):
    object_type: str | None = Field(None, description="e.g. orgs.organisation")
    object_id: str | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)


@router.get("/{slug}/history", response={200: list[HistoryOut], **READ_ERRORS}, summary="History of changes")
def list_history(request: HttpRequest, slug: str, filters: Query[HistoryFilter]) -> list[dict[str, object]]:
    assert isinstance(request.user, User)
    m = membership_for(request.user, slug)
    qs = HistoryEntry.objects.filter(organisation_id=m.organisation_id)
    if filters.object_type:
        qs = qs.filter(object_type=filters.object_type)
    if filters.object_id:
        qs = qs.filter(object_id=filters.object_id)
    rows = qs.order_by("-at", "-id")[filters.offset : filters.offset + filters.limit]
    return [
        {
            "id": e.pk,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "object_repr": e.object_repr,
            "action": e.action,
            "changes": e.changes,
            "actor": e.actor_name,
            "at": e.at,
        }
        for e in rows
    ]
