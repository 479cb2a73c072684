"""Engagement pages: the alignment health check (computed now, with the trend since the last saved
assessment) and "Run assessment", which saves one. Rules: engagement/healthrules.py and services/health.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_POST

from truenorth.engagement import healthrules
from truenorth.engagement.services import health as services
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership


@org_view
@require_GET
def health(request: HttpRequest, membership: Membership) -> HttpResponse:
    check = services.current(membership)
    areas = [
        {
            "key": area,
            "label": healthrules.AREA_LABELS[area],
            "score": check.scores[area],
            "trend": check.trend.get(area),
            "rules": check.rules_of(area),
        }
        for area in healthrules.AREAS
    ]
    history = list(services.assessments_of(membership).only("created_at", "scores")[: services.HISTORY_LIMIT])
    return render(
        request,
        "engagement/health/health.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "check": check,
            "areas": areas,
            "history": history,
        },
    )


@org_view
@require_POST
def run_assessment(request: HttpRequest, membership: Membership) -> HttpResponse:
    services.save_assessment(membership, current_user(request))
    return redirect("engagement:health", org_slug=membership.organisation.slug)


ORG = "o/<slug:org_slug>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "health-check/", health, name="health"),
    path(ORG + "health-check/run/", run_assessment, name="health_run"),
]
