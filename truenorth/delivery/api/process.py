"""Delivery API: process changes tested as experiments (services/process.py).

`/delivery/changes` lists and marks changes; `/delivery/changes/{id}` reads, changes (with the version
read: 409 when stale) and deletes one; `compare` computes the before/after comparison (200 with the change,
or 202 with a background job when the scope is large); `decision` concludes its hypothesis.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.delivery.models import ProcessChange
from truenorth.delivery.models.process import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, MIN_WINDOW_DAYS
from truenorth.delivery.services import process as services
from truenorth.jobs.models import Job
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope

router = Router(tags=["delivery"])

VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
WINDOW_HELP = f"Days in the window, {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}."


class ProcessChangeOut(Schema):
    id: int
    title: str
    description: str
    product_id: int
    product: str
    team_id: int | None
    changed_on: dt.date
    before_days: int
    after_days: int
    hypothesis_id: int | None
    hypothesis_state: str | None
    comparison: dict[str, Any] = Field(description="The last comparison ({} until computed).")
    computed_at: dt.datetime | None
    job_id: int | None
    created_by: str | None
    created_at: dt.datetime
    version: int
    page: str


class ProcessChangeIn(StrictSchema):
    title: str = Field(min_length=1, max_length=200)
    changed_on: dt.date
    product_id: ObjectId
    team_id: ObjectId | None = None
    description: str = Field("", max_length=5000)
    before_days: int = Field(DEFAULT_WINDOW_DAYS, description=WINDOW_HELP)
    after_days: int = Field(DEFAULT_WINDOW_DAYS, description=WINDOW_HELP)


class ProcessChangePatch(StrictSchema):
    version: int = Field(description=VERSION_HELP)
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    changed_on: dt.date | None = None
    team_id: ObjectId | None = Field(None, description="null unlinks the team.")
    before_days: int | None = Field(None, description=WINDOW_HELP)
    after_days: int | None = Field(None, description=WINDOW_HELP)


class ProcessDecisionIn(StrictSchema):
    decision: Literal["persevere", "pivot", "stop"]
    learning: str = Field(min_length=1, max_length=5000)
    outcome: Literal["validated", "invalidated", "inconclusive"] | None = Field(
        None, description="Default: suggested by the comparison."
    )
    next_step: str = Field("", max_length=5000)


class ProcessDecisionOut(Schema):
    id: int
    hypothesis_id: int
    outcome: str
    decision: str
    learning: str
    observed: str
    next_step: str
    decided_at: dt.datetime


class ProcessChangeFilter(Schema):
    product_id: ObjectId | None = Field(None, description="Only this product's changes.")


def change_out(change: ProcessChange) -> dict[str, Any]:
    return {
        "id": change.pk,
        "title": change.title,
        "description": change.description,
        "product_id": change.product_id,
        "product": change.product.name,
        "team_id": change.team_id,
        "changed_on": change.changed_on,
        "before_days": change.before_days,
        "after_days": change.after_days,
        "hypothesis_id": change.hypothesis_id,
        "hypothesis_state": change.hypothesis.state if change.hypothesis else None,
        "comparison": change.comparison or {},
        "computed_at": change.computed_at,
        "job_id": change.job_id,
        "created_by": change.created_by.email if change.created_by else None,
        "created_at": change.created_at,
        "version": change.version,
        "page": services.change_url(change),
    }


@router.get(
    "/{slug}/delivery/changes",
    response={200: list[ProcessChangeOut], **READ_ERRORS},
    summary="Process changes tested as experiments (newest change date first)",
)
def list_changes(
    request: HttpRequest, slug: str, filters: Query[ProcessChangeFilter]
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [change_out(c) for c in services.changes_of(m, filters.product_id)[:500]]


@router.post(
    "/{slug}/delivery/changes",
    response={201: ProcessChangeOut, **ERRORS},
    summary="Mark a process change (members and above); it is recorded as a hypothesis of the product",
)
def create_change(request: HttpRequest, slug: str, payload: ProcessChangeIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    change = services.create_change(m, user, **payload.model_dump())
    return Status(201, change_out(change))


@router.get(
    "/{slug}/delivery/changes/{change_id}",
    response={200: ProcessChangeOut, **READ_ERRORS},
    summary="One process change with its stored comparison",
)
def get_change(request: HttpRequest, slug: str, change_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return change_out(services.get_change(m, change_id))


@router.patch(
    "/{slug}/delivery/changes/{change_id}",
    response={200: ProcessChangeOut, **ERRORS},
    summary="Change a process change (a new date, team or window clears its comparison)",
)
def update_change(
    request: HttpRequest, slug: str, change_id: ObjectId, payload: ProcessChangePatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_change(m, change_id)
    given = payload.model_fields_set - {"version"}
    for name in ("title", "description", "changed_on", "before_days", "after_days"):
        if name in given and getattr(payload, name) is None:
            raise ValidationFailed("Must not be null.", field=name)
    changes = {name: getattr(payload, name) for name in given}
    return change_out(services.update_change(m, user, change_id, version=payload.version, **changes))


@router.delete(
    "/{slug}/delivery/changes/{change_id}",
    response={204: None, **ERRORS},
    summary="Delete a process change, ?version=N (its hypothesis and decision stay)",
)
def delete_change(request: HttpRequest, slug: str, change_id: ObjectId, version: int) -> Status[None]:
    """`?version=N`: the version you read (409 when stale)."""
    m, user = scope(request, slug)
    services.delete_change(m, user, change_id, version=version)
    return Status(204, None)


@router.post(
    "/{slug}/delivery/changes/{change_id}/compare",
    response={200: ProcessChangeOut, 202: JobOut, **SUBMIT_ERRORS},
    summary="Compare flow and DORA before and after the change (stored on it)",
    description="200 with the change and its comparison, or 202 with a background job when the scope "
    "holds more rows than TRUENORTH_DELIVERY_INLINE_MAX_ROWS (the job stores the comparison on the change).",
)
def compare_change(request: HttpRequest, response: HttpResponse, slug: str, change_id: ObjectId) -> Any:
    m, user = scope(request, slug)
    out = services.compare_change(m, user, change_id)
    if isinstance(out, Job):
        return accepted(response, out)
    return Status(200, change_out(out))


@router.post(
    "/{slug}/delivery/changes/{change_id}/decision",
    response={201: ProcessDecisionOut, **ERRORS},
    summary="Record the decision (persevere / pivot / stop + learning) on the change's hypothesis",
)
def decide(
    request: HttpRequest, slug: str, change_id: ObjectId, payload: ProcessDecisionIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    made = services.decide(m, user, change_id, **payload.model_dump())
    return Status(
        201,
        {
            "id": made.pk,
            "hypothesis_id": made.hypothesis_id,
            "outcome": made.outcome,
            "decision": made.decision,
            "learning": made.learning,
            "observed": made.observed,
            "next_step": made.next_step,
            "decided_at": made.decided_at,
        },
    )
