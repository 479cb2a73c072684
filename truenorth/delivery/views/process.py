"""Delivery pages: process changes tested as experiments (services/process.py).

- /o/<org>/delivery/changes/ (`delivery:changes`, ?product=<id> filters): the organisation's changes;
- /o/<org>/delivery/changes/new/ (`delivery:change_new`): mark a change (a hypothesis is written for it);
- /o/<org>/delivery/changes/<id>/ (`delivery:change`): the before/after comparison table, the decision
  form (or the decision made), its history;
- …/edit/ (`delivery:change_edit`), …/compare/ (POST), …/decide/ (POST), …/delete/ (POST).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.core.errors import Conflict, TooManyRequests, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, VersionField, posted_version
from truenorth.delivery.models import ProcessChange
from truenorth.delivery.models.process import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, MIN_WINDOW_DAYS
from truenorth.delivery.services import process as services
from truenorth.history.services import entries_for
from truenorth.hypotheses.models import Decision
from truenorth.jobs.models import Job
from truenorth.measures.charts import VEGA_LITE_SCHEMA
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_writer
from truenorth.strategy.services import products_of, teams_of

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ChangeForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="What changed, e.g. “WIP limit lowered from 5 to 3”.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    product_id = forms.TypedChoiceField(coerce=int, label="Product")
    team_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Team")
    changed_on = forms.DateField(widget=DATE, label="Changed on")
    before_days = forms.IntegerField(
        min_value=MIN_WINDOW_DAYS, max_value=MAX_WINDOW_DAYS, initial=DEFAULT_WINDOW_DAYS, label="Days before"
    )
    after_days = forms.IntegerField(
        min_value=MIN_WINDOW_DAYS, max_value=MAX_WINDOW_DAYS, initial=DEFAULT_WINDOW_DAYS, label="Days after"
    )
    version = VersionField(required=False)

    def __init__(self, membership: Membership, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        product = self.fields["product_id"]
        team = self.fields["team_id"]
        assert isinstance(product, forms.TypedChoiceField) and isinstance(team, forms.TypedChoiceField)
        product.choices = [(p.pk, p.name) for p in products_of(membership)]
        team.choices = [("", "—"), *((t.pk, t.name) for t in teams_of(membership))]
        if editing:
            del self.fields["product_id"]  # the hypothesis lives in its product: fixed once marked
            self.fields["version"].required = True


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.Choice.choices)
    outcome = forms.ChoiceField(
        choices=[("", "As the comparison suggests"), *Decision.Outcome.choices], required=False
    )
    learning = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="We learned …")
    next_step = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Therefore we will …"
    )


def ratio_chart(effects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Vega-Lite forest plot of the measures compared as ratios (after / before) with their 95 % intervals,
    on a log scale with the no-effect line at 1; None when none has an interval."""
    rows = [
        {
            "measure": e["label"],
            "effect": e["effect"],
            "low": e["low"],
            "high": e["high"],
            "verdict": e["verdict"],
        }
        for e in effects
        if e["effect_kind"] == "ratio" and e["low"] is not None and e["high"] is not None
    ]
    if not rows:
        return None
    scale = {"type": "log"}
    x = {"field": "effect", "type": "quantitative", "title": "after ÷ before (log scale)", "scale": scale}
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Ratios after over before with 95 % intervals; the line at 1 is no change.",
        "width": "container",
        "height": 40 * len(rows) + 20,
        "data": {"values": rows},
        "encoding": {"y": {"field": "measure", "type": "nominal", "title": None}},
        "layer": [
            {"mark": "rule", "encoding": {"x": {**x, "field": "low"}, "x2": {"field": "high"}}},
            {
                "mark": {"type": "point", "filled": True, "size": 80},
                "encoding": {
                    "x": x,
                    "color": {"field": "verdict", "type": "nominal", "title": "Verdict"},
                    "tooltip": [{"field": f} for f in ("measure", "effect", "low", "high", "verdict")],
                },
            },
            {"mark": {"type": "rule", "strokeDash": [4, 4]}, "encoding": {"x": {"datum": 1}, "y": {}}},
        ],
    }


def _url(change: ProcessChange) -> str:
    return services.change_url(change)


@org_view
@require_http_methods(["GET"])
def change_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    raw = request.GET.get("product", "")
    product_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    return render(
        request,
        "delivery/process/list.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "changes": services.changes_of(membership, product_id)[:500],
            "products": products_of(membership, include_archived=True),
            "product_id": product_id,
            "writer": membership.has_role(Role.MEMBER),
        },
    )


