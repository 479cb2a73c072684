"""Engagement API: the alignment health check — computed now (GET), saved (POST) and the saved ones
(GET …/assessments). Rules: engagement/healthrules.py; facts: engagement/services/health.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.core.schemas import ERRORS, READ_ERRORS
from truenorth.engagement.models import HealthAssessment
from truenorth.engagement.services import health as services
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])


class RuleOut(Schema):
    key: str
    area: str
    title: str
    weight: int
    score: int | None = Field(description="0-100; null when there is nothing to judge.")


class StepOut(Schema):
    key: str
    area: str
    text: str
    gain: float = Field(description="Points the overall score would rise if this rule passed.")
    url: str


class HealthCheckOut(Schema):
    scores: dict[str, int | None] = Field(description="overall, vision, value, validation, engagement.")
    trend: dict[str, int | None] = Field(description="Change of each score since the last saved assessment.")
    previous_at: dt.datetime | None
    rules: list[RuleOut]
    next_steps: list[StepOut]
    facts: dict[str, Any]


class AssessmentOut(Schema):
    id: int
    created_at: dt.datetime
    created_by: str | None
    scores: dict[str, Any]
    facts: dict[str, Any]
    next_steps: list[dict[str, Any]]


class AssessmentFilter(Schema):
    limit: int = Field(20, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


def check_out(check: services.Check) -> dict[str, Any]:
    return {
        "scores": check.scores,
        "trend": check.trend,
        "previous_at": check.previous.created_at if check.previous else None,
        "rules": [
            {"key": r.key, "area": r.area, "title": r.title, "weight": r.weight, "score": r.score}
            for r in check.assessment.rules
        ],
        "next_steps": [
            {"key": s.key, "area": s.area, "text": s.text, "gain": s.gain, "url": s.url}
            for s in check.next_steps
        ],
        "facts": check.facts.to_dict(),
    }


def assessment_out(a: HealthAssessment) -> dict[str, Any]:
    return {
        "id": a.pk,
        "created_at": a.created_at,
        "created_by": a.created_by.email if a.created_by else None,
        "scores": a.scores,
        "facts": a.facts,
        "next_steps": a.next_steps,
    }


@router.get(
    "/{slug}/health-check",
    response={200: HealthCheckOut, **READ_ERRORS},
    summary="Alignment health check computed now, with the trend since the last saved one",
)
def get_health_check(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return check_out(services.current(m))


@router.post(
    "/{slug}/health-check",
    response={201: AssessmentOut, **ERRORS},
    summary="Run the alignment health check and save it (members and above)",
)
def save_health_check(request: HttpRequest, slug: str) -> Status:
    m, user = scope(request, slug)
    return Status(201, assessment_out(services.save_assessment(m, user)))


@router.get(
    "/{slug}/health-check/assessments",
    response={200: list[AssessmentOut], **READ_ERRORS},
    summary="Saved alignment health checks, newest first",
)
def list_assessments(
    request: HttpRequest, slug: str, filters: Query[AssessmentFilter]
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    rows = services.assessments_of(m).select_related("created_by")[
        filters.offset : filters.offset + filters.limit
    ]
    return [assessment_out(a) for a in rows]
