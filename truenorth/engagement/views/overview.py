"""The Engagement overview: one page leading to every part (stakeholders, pulses, briefs, activity,
health check, webhooks, e-mail settings), with each product's brief."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET

from truenorth.orgs.access import org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import services as vision


@org_view
@require_GET
def overview(request: HttpRequest, membership: Membership) -> HttpResponse:
    products = list(vision.products_of(membership).order_by("name", "pk"))
    return render(
        request,
        "engagement/overview.html",
        {"membership": membership, "org": membership.organisation, "products": products},
    )


urlpatterns: list[URLPattern] = [
    path("o/<slug:org_slug>/engagement/", overview, name="overview"),
]
