"""Engagement API: briefs — the product brief (JSON, Markdown), its PDF as a background job and the
document it makes, and the product's read-only share links."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja import Router, Schema, Status
from pydantic import Field

from truenorth.core.schemas import ERRORS, READ_ERRORS, ErrorOut, ObjectId, StrictSchema
from truenorth.engagement.models import ShareLink
from truenorth.engagement.services import briefs as services
from truenorth.engagement.services.briefs_render import brief_data, brief_markdown, pdf_filename
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])

BRIEF = "/{slug}/products/{product_id}/brief"


class GoalLineOut(Schema):
    id: int
    title: str
    depth: int = Field(description="0 for a top-level goal")
    level: str
    level_label: str
    status: str
    status_label: str
    owner: str = Field(description="The owner's display name; empty when none is set (never an e-mail)")
    target_date: dt.date | None
    progress: float | None = Field(description="0..1, the roll-up; null when not measured")
    checkin_status: str | None
    checkin_status_label: str | None
    confidence: int | None = Field(description="Latest check-in's confidence, 0..10")
    checked_in_at: dt.datetime | None


class MeasureLineOut(Schema):
    id: int
    name: str
    kva: str
    kva_label: str
    unit: str
    direction: str
    latest_value: float | None
    latest_at: dt.datetime | None
    start_value: float | None = Field(description="The value in force when the period began")
    change: float | None
    improving: bool | None
    baseline: float | None
    target: float | None
    distance: float | None
    stale: bool
    cadence_days: int
    trend: list[float | None] = Field(description="Mean per slice of the period (null: no observation)")
    sparkline: str = Field(description="SVG polyline points drawing the trend")
    chart: dict[str, Any] | None = Field(description="Vega-Lite spec, for the charted measures")


class HypothesisLineOut(Schema):
    id: int
    title: str
    state: str
    state_label: str
    owner: str
    goal: str
    metric: str
    running_experiments: int


class DecisionLineOut(Schema):
    id: int
    hypothesis: str
    outcome: str
    outcome_label: str
    decision: str
    decision_label: str
    learning: str
    next_step: str
    decided_at: dt.datetime
    decided_by: str


class BriefAlignmentOut(Schema):
    index: float | None = Field(description="The alignment index 0..100 of the latest pulse round")
    clarity: float | None = Field(description="0..1: the mean of (clarity - 1) / 4")
    commitment: float | None = Field(description="0..1: the mean of (commitment - 1) / 4")
    similarity: float | None = Field(description="0..1: answers' similarity to the goal statement")
    responses: int
    invited: int
    response_rate: float | None
    previous_index: float | None
    hidden: bool


class RiskOut(Schema):
    kind: str = Field(description="off_track, stale_evidence, open_concern or overdue_checkin")
    severity: int = Field(description="3 high, 2 medium, 1 low")
    title: str
    detail: str


class ForecastLineOut(Schema):
    goal_id: int
    title: str
    target_date: dt.date | None
    verdict: str = Field(
        description="on_track (chance ≥ 0.85), at_risk, off_track (< 0.5), done or unavailable."
    )
    verdict_label: str
    probability: float | None = Field(
        description="Chance to finish the remaining work items by the target date."
    )
    remaining: int | None
    total_items: int | None
    date_85: dt.date | None = Field(description="When the remaining items are done, at 85 % confidence.")
    backtest: str = Field(description="How often the 85 % forecast came true on the team's own history.")
    reason: str = Field(description="Why there is no forecast, when there is none.")


class BriefOut(Schema):
    organisation: str
    product_id: int
    product: str
    vision: str
    product_goal: str
    owner: str
    archived: bool
    generated_at: dt.datetime
    period_days: int
    progress: float | None
    goals: list[GoalLineOut]
    goals_total: int
    goals_omitted: int
    measures: list[MeasureLineOut]
    missing_kvas: list[str]
    hypotheses: list[HypothesisLineOut]
    decisions: list[DecisionLineOut]
    alignment: BriefAlignmentOut | None
    risks: list[RiskOut]
    risks_total: int
    counts: dict[str, int]
    forecasts: list[ForecastLineOut]
    forecasts_total: int
    forecasts_omitted: int


class ShareLinkOut(Schema):
    id: int
    product: int
    label: str
    created_by: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    use_count: int
    live: bool


class ShareLinkCreatedOut(ShareLinkOut):
    url: str = Field(description="The link itself: shown in this answer only, never again")


class ShareLinkIn(StrictSchema):
    label: str = Field(max_length=120)
    expires_in_days: int = Field(
        services.SHARE_DEFAULT_DAYS,
        description=f"1..{services.SHARE_MAX_DAYS} days (default {services.SHARE_DEFAULT_DAYS})",
    )


def _link_out(link: ShareLink) -> dict[str, Any]:
    return {
        "id": link.pk,
        "product": link.product_id,
        "label": link.label,
        "created_by": link.created_by.email if link.created_by else None,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "revoked_at": link.revoked_at,
        "last_used_at": link.last_used_at,
        "use_count": link.use_count,
        "live": link.is_live(timezone.now()),
    }


@router.get(BRIEF, response={200: BriefOut, **READ_ERRORS}, summary="A product's brief, from live data")
def get_brief(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return brief_data(services.build_brief(m, product_id))


@router.get(
    BRIEF + ".md",
    response={200: str, **READ_ERRORS},
    summary="A product's brief as Markdown (text/markdown)",
)
def get_brief_markdown(request: HttpRequest, slug: str, product_id: ObjectId) -> HttpResponse:
    m, _ = scope(request, slug)
    brief = services.build_brief(m, product_id)
    response = HttpResponse(brief_markdown(brief), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{pdf_filename(brief, "md")}"'
    return response


@router.post(
    BRIEF + "/pdf",
    response={202: JobOut, **SUBMIT_ERRORS},
    summary="Make the brief's PDF as a background job",
    description="202 with the job (`Location`: GET it until `status` is succeeded); its `result.document` "
    "is the id to GET at /api/v1/orgs/{slug}/brief-documents/{document_id} (kept "
    f"{services.DOCUMENT_DAYS} days, for the person who asked only). 429 past the organisation's job limit.",
)
def make_brief_pdf(
    request: HttpRequest, response: HttpResponse, slug: str, product_id: ObjectId
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    return accepted(response, services.submit_pdf(m, user, product_id))


@router.get(
    "/{slug}/brief-documents/{document_id}",
    response={200: bytes, **READ_ERRORS},
    summary="Download a brief's PDF made for me (application/pdf)",
    url_name="get_brief_document",
)
def get_brief_document(request: HttpRequest, slug: str, document_id: ObjectId) -> HttpResponse:
    m, user = scope(request, slug)
    document = services.get_document(m, user, document_id)
    response = HttpResponse(bytes(document.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="brief-{document.pk}.pdf"'
    return response


@router.get(
    "/{slug}/products/{product_id}/share-links",
    response={200: list[ShareLinkOut], **READ_ERRORS},
    summary="A product's share links (never their addresses)",
)
def list_share_links(request: HttpRequest, slug: str, product_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [_link_out(link) for link in services.share_links_of(m, product_id)]


@router.post(
    "/{slug}/products/{product_id}/share-links",
    response={201: ShareLinkCreatedOut, **ERRORS},
    summary="Create a read-only share link to the product's brief (its address is in this answer only)",
)
def create_share_link(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: ShareLinkIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    link, raw = services.create_share_link(
        m, user, product_id, label=payload.label, expires_in_days=payload.expires_in_days
    )
    url = request.build_absolute_uri(reverse("engagement:share", args=(raw,)))
    return Status(201, {**_link_out(link), "url": url})


@router.get(
    "/{slug}/share-links/{share_link_id}",
    response={200: ShareLinkOut, **READ_ERRORS},
    summary="A share link (never its address)",
)
def get_share_link(request: HttpRequest, slug: str, share_link_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _link_out(services.get_share_link(m, share_link_id))


@router.delete(
    "/{slug}/share-links/{share_link_id}",
    response={200: ShareLinkOut, **ERRORS},
    summary="Revoke a share link (it stops working at once; the record is kept)",
)
def revoke_share_link(request: HttpRequest, slug: str, share_link_id: ObjectId) -> dict[str, Any]:
    m, user = scope(request, slug)
    return _link_out(services.revoke_share_link(m, user, share_link_id))


__all__ = ["ErrorOut", "router"]
