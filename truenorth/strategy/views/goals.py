"""Goals: create (also from a Value measure), edit, move, archive, and one level of the tree for htmx."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, posted_version
from truenorth.htmx import is_htmx
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import services
from truenorth.strategy.models import Goal
from truenorth.strategy.views.common import (
    FormErrors,
    _error,
    _goal_url,
    _is_id,
    _measure_choices,
    _owners,
    _stale,
    _tree_goals,
)


@org_view
@require_GET
def goal_children(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    """One level of the tree below a goal, as list items for htmx to put under it."""
    goal = services.get_goal(membership, goal_id)
    if not is_htmx(request):
        return redirect(_goal_url(membership, goal_id, "children"))
    rows = services.tree_level(membership, product_id=goal.product_id, parent_id=goal.pk)
    return render(
        request,
        "strategy/_tree_rows.html",
        {"rows": rows, "org": membership.organisation},
    )


def _from_measure(membership: Membership, request: HttpRequest, product_id: int | None) -> dict[str, Any]:
    """ "Create a goal from this measure": `?measure=<id>` prefills the first target, linked to it
    (a measure this goal may not track is ignored)."""
    raw = request.GET.get("measure", "")
    if not _is_id(raw):
        return {}
    m = services.trackable_measures(membership, product_id).filter(pk=int(raw)).first()
    if m is None:
        return {}
    increase = m.direction != "lower"
    return {
        "title": f"Move {m.name}",
        "target_measure": str(m.pk),
        "target_name": m.name,
        "target_unit": m.unit,
        "target_baseline": m.baseline,
        "target_target": m.target,
        "target_direction": "increase" if increase else "decrease",
        "target_date": m.target_date,
    }


def _create_goal(
    request: HttpRequest, membership: Membership, form: f.GoalForm, product_id: int | None
) -> Goal | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return services.create_goal(
            membership,
            current_user(request),
            title=data["title"],
            product_id=product_id,
            parent_id=f.optional_int(data["parent"]),
            level=data["level"] or None,
            outcome=data["outcome"],
            owner_id=f.optional_int(data["owner"]),
            target_date=data["target_date"],
            status=data["status"],
            targets=form.targets(),
        )
    except FormErrors as exc:
        _error(form, exc, f.GoalForm.ALIASES)
        return None


@org_view
@require_http_methods(["GET", "POST"])
def goal_create(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    item = services.get_product(membership, product_id)
    initial = {"parent": request.GET.get("parent", ""), "owner": str(current_user(request).pk)}
    initial |= _from_measure(membership, request, item.pk)
    form = f.GoalForm(
        request.POST or None,
        initial=initial,
        owners=_owners(membership),
        parents=_tree_goals(membership, item.pk),
        measures=_measure_choices(membership, item.pk),
    )
    if request.method == "POST":
        goal = _create_goal(request, membership, form, item.pk)
        if goal is not None:
            messages.success(request, f"Goal “{goal.title}” created.")
            return redirect(_goal_url(membership, goal.pk))
    return render(
        request,
        "strategy/goal_create.html",
        {"membership": membership, "org": membership.organisation, "product": item, "form": form},
    )


@org_view
@require_http_methods(["GET", "POST"])
def goal_edit(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    initial = {
        "title": goal.title,
        "outcome": goal.outcome,
        "level": goal.level,
        "status": goal.status,
        "owner": str(goal.owner_id or ""),
        "target_date": goal.target_date,
        "weight": goal.weight,
        "checkin_cadence_days": goal.checkin_cadence_days,
        "version": goal.version,
    }
    form = f.GoalEditForm(request.POST or None, initial=initial, owners=_owners(membership))
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        data["owner_id"] = f.optional_int(data.pop("owner"))
        try:
            services.update_goal(membership, current_user(request), goal_id, version=version, **data)
        except Conflict as exc:
            if exc.field == "version":
                _stale(form, exc, services.get_goal(membership, goal_id).version)
            else:
                _error(form, exc)
        except ValidationFailed as exc:
            _error(form, exc)
        else:
            messages.success(request, "Goal saved.")
            return redirect(_goal_url(membership, goal_id))
    return render(
        request,
        "strategy/goal_edit.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "goal": goal,
            "form": form,
            "move_form": f.MoveForm(
                initial={
                    "parent": str(goal.parent_id or ""),
                    "position": goal.position,
                    "version": goal.version,
                },
                parents=_tree_goals(membership, goal.product_id, exclude=goal.pk),
            ),
        },
    )


@org_view
@require_POST
def goal_move(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    form = f.MoveForm(request.POST, parents=_tree_goals(membership, goal.product_id, exclude=goal.pk))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.move_goal(
                membership,
                current_user(request),
                goal_id,
                parent_id=f.optional_int(data["parent"]),
                position=data["position"],
                version=data["version"],
            )
        except FormErrors as exc:
            _error(form, exc, {"level": "parent"})
        else:
            messages.success(request, "Goal moved.")
            return redirect(_goal_url(membership, goal_id))
    return render(
        request,
        "strategy/goal_edit.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "goal": goal,
            "form": f.GoalEditForm(
                initial={
                    "title": goal.title,
                    "outcome": goal.outcome,
                    "level": goal.level,
                    "status": goal.status,
                    "owner": str(goal.owner_id or ""),
                    "target_date": goal.target_date,
                    "weight": goal.weight,
                    "checkin_cadence_days": goal.checkin_cadence_days,
                    "version": goal.version,
                },
                owners=_owners(membership),
            ),
            "move_form": form,
        },
    )


@org_view
@require_POST
def goal_archive(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    restore = request.POST.get("restore") == "1"
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        goal = services.archive_goal(
            membership, current_user(request), goal_id, archived=not restore, version=version
        )
    except FormErrors as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{goal.title}” {'restored' if restore else 'archived'}.")
    return redirect(_goal_url(membership, goal_id))
