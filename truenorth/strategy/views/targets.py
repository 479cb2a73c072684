"""A goal's target measures: add, edit (including the Value measure it tracks), remove."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from truenorth.core.errors import Conflict, NotFound
from truenorth.core.forms import MISSING_VERSION, posted_version
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import services
from truenorth.strategy.views.common import _goal_url, _measure_choices, _target_edit_form
from truenorth.strategy.views.goal_page import _act

TARGET_ALIASES = {"measure_id": "measure"}  # the service names the field measure_id; the form, measure


@org_view
@require_POST
def target_add(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    form = f.TargetForm(request.POST, measures=_measure_choices(membership, goal.product_id))

    def action() -> object:
        version = form.cleaned_data["version"]
        return services.add_target(membership, current_user(request), goal_id, form.spec(), version=version)

    return _act(
        request,
        membership,
        goal_id,
        "target",
        form,
        action,
        "Target measure added.",
        "targets",
        TARGET_ALIASES,
    )


@org_view
@require_POST
def target_edit(request: HttpRequest, membership: Membership, goal_id: int, target_id: int) -> HttpResponse:
    """Change a target measure, including the Value measure it tracks (or none)."""
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    target = goal.targets.filter(pk=target_id).select_related("goal", "measure__product").first()
    if target is None:
        raise NotFound("No such target measure.")
    form = _target_edit_form(membership, target, goal.version, request.POST)

    def action() -> object:
        version = form.cleaned_data["version"]
        return services.update_target(
            membership, current_user(request), target_id, form.spec(), version=version
        )

    return _act(
        request,
        membership,
        goal_id,
        f"target-{target_id}",
        form,
        action,
        "Target measure saved.",
        "targets",
        TARGET_ALIASES,
    )


@org_view
@require_POST
def target_remove(request: HttpRequest, membership: Membership, goal_id: int, target_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        services.remove_target(membership, current_user(request), target_id, version=version)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Target measure removed from the goal; it is archived with its values.")
    return redirect(_goal_url(membership, goal_id, "targets"))
