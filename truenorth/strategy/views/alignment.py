"""The organisation's goals and what serves them, and the overdue check-ins."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import services
from truenorth.strategy.views.common import _measure_choices, _owners, _tree_goals
from truenorth.strategy.views.goals import _create_goal, _from_measure


@org_view
@require_http_methods(["GET", "POST"])
def alignment(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        services.require_writer(membership)
    form = f.GoalForm(
        request.POST or None,
        initial={"owner": str(current_user(request).pk)} | _from_measure(membership, request, None),
        owners=_owners(membership),
        parents=_tree_goals(membership, None),
        measures=_measure_choices(membership, None),
    )
    if request.method == "POST":
        goal = _create_goal(request, membership, form, None)
        if goal is not None:
            messages.success(request, f"Organisation goal “{goal.title}” created.")
            return redirect("strategy:alignment", org_slug=membership.organisation.slug)
    progress = services.progress_for_org(membership.organisation_id)
    result = services.alignment(membership)
    return render(
        request,
        "strategy/alignment.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "org_goals": [
                (g, progress[g.pk].value if g.pk in progress else None, served)
                for g, served in result.org_goals
            ],
            "unaligned": result.unaligned,
            "form": form,
        },
    )


@org_view
@require_GET
def overdue(request: HttpRequest, membership: Membership) -> HttpResponse:
    products_ = [(str(p.pk), p.name) for p in services.products_of(membership)]
    owners = _owners(membership)
    form = f.OverdueFilterForm(request.GET or None, products=products_, owners=owners)
    product_id = owner_id = None
    if form.is_bound and form.is_valid():
        product_id = f.optional_int(form.cleaned_data["product"])
        owner_id = f.optional_int(form.cleaned_data["owner"])
    rows = services.overdue_checkins(membership, product_id=product_id, owner_id=owner_id)
    return render(
        request,
        "strategy/overdue.html",
        {"membership": membership, "org": membership.organisation, "rows": rows, "form": form},
    )
