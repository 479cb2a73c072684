"""What a goal is linked to: goals in other trees, and the work items that serve it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import services
from truenorth.strategy.views.common import _goal_url, _is_id
from truenorth.strategy.views.goal_page import _act


@org_view
@require_POST
def link_add(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    # Any goal id is accepted here; the service says whether it exists in this organisation.
    target = request.POST.get("target", "")
    form = f.LinkForm(request.POST, goals=[(target, target)])

    def action() -> object:
        data = form.cleaned_data
        return services.link_goals(
            membership, current_user(request), goal_id, int(data["target"]), data["kind"]
        )

    if form.is_valid() and not _is_id(form.cleaned_data["target"]):
        form.add_error("target", "Choose a goal.")
    return _act(request, membership, goal_id, "link", form, action, "Link added.", "links")


@org_view
@require_POST
def link_remove(request: HttpRequest, membership: Membership, goal_id: int, link_id: int) -> HttpResponse:
    services.unlink_goals(membership, current_user(request), link_id)
    messages.success(request, "Link removed.")
    return redirect(_goal_url(membership, goal_id, "links"))


@org_view
@require_POST
def work_link(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    item = request.POST.get("item", "")
    form = f.LinkWorkForm(request.POST, items=[(item, item)])

    def action() -> object:
        return services.link_work_item(
            membership, current_user(request), int(form.cleaned_data["item"]), goal_id
        )

    if form.is_valid() and not _is_id(form.cleaned_data["item"]):
        form.add_error("item", "Choose a work item.")
    return _act(request, membership, goal_id, "work", form, action, "Work item linked.", "work")


@org_view
@require_POST
def work_unlink(request: HttpRequest, membership: Membership, goal_id: int, item_id: int) -> HttpResponse:
    services.link_work_item(membership, current_user(request), item_id, None)
    messages.success(request, "Work item unlinked: it is orphan work until linked again.")
    return redirect(_goal_url(membership, goal_id, "work"))
