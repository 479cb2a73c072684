"""Validation pages: the hypothesis board and ranking, the Test Card / Learning Card page, experiment and
decision forms, and the learning log.

Views only parse input and call hypotheses.services; every rule (roles, lifecycle, versions) is checked
there. NotFound and Forbidden go up to @org_view (404 page, 403 page).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, owner_choices, posted_version, require_version
from truenorth.htmx import is_htmx
from truenorth.hypotheses import forms as f
from truenorth.hypotheses import scoring, services
from truenorth.hypotheses.models import Hypothesis, HypothesisState
from truenorth.hypotheses.panels import hypothesis_panels
from truenorth.measures.models import Measure
from truenorth.orgs import services as org_services
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import services as strategy

CHOICE_ROWS = 1000
LOG_ROWS = 200
FormErrors = (ValidationFailed, Conflict)
COLUMNS = [(value, label) for value, label in HypothesisState.choices]


def _url(membership: Membership, name: str, *args: Any) -> str:
    return reverse(f"hypotheses:{name}", args=(membership.organisation.slug, *args))


def _goal_choices(membership: Membership, product_id: int) -> f.Choices:
    rows = (
        strategy.goals_of(membership)
        .filter(archived_at__isnull=True, product_id=product_id)
        .order_by("position", "id")
        .values_list("id", "title")[:CHOICE_ROWS]
    )
    return [(str(pk), f"#{pk} {title}") for pk, title in rows]


def _measure_choices(membership: Membership) -> f.Choices:
    rows = (
        Measure.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True)
        .order_by("name", "id")
        .values_list("id", "name")[:CHOICE_ROWS]
    )
    return [(str(pk), name) for pk, name in rows]


def _int_param(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


# --- the board ------------------------------------------------------------------------------------


def _board_context(request: HttpRequest, membership: Membership, product_id: int) -> dict[str, Any]:
    product = strategy.get_product(membership, product_id)
    goal_id = _int_param(request.GET.get("goal"))
    owner_id = _int_param(request.GET.get("owner"))
    q = request.GET.get("q", "")[:200]
    columns = services.board(membership, product.pk, goal_id=goal_id, owner_id=owner_id, q=q)
    owners = [m for m in org_services.members_of(membership) if m.can_write]
    return {
        "membership": membership,
        "org": membership.organisation,
        "product": product,
        # Each column with the columns its cards may move to (the buttons, the keyboard alternative).
        "columns": [(state, label, columns[state], services.TRANSITIONS[state]) for state, label in COLUMNS],
        "goals": _goal_choices(membership, product.pk),
        "owners": [(str(m.user_id), m.user.display_name) for m in owners],
        "filters": {"goal": str(goal_id or ""), "owner": str(owner_id or ""), "q": q},
        "can_write": membership.can_write,
        "findings": services.lint(membership, product_id=product.pk),
    }


@org_view
@require_GET
def board(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    return render(request, "hypotheses/board.html", _board_context(request, membership, product_id))


@org_view
@require_POST
def move(request: HttpRequest, membership: Membership, hypothesis_id: int) -> HttpResponse:
    """Move a card (drag and drop, or the move buttons); htmx gets the board back, with a toast if refused."""
    services.require_writer(membership)
    hypothesis = services.get_hypothesis(membership, hypothesis_id)
    error = ""
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        services.move_hypothesis(
            membership,
            current_user(request),
            hypothesis.pk,
            request.POST.get("state", ""),
            version=version,
            position=_int_param(request.POST.get("position")),
        )
    except FormErrors as exc:
        error = exc.message
    if not is_htmx(request):
        if error:
            messages.error(request, error)
        return redirect(_url(membership, "board", hypothesis.product_id))
    context = _board_context(request, membership, hypothesis.product_id)
    context["toast"] = error
    return render(request, "hypotheses/_board.html", context, status=422 if error else 200)


@org_view
@require_GET
def rank(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    product = strategy.get_product(membership, product_id)
    method = request.GET.get("method", "ice")
    if method not in scoring.METHODS:
        method = "ice"
    return render(
        request,
        "hypotheses/rank.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "method": method,
            "methods": [(m, scoring.LABELS[m]) for m in scoring.METHODS],
            "rows": services.ranked(membership, product.pk, method),
        },
    )


@org_view
@require_GET
def learning_log(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    product = strategy.get_product(membership, product_id)
    q = request.GET.get("q", "")[:200]
    return render(
        request,
        "hypotheses/learnings.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "q": q,
            "decisions": list(services.learnings(membership, product.pk, q)[:LOG_ROWS]),
        },
    )


# --- one hypothesis -------------------------------------------------------------------------------


def _fields(form: f.HypothesisForm) -> dict[str, Any]:
    data = form.cleaned_data
    out = {
        k: data[k]
        for k in (
            "title",
            "capability",
            "who",
            "outcome",
            "metric_name",
            "baseline",
            "target",
            "by_date",
            *services.SCORE_FIELDS,
        )
    }
    out["goal_id"] = f.optional_int(data["goal"])
    out["owner_id"] = f.optional_int(data["owner"])
    out["measure_id"] = f.optional_int(data["measure"])
    return out


ALIASES = {"goal_id": "goal", "owner_id": "owner", "measure_id": "measure"}


def _show(form: f.HypothesisForm, exc: ValidationFailed | Conflict) -> None:
    exc.field = ALIASES.get(exc.field or "", exc.field)
    apply_error(form, exc)


def _hypothesis_form(
    request: HttpRequest, membership: Membership, product_id: int, **kwargs: Any
) -> f.HypothesisForm:
    return f.HypothesisForm(
        request.POST or None,
        goals=_goal_choices(membership, product_id),
        owners=owner_choices(org_services.members_of(membership)),
        measures=_measure_choices(membership),
        **kwargs,
    )


@org_view
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    product = strategy.get_product(membership, product_id)
    initial = {"owner": str(current_user(request).pk), "goal": request.GET.get("goal", "")}
    form = _hypothesis_form(request, membership, product.pk, initial=initial)
    if request.method == "POST" and form.is_valid():
        fields = _fields(form)
        try:
            made = services.create_hypothesis(
                membership, current_user(request), product.pk, title=fields.pop("title"), **fields
            )
        except FormErrors as exc:
            _show(form, exc)
        else:
            messages.success(request, f"Hypothesis “{made.title}” created.")
            return redirect(_url(membership, "hypothesis", made.pk))
    return render(
        request,
        "hypotheses/form.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "form": form,
            "heading": "New hypothesis",
        },
    )


@org_view
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, membership: Membership, hypothesis_id: int) -> HttpResponse:
    services.require_writer(membership)
    h = services.get_hypothesis(membership, hypothesis_id)
    initial: dict[str, Any] = {
        k: getattr(h, k)
        for k in (
            "title",
            "capability",
            "who",
            "outcome",
            "metric_name",
            "baseline",
            "target",
            "by_date",
            "version",
            *services.SCORE_FIELDS,
        )
    }
    initial.update(goal=str(h.goal_id or ""), owner=str(h.owner_id or ""), measure=str(h.measure_id or ""))
    form = _hypothesis_form(request, membership, h.product_id, initial=initial)
    require_version(form)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_hypothesis(
                membership, current_user(request), h.pk, version=form.cleaned_data["version"], **_fields(form)
            )
        except FormErrors as exc:
            _show(form, exc)
        else:
            messages.success(request, "Hypothesis saved.")
            return redirect(_url(membership, "hypothesis", h.pk))
    return render(
        request,
        "hypotheses/form.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": h.product,
            "form": form,
            "hypothesis": h,
            "heading": f"Edit “{h.title}”",
        },
    )


def _page(request: HttpRequest, membership: Membership, hypothesis_id: int, **bound: Any) -> HttpResponse:
    h = services.get_hypothesis(membership, hypothesis_id)
    experiments = list(
        h.experiments.prefetch_related("variations", "metrics__measure", "snapshots").order_by(
            "created_at", "id"
        )
    )
    decision = services.decision_of(h)
    return render(
        request,
        "hypotheses/hypothesis.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "h": h,
            "experiments": experiments,
            "decision": decision,
            "can_write": membership.can_write,
            "conclude_form": bound.get("conclude_form") or f.ConcludeForm(initial={"version": h.version}),
            "scores": [(m.upper(), scoring.score(m, services.inputs_of(h))) for m in scoring.METHODS],
            "next_states": services.TRANSITIONS[h.state],
            "hypothesis_panels": hypothesis_panels(membership, h),
        },
        status=422 if bound else 200,
    )


@org_view
@require_GET
def hypothesis(request: HttpRequest, membership: Membership, hypothesis_id: int) -> HttpResponse:
    return _page(request, membership, hypothesis_id)


@org_view
@require_POST
def conclude(request: HttpRequest, membership: Membership, hypothesis_id: int) -> HttpResponse:
    services.require_writer(membership)
    form = f.ConcludeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.conclude(
                membership,
                current_user(request),
                hypothesis_id,
                outcome=data["outcome"],
                decision=data["decision"],
                learning=data["learning"],
                observed=data["observed"],
                next_step=data["next_step"],
                version=data["version"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Concluded: the decision and what we learned are recorded.")
            return redirect(_url(membership, "hypothesis", hypothesis_id))
    return _page(request, membership, hypothesis_id, conclude_form=form)


# --- experiments ----------------------------------------------------------------------------------


def _experiment_page(
    request: HttpRequest, membership: Membership, h: Hypothesis, form: f.ExperimentForm, heading: str
) -> HttpResponse:
    return render(
        request,
        "hypotheses/experiment_form.html",
        {"membership": membership, "org": membership.organisation, "h": h, "form": form, "heading": heading},
    )


def _design(form: f.ExperimentForm) -> dict[str, Any]:
    data = form.cleaned_data
    keys = (
        "name",
        "kind",
        "state",
        "minimum_detectable_effect",
        "alpha",
        "power",
        "planned_sample_size",
        "start_date",
        "stop_date",
    )
    return {k: data[k] for k in keys}


def _experiment_error(form: f.ExperimentForm, exc: ValidationFailed | Conflict) -> None:
    field = exc.field or ""
    if field.startswith("variations"):
        exc.field = "variations"
    elif field.startswith("metrics"):
        exc.field = "primary_metric"
    apply_error(form, exc)


@org_view
@require_http_methods(["GET", "POST"])
def experiment_create(request: HttpRequest, membership: Membership, hypothesis_id: int) -> HttpResponse:
    services.require_writer(membership)
    h = services.get_hypothesis(membership, hypothesis_id)
    initial = {
        "name": f"Test: {h.title}"[:200],
        "variations": "control: 0.5\nvariant: 0.5",
        "primary_metric": h.metric_label,
        "primary_measure": str(h.measure_id or ""),
        "alpha": 0.05,
        "power": 0.8,
    }
    form = f.ExperimentForm(request.POST or None, initial=initial, measures=_measure_choices(membership))
    if request.method == "POST" and form.is_valid():
        try:
            services.create_experiment(
                membership,
                current_user(request),
                h.pk,
                variations=form.cleaned_data["variations"],
                metrics=form.metrics(),
                **_design(form),
            )
        except FormErrors as exc:
            _experiment_error(form, exc)
        else:
            messages.success(request, "Experiment designed.")
            return redirect(_url(membership, "hypothesis", h.pk) + "#experiments")
    return _experiment_page(request, membership, h, form, "New experiment")


@org_view
@require_http_methods(["GET", "POST"])
def experiment_edit(request: HttpRequest, membership: Membership, experiment_id: int) -> HttpResponse:
    services.require_writer(membership)
    e = services.get_experiment(membership, experiment_id)
    metrics = list(e.metrics.all())
    primary = next((m for m in metrics if m.role == "primary"), None)
    initial = {
        **{
            k: getattr(e, k)
            for k in (
                "name",
                "kind",
                "state",
                "minimum_detectable_effect",
                "alpha",
                "power",
                "planned_sample_size",
                "start_date",
                "stop_date",
                "version",
            )
        },
        "variations": "\n".join(f"{v.name}: {v.allocation:g}" for v in e.variations.all()),
        "primary_metric": primary.name if primary else "",
        "primary_measure": str(primary.measure_id or "") if primary else "",
        "secondary_metrics": ", ".join(m.name for m in metrics if m.role == "secondary"),
        "guardrail_metrics": ", ".join(m.name for m in metrics if m.role == "guardrail"),
    }
    form = f.ExperimentForm(request.POST or None, initial=initial, measures=_measure_choices(membership))
    require_version(form)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_experiment(
                membership,
                current_user(request),
                e.pk,
                version=form.cleaned_data["version"],
                variations=form.cleaned_data["variations"],
                metrics=form.metrics(),
                **_design(form),
            )
        except FormErrors as exc:
            _experiment_error(form, exc)
        else:
            messages.success(request, "Experiment saved.")
            return redirect(_url(membership, "hypothesis", e.hypothesis_id) + "#experiments")
    return _experiment_page(request, membership, e.hypothesis, form, f"Edit “{e.name}”")
