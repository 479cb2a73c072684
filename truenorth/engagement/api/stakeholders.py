"""Engagement API: stakeholders (list with filters, get, create, change, archive, restore), the
stakeholder map (its Vega-Lite spec and quadrant data), the "not talked to" list and the engagement log.
Every rule is in engagement/services/stakeholders.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.engagement import quadrants as grid
from truenorth.engagement.models import (
    Department,
    EngagementLevel,
    EngagementLogEntry,
    InteractionKind,
    Stakeholder,
)
from truenorth.engagement.services import stakeholders as services
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])

VERSION_HELP = "Required: the version you read; a stale one is refused with 409."


class PersonRef(Schema):
    id: int
    email: str
    name: str


class StakeholderOut(Schema):
    id: int
    name: str
    email: str
    title: str
    company: str = Field(description="Their own organisation, when they are outside ours.")
    department: Department
    influence: int
    interest: int
    quadrant: str = Field(description="manage_closely, keep_satisfied, keep_informed or monitor.")
    current_engagement: EngagementLevel
    desired_engagement: EngagementLevel
    gap: int = Field(description="Desired minus current engagement, in steps; above 0: we need to move them.")
    relationship_owner: PersonRef | None
    user: PersonRef | None = Field(description="Their account here, if they have one.")
    goals: list[int]
    products: list[int]
    notes: str
    last_contact: dt.date | None = Field(description="The day of their latest logged interaction.")
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None
    version: int


class StakeholderFilter(Schema):
    department: Department | None = None
    quadrant: str | None = Field(None, pattern=r"^(manage_closely|keep_satisfied|keep_informed|monitor)$")
    product: ObjectId | None = Field(
        None, description="Only those who care about this product (or its goals)."
    )
    include_archived: bool = False


class StakeholderIn(StrictSchema):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field("", max_length=254, description="Unique in the organisation (case-insensitive).")
    title: str = Field("", max_length=200)
    company: str = Field("", max_length=200)
    department: Department = Department.OTHER
    influence: int = Field(3, ge=1, le=5)
    interest: int = Field(3, ge=1, le=5)
    current_engagement: EngagementLevel = EngagementLevel.NEUTRAL
    desired_engagement: EngagementLevel = EngagementLevel.SUPPORTIVE
    relationship_owner: ObjectId | None = Field(None, description="User id of a member.")
    user: ObjectId | None = Field(None, description="User id of their account in this organisation.")
    goals: list[ObjectId] = Field(default_factory=list, max_length=200)
    products: list[ObjectId] = Field(default_factory=list, max_length=200)
    notes: str = Field("", max_length=5000)


class StakeholderPatch(StrictSchema):
    version: int = Field(description=VERSION_HELP)
    name: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, max_length=254)
    title: str | None = Field(None, max_length=200)
    company: str | None = Field(None, max_length=200)
    department: Department | None = None
    influence: int | None = Field(None, ge=1, le=5)
    interest: int | None = Field(None, ge=1, le=5)
    current_engagement: EngagementLevel | None = None
    desired_engagement: EngagementLevel | None = None
    relationship_owner: ObjectId | None = Field(None, description="null clears it.")
    user: ObjectId | None = Field(None, description="null clears it.")
    goals: list[ObjectId] | None = Field(None, max_length=200)
    products: list[ObjectId] | None = Field(None, max_length=200)
    notes: str | None = Field(None, max_length=5000)


class StakeholderVersionQuery(Schema):
    version: int = Field(description=VERSION_HELP)


class QuadrantOut(Schema):
    key: str
    label: str
    count: int
    contact_interval_days: int


class MapPointOut(Schema):
    id: int
    name: str
    department: str
    influence: int
    interest: int
    quadrant: str
    current: str
    desired: str
    gap: int


class MapOut(Schema):
    spec: dict[str, Any] = Field(description="A Vega-Lite v6 spec of the map (draw it with vega-embed).")
    quadrants: list[QuadrantOut]
    points: list[MapPointOut]
    high_from: int = Field(description="A score of at least this is high (on the 1-5 scale).")


class MapFilter(Schema):
    department: Department | None = None
    product: ObjectId | None = None


class StakeholderOverdueFilter(Schema):
    days: int | None = Field(
        None,
        ge=0,
        le=36500,
        description="Not talked to in at least this many days (instead of each quadrant's contact interval).",
    )
    product: ObjectId | None = None


class StakeholderOverdueOut(Schema):
    stakeholder: StakeholderOut
    quadrant: str
    days_since: int
    contact_interval_days: int
    score: float = Field(description="Days since the last contact divided by the quadrant's interval.")
    last_contact: dt.date | None


class LogEntryOut(Schema):
    id: int
    occurred_on: dt.date
    kind: InteractionKind
    summary: str
    notes: str
    stakeholders: list[int]
    goals: list[int]
    recorded_by: PersonRef | None
    created_at: dt.datetime


class LogEntryIn(StrictSchema):
    occurred_on: dt.date
    kind: InteractionKind = InteractionKind.MEETING
    summary: str = Field(min_length=1, max_length=300)
    notes: str = Field("", max_length=5000)
    stakeholders: list[ObjectId] = Field(min_length=1, max_length=200)
    goals: list[ObjectId] = Field(default_factory=list, max_length=200)


class LogFilter(Schema):
    stakeholder: ObjectId | None = None
    limit: int = Field(200, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)


def stakeholder_out(s: Stakeholder) -> dict[str, Any]:
    return {
        **{name: getattr(s, name) for name in ("id", "name", "email", "title", "company", "department")},
        **{name: getattr(s, name) for name in ("influence", "interest", "current_engagement")},
        "desired_engagement": s.desired_engagement,
        "quadrant": services.quadrant_of(s),
        "gap": services.gap_of(s),
        "relationship_owner": s.relationship_owner,
        "user": s.user,
        "goals": sorted(g.pk for g in s.goals.all()),
        "products": sorted(p.pk for p in s.products.all()),
        "notes": s.notes,
        "last_contact": getattr(s, "last_contact", None),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "archived_at": s.archived_at,
        "version": s.version,
    }


def log_out(e: EngagementLogEntry) -> dict[str, Any]:
    return {
        "id": e.pk,
        "occurred_on": e.occurred_on,
        "kind": e.kind,
        "summary": e.summary,
        "notes": e.notes,
        "stakeholders": sorted(s.pk for s in e.stakeholders.all()),
        "goals": sorted(g.pk for g in e.goals.all()),
        "recorded_by": e.recorded_by,
        "created_at": e.created_at,
    }


@router.get(
    "/{slug}/stakeholders",
    response={200: list[StakeholderOut], **READ_ERRORS},
    summary="List stakeholders (filter by department, quadrant, product)",
)
def list_stakeholders(
    request: HttpRequest, slug: str, filters: Query[StakeholderFilter]
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    qs = services.stakeholders_of(
        m,
        services.product_filter(m, filters.product),
        include_archived=filters.include_archived,
        department=filters.department,
        quadrant=filters.quadrant,
    ).prefetch_related("goals", "products")
    return [stakeholder_out(s) for s in qs]


@router.post("/{slug}/stakeholders", response={201: StakeholderOut, **ERRORS}, summary="Add a stakeholder")
def create_stakeholder(request: HttpRequest, slug: str, payload: StakeholderIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    s = services.create_stakeholder(m, user, **payload.model_dump())
    return Status(201, stakeholder_out(s))


@router.get(
    "/{slug}/stakeholders/map",
    response={200: MapOut, **READ_ERRORS},
    summary="The stakeholder map: a Vega-Lite spec and the quadrant data",
)
def stakeholder_map(request: HttpRequest, slug: str, filters: Query[MapFilter]) -> dict[str, Any]:
    m, _ = scope(request, slug)
    found = services.stakeholder_map(
        m, services.product_filter(m, filters.product), department=filters.department
    )
    return {
        "spec": found.spec,
        "quadrants": found.quadrants,
        "points": found.points,
        "high_from": grid.HIGH_FROM,
    }


@router.get(
    "/{slug}/stakeholders/overdue",
    response={200: list[StakeholderOverdueOut], **READ_ERRORS},
    summary="Stakeholders not talked to for too long, most overdue first",
)
def overdue(
    request: HttpRequest, slug: str, filters: Query[StakeholderOverdueFilter]
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    rows = services.overdue(m, days=filters.days, product_id=services.product_filter(m, filters.product))
    return [
        {
            "stakeholder": stakeholder_out(r.stakeholder),
            "quadrant": r.quadrant,
            "days_since": r.days_since,
            "contact_interval_days": r.interval,
            "score": round(r.score, 4),
            "last_contact": r.last_contact,
        }
        for r in rows
    ]


@router.get(
    "/{slug}/stakeholders/{stakeholder_id}",
    response={200: StakeholderOut, **READ_ERRORS},
    summary="Get a stakeholder",
)
def get_stakeholder(request: HttpRequest, slug: str, stakeholder_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return stakeholder_out(services.get_stakeholder(m, stakeholder_id))


@router.patch(
    "/{slug}/stakeholders/{stakeholder_id}",
    response={200: StakeholderOut, **ERRORS},
    summary="Change a stakeholder",
)
def update_stakeholder(
    request: HttpRequest, slug: str, stakeholder_id: ObjectId, payload: StakeholderPatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_stakeholder(m, stakeholder_id)  # an unknown one is a 404 before any field is looked at
    values = {name: getattr(payload, name) for name in payload.model_fields_set if name != "version"}
    for name, value in values.items():
        if value is None and name not in ("relationship_owner", "user"):
            raise ValidationFailed("Must not be null.", field=name)
    s = services.update_stakeholder(m, user, stakeholder_id, version=payload.version, **values)
    return stakeholder_out(s)


@router.post(
    "/{slug}/stakeholders/{stakeholder_id}/archive",
    response={200: StakeholderOut, **ERRORS},
    summary="Archive a stakeholder",
)
def archive_stakeholder(
    request: HttpRequest, slug: str, stakeholder_id: ObjectId, filters: Query[StakeholderVersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    return stakeholder_out(services.archive_stakeholder(m, user, stakeholder_id, version=filters.version))


@router.post(
    "/{slug}/stakeholders/{stakeholder_id}/restore",
    response={200: StakeholderOut, **ERRORS},
    summary="Restore an archived stakeholder",
)
def restore_stakeholder(
    request: HttpRequest, slug: str, stakeholder_id: ObjectId, filters: Query[StakeholderVersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    s = services.archive_stakeholder(m, user, stakeholder_id, archived=False, version=filters.version)
    return stakeholder_out(s)


@router.get(
    "/{slug}/engagement-log",
    response={200: list[LogEntryOut], **READ_ERRORS},
    summary="The engagement log, newest first",
)
def list_log(request: HttpRequest, slug: str, filters: Query[LogFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    if filters.stakeholder is not None:
        services.get_stakeholder(m, filters.stakeholder)
    qs = services.log_of(m, stakeholder_id=filters.stakeholder)
    return [log_out(e) for e in qs[filters.offset : filters.offset + filters.limit]]


@router.post("/{slug}/engagement-log", response={201: LogEntryOut, **ERRORS}, summary="Log an interaction")
def create_log_entry(request: HttpRequest, slug: str, payload: LogEntryIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    entry = services.log_interaction(
        m,
        user,
        occurred_on=payload.occurred_on,
        kind=payload.kind,
        summary=payload.summary,
        notes=payload.notes,
        stakeholder_ids=payload.stakeholders,
        goal_ids=payload.goals,
    )
    return Status(201, log_out(entry))