@org_view
@require_http_methods(["GET", "POST"])
def change_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    require_writer(membership)
    initial = {}
    if (raw := request.GET.get("product", "")).isdigit() and len(raw) <= 18:
        initial["product_id"] = int(raw)
    form = ChangeForm(membership, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        try:
            change = services.create_change(membership, current_user(request), **data)
        except (ValidationFailed, Conflict) as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"“{change.title}” marked and recorded as a hypothesis.")
            return redirect(_url(change))
    return render(
        request,
        "delivery/process/edit.html",
        {"membership": membership, "org": membership.organisation, "form": form, "change": None},
        status=422 if form.is_bound and form.errors else 200,
    )


def _page(
    request: HttpRequest,
    membership: Membership,
    change: ProcessChange,
    *,
    decision_form: DecisionForm | None = None,
    status: int = 200,
) -> HttpResponse:
    comparison = change.comparison or {}
    return render(
        request,
        "delivery/process/detail.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "change": change,
            "comparison": comparison,
            "effects": comparison.get("effects", []),
            "chart": ratio_chart(comparison.get("effects", [])),
            "decision": services.decision_of(change),
            "decision_form": decision_form or DecisionForm(),
            "writer": membership.has_role(Role.MEMBER),
            "job": change.job if change.job is not None and change.job.active else None,
            "history": entries_for(membership.organisation, change)[:50],
        },
        status=status,
    )


@org_view
@require_http_methods(["GET"])
def change_detail(request: HttpRequest, membership: Membership, change_id: int) -> HttpResponse:
    return _page(request, membership, services.get_change(membership, change_id))


def _initial(change: ProcessChange) -> dict[str, Any]:
    return {
        "title": change.title,
        "description": change.description,
        "team_id": change.team_id,
        "changed_on": change.changed_on,
        "before_days": change.before_days,
        "after_days": change.after_days,
        "version": change.version,
    }


@org_view
@require_http_methods(["GET", "POST"])
def change_edit(request: HttpRequest, membership: Membership, change_id: int) -> HttpResponse:
    change = services.get_change(membership, change_id)
    require_writer(membership)  # readers get 403 for the form too, not a form they cannot save
    form = ChangeForm(membership, request.POST or None, initial=_initial(change), editing=True)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            version = data.pop("version")
            try:
                services.update_change(membership, current_user(request), change.pk, version=version, **data)
            except Conflict as exc:
                apply_error(form, exc)
                status = 409
            except ValidationFailed as exc:
                apply_error(form, exc)
            else:
                messages.success(request, f"“{data['title']}” saved.")
                return redirect(_url(change))
        if status == 200:
            status = 422
    return render(
        request,
        "delivery/process/edit.html",
        {"membership": membership, "org": membership.organisation, "form": form, "change": change},
        status=status,
    )


@org_view
@require_POST
def change_compare(request: HttpRequest, membership: Membership, change_id: int) -> HttpResponse:
    change = services.get_change(membership, change_id)
    try:
        out = services.compare_change(membership, current_user(request), change.pk)
    except (ValidationFailed, TooManyRequests) as exc:
        messages.error(request, exc.message)
    else:
        if isinstance(out, Job):
            messages.info(request, "The comparison is being computed in the background.")
            return redirect(reverse("jobs:job", args=(membership.organisation.slug, out.pk)))
        messages.success(request, "Compared before and after.")
    return redirect(_url(change))


@org_view
@require_POST
def change_decide(request: HttpRequest, membership: Membership, change_id: int) -> HttpResponse:
    change = services.get_change(membership, change_id)
    form = DecisionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.decide(
                membership,
                current_user(request),
                change.pk,
                decision=data["decision"],
                learning=data["learning"],
                outcome=data["outcome"] or None,
                next_step=data["next_step"],
            )
        except (ValidationFailed, Conflict) as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Decision recorded on the hypothesis.")
            return redirect(_url(change))
    return _page(request, membership, change, decision_form=form, status=422)


@org_view
@require_POST
def change_delete(request: HttpRequest, membership: Membership, change_id: int) -> HttpResponse:
    change = services.get_change(membership, change_id)
    version = posted_version(request.POST)
    if version is None:
        messages.error(request, MISSING_VERSION)
        return redirect(_url(change))
    try:
        services.delete_change(membership, current_user(request), change.pk, version=version)
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.message)
        return redirect(_url(change))
    messages.success(request, f"“{change.title}” deleted; its hypothesis stays.")
    return redirect(reverse("delivery:changes", args=(membership.organisation.slug,)))


ORG = "o/<slug:org_slug>/"
CHANGE = ORG + "delivery/changes/<id:change_id>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "delivery/changes/", change_list, name="changes"),
    path(ORG + "delivery/changes/new/", change_new, name="change_new"),
    path(CHANGE, change_detail, name="change"),
    path(CHANGE + "edit/", change_edit, name="change_edit"),
    path(CHANGE + "compare/", change_compare, name="change_compare"),
    path(CHANGE + "decide/", change_decide, name="change_decide"),
    path(CHANGE + "delete/", change_delete, name="change_delete"),
]
