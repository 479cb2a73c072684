"""The search page: the navigation's search box lands here (GET ?q=); results are a list of links."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from truenorth.orgs.access import org_view
from truenorth.orgs.models import Membership
from truenorth.search import services


@org_view
@require_GET
def search(request: HttpRequest, membership: Membership) -> HttpResponse:
    q = request.GET.get("q", "")[:200]
    results = services.search(membership, q)
    context = {
        "membership": membership,
        "org": membership.organisation,
        "q": q,
        "searched": bool(services.terms(q)),
        "results": results,
    }
    return render(request, "search/results.html", context)
