"""Value pages: the measure catalogue, a product's measures, a measure with its chart and observations,
file imports with a preview, the value dashboard, and investment against return.

Views only parse forms and call measures.services (or the dashboard query); every rule is checked
there. A service error is shown on the form field it names; NotFound and Forbidden go up to @org_view
(404 page, 403 page), so a stakeholder's POST is a 403 before any input is read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core import forms as shared_forms
from truenorth.core.errors import Conflict, TooManyRequests, ValidationFailed
from truenorth.htmx import is_htmx
from truenorth.measures import annotations as chart_annotations
from truenorth.measures import charts, imports, jobs, maths, services
from truenorth.measures import forms as f
from truenorth.measures.dashboard import product_dashboard
from truenorth.measures.dashboard_cards import column_cards
from truenorth.measures.models import KVA, Measure, Observation
from truenorth.measures.views import data_sources
from truenorth.orgs import services as org_services
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import panels as strategy_panels
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Goal

OBSERVATION_ROWS = 200
CHART_POINTS = 5000
CHOICE_ROWS = 1000
FormErrors = (ValidationFailed, Conflict)


# --- helpers --------------------------------------------------------------------------------------


def _owners(membership: Membership) -> f.Choices:
    return shared_forms.owner_choices(org_services.members_of(membership))


def _products(membership: Membership) -> f.Choices:
    return [
        (str(pk), name) for pk, name in strategy_services.products_of(membership).values_list("id", "name")
    ]


def _measure_url(membership: Membership, measure_id: int, anchor: str = "") -> str:
    url = reverse(
        "measures:measure", kwargs={"org_slug": membership.organisation.slug, "measure_id": measure_id}
    )
    return f"{url}#{anchor}" if anchor else url


def _by_kva(measures: Iterable[Measure]) -> list[tuple[str, str, list[Measure]]]:
    grouped: dict[str, list[Measure]] = {k: [] for k in KVA.values}
    for m in measures:
        grouped.setdefault(m.kva, []).append(m)
    return [(key, str(label), grouped[key]) for key, label in KVA.choices]


# --- catalogue ------------------------------------------------------------------------------------


def _chart(membership: Membership, measure: Measure) -> tuple[list[tuple[Any, float]], dict[str, Any]]:
    """The measure's latest current observations and its one chart definition (page and SVG alike)."""
    points = list(
        Observation.objects.filter(measure=measure, superseded=False)
        .order_by("-observed_at", "-id")
        .values_list("observed_at", "value")[:CHART_POINTS]
    )
    spec = charts.chart_spec(
        points,
        title=measure.name,
        unit=measure.unit,
        baseline=measure.baseline,
        target=measure.target,
        annotations=chart_annotations.for_measure(membership, measure.pk),
    )
    return points, spec


@org_view
@require_http_methods(["GET", "POST"])
def catalogue(request: HttpRequest, membership: Membership) -> HttpResponse:
    products = _products(membership)
    form = f.AdoptForm(request.POST or None, products=products)
    if request.method == "POST":
        services.require_writer(membership)
        if form.is_valid():
            try:
                measure = services.adopt_catalogue_measure(
                    membership,
                    current_user(request),
                    form.cleaned_data["catalogue_id"],
                    int(form.cleaned_data["product_id"]),
                )
            except FormErrors as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{measure.product} now tracks “{measure.name}”.")
                return redirect(_measure_url(membership, measure.pk))
        else:
            messages.error(request, "Choose a product to adopt the measure into.")
    entries = list(services.catalogue_of(membership))
    grouped: dict[str, list[Any]] = {k: [] for k in KVA.values}
    for e in entries:
        grouped.setdefault(e.kva, []).append(e)
    return render(
        request,
        "measures/catalogue.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "groups": [(key, label, grouped[key]) for key, label in KVA.choices],
            "products": products,
        },
        status=422 if request.method == "POST" else 200,
    )


# --- a product's measures -------------------------------------------------------------------------


@org_view
@require_http_methods(["GET", "POST"])
def product_measures(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    product = strategy_services.get_product(membership, product_id)
    if request.method == "POST":
        services.require_writer(membership)
    owners = _owners(membership) if membership.can_write else []
    form = f.MeasureForm(
        request.POST or None, initial={"owner": str(current_user(request).pk)}, owners=owners
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            measure = services.create_measure(
                membership,
                current_user(request),
                name=data["name"],
                kva=data["kva"],
                product_id=product.pk,
                unit=data["unit"],
                direction=data["direction"],
                owner_id=shared_forms.optional_int(data["owner"]),
                cadence_days=data["cadence_days"],
                description=data["description"],
                baseline=data["baseline"],
                target=data["target"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"“{measure.name}” created. Record its first observation.")
            return redirect(_measure_url(membership, measure.pk))
    now = timezone.now()
    measures = list(services.with_last_observed(services.measures_of(membership, product_id=product.pk)))
    stale = {
        m.pk
        for m in measures
        if maths.is_stale(getattr(m, "last_observed_at", None), m.cadence_days, now)  # annotated
    }
    groups = _by_kva(measures)
    return render(
        request,
        "measures/product_measures.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "groups": groups,
            "stale": stale,
            "missing": [label for _, label, items in groups if not items],
            "form": form,
        },
        status=422 if form.is_bound and form.errors else 200,
    )


# --- one measure ----------------------------------------------------------------------------------


def _measure_page(
    request: HttpRequest,
    membership: Membership,
    measure_id: int,
    *,
    observation_form: f.ObservationForm | None = None,
    upload_form: f.UploadForm | None = None,
    correction: tuple[int, f.CorrectionForm] | None = None,
    query_form: Any = None,
    status: int = 200,
) -> HttpResponse:
    measure = services.get_measure(membership, measure_id)
    show_superseded = request.GET.get("superseded") == "1"
    rows = list(
        services.observations_of(membership, measure.pk, include_superseded=show_superseded).select_related(
            "recorded_by"
        )[:OBSERVATION_ROWS]
    )
    points, spec = _chart(membership, measure)
    latest = points[0] if points else None
    now = timezone.now()
    correction_id, correction_form = correction if correction else (None, None)
    return render(
        request,
        "measures/measure.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "measure": measure,
            "rows": rows,
            "row_limit": OBSERVATION_ROWS,
            "show_superseded": show_superseded,
            "latest": latest,
            "stale": maths.is_stale(latest[0] if latest else None, measure.cadence_days, now),
            "distance": maths.distance_to_target(
                latest[1] if latest else None, measure.target, measure.direction
            ),
            "spec": spec,
            "point_count": len(points),
            "observation_form": observation_form or f.ObservationForm(),
            "upload_form": upload_form or f.UploadForm(),
            "correction_id": correction_id,
            "correction_form": correction_form,
            **data_sources.sql_context(request, membership, measure, query_form),
            **strategy_panels.measure_goals_context(membership, measure),
        },
        status=status,
    )


@org_view
@require_GET
def measure(request: HttpRequest, membership: Membership, measure_id: int) -> HttpResponse:
    return _measure_page(request, membership, measure_id)


@org_view
@require_POST
def measure_refresh(request: HttpRequest, membership: Membership, measure_id: int) -> HttpResponse:
    """ "Refresh now": submit the refresh as a background job and show its page (which follows it)."""
    measure = services.get_measure(membership, measure_id)
    try:
        job = jobs.submit_refresh(membership, current_user(request), measure)
    except (ValidationFailed, TooManyRequests) as exc:
        messages.error(request, exc.message)
        return redirect(_measure_url(membership, measure_id, ""))
    return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))


@org_view
@require_POST
def observation_add(request: HttpRequest, membership: Membership, measure_id: int) -> HttpResponse:
    services.require_writer(membership)
    form = f.ObservationForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_observation(
                membership,
                current_user(request),
                measure_id,
                data["value"],
                observed_at=data["observed_at"],
                note=data["note"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Observation recorded.")
            return redirect(_measure_url(membership, measure_id, "observations"))
    return _measure_page(request, membership, measure_id, observation_form=form, status=422)


@org_view
@require_POST
def observation_correct(
    request: HttpRequest, membership: Membership, measure_id: int, observation_id: int
) -> HttpResponse:
    services.require_writer(membership)
    measure = services.get_measure(membership, measure_id)
    if not Observation.objects.filter(pk=observation_id, measure=measure).exists():
        return _not_found(request, membership)
    form = f.CorrectionForm(request.POST)
    if form.is_valid():
        try:
            services.correct_observation(
                membership,
                current_user(request),
                observation_id,
                form.cleaned_data["value"],
                note=form.cleaned_data["note"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Correction recorded; the earlier value is kept, marked superseded.")
            return redirect(_measure_url(membership, measure_id, "observations"))
    return _measure_page(request, membership, measure_id, correction=(observation_id, form), status=422)


def _not_found(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(request, "404.html", {"membership": membership}, status=404)


# --- file import: upload, preview, confirm --------------------------------------------------------


@org_view
@require_POST
def measure_import(request: HttpRequest, membership: Membership, measure_id: int) -> HttpResponse:
    """First step: parse the start of the uploaded file (at most imports.PREVIEW_CHECK_ROWS rows) and show
    what would be imported, row by row. Second step (the confirm form, carrying the same file): import it
    as a background job and show the job's page."""
    services.require_writer(membership)
    measure = services.get_measure(membership, measure_id)
    context: dict[str, Any] = {"membership": membership, "org": membership.organisation, "measure": measure}
    if request.POST.get("confirm") == "1":
        confirm = f.ConfirmImportForm(request.POST)
        if not confirm.is_valid():
            messages.error(request, "The file to import was lost; upload it again.")
            return redirect(_measure_url(membership, measure_id, "import"))
        try:
            content = base64.b64decode(confirm.cleaned_data["content"], validate=True)
        except (binascii.Error, ValueError):
            messages.error(request, "The file to import was damaged; upload it again.")
            return redirect(_measure_url(membership, measure_id, "import"))
        try:  # the import runs as a background job; its page follows it
            job = imports.submit_import(
                membership,
                current_user(request),
                confirm.cleaned_data["filename"],
                content,
                idempotency_key=confirm.cleaned_data["idempotency_key"],
                measure_id=measure.pk,
            )
        except (*FormErrors, TooManyRequests) as exc:
            messages.error(request, exc.message)
            return redirect(_measure_url(membership, measure_id, "import"))
        return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))

    form = f.UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        status = 413 if form.has_error("file", code="too_large") else 422
        return _measure_page(request, membership, measure_id, upload_form=form, status=status)
    upload = form.cleaned_data["file"]
    content = upload.read()
    try:
        preview = imports.preview_import(membership, upload.name, content)
    except FormErrors as exc:
        form.add_error("file", exc.message)
        return _measure_page(request, membership, measure_id, upload_form=form, status=422)
    context.update(
        preview=preview,
        confirm_form=f.ConfirmImportForm(
            initial={
                "filename": upload.name,
                "content": base64.b64encode(content).decode("ascii"),
                "idempotency_key": f"web-import-{uuid.uuid4()}",
            }
        ),
    )
    return render(request, "measures/import_preview.html", context)


@org_view
@require_GET
def measure_export(request: HttpRequest, membership: Membership, measure_id: int, fmt: str) -> HttpResponse:
    measure = services.get_measure(membership, measure_id)
    body = services.export_observations(membership, measure.pk, fmt)
    kind = "text/csv" if fmt == "csv" else "application/json"
    response = HttpResponse(body, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="measure-{measure.pk}.{fmt}"'
    return response


@org_view
@require_GET
def measure_chart_svg(request: HttpRequest, membership: Membership, measure_id: int) -> HttpResponse:
    """The measure page's chart as a static SVG (the same definition the browser draws)."""
    measure = services.get_measure(membership, measure_id)
    _, spec = _chart(membership, measure)
    response = HttpResponse(charts.chart_svg(spec), content_type="image/svg+xml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="measure-{measure.pk}.svg"'
    return response


# --- the value dashboard --------------------------------------------------------------------------


@org_view
@require_GET
def dashboard(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    form = f.PeriodForm(request.GET or None)
    now = timezone.now()
    since, until = form.window(now)
    board = product_dashboard(membership, product_id, since=since, until=until, now=now)
    context = {
        "membership": membership,
        "org": membership.organisation,
        "product": board.product,
        "board": board,
        # The cards are built in Python (200 of them through the template language cost as much as
        # the dashboard's queries): measures/dashboard_cards.py.
        "column_cards": column_cards(board.columns, membership.organisation.slug),
        "form": form,
        "period_days": max(1, round((until - since) / dt.timedelta(days=1))),
    }
    template = "measures/_dashboard_body.html" if is_htmx(request) else "measures/dashboard.html"
    return render(request, template, context)


# --- investment and return ------------------------------------------------------------------------


def _goal_choices(membership: Membership, product_id: int) -> f.Choices:
    goals = (
        Goal.objects.filter(
            organisation_id=membership.organisation_id, product_id=product_id, archived_at__isnull=True
        )
        .order_by("position", "id")
        .values_list("id", "title")[:CHOICE_ROWS]
    )
    return [(str(pk), f"#{pk} {title}") for pk, title in goals]


def _measure_choices(membership: Membership, product_id: int) -> f.Choices:
    rows = services.measures_of(membership, product_id=product_id).values_list("id", "name", "unit")
    return [(str(pk), f"{name} ({unit})" if unit else name) for pk, name, unit in rows[:CHOICE_ROWS]]


def _investment_page(
    request: HttpRequest,
    membership: Membership,
    product_id: int,
    *,
    form: f.InvestmentForm | None = None,
    value_form: f.ValueMeasureForm | None = None,
    status: int = 200,
) -> HttpResponse:
    product = strategy_services.get_product(membership, product_id)
    value_measure = services.value_measure_of(membership, product.pk)
    roi = services.return_on_investment(membership, product.pk)
    investments = [(i, services.invested(i)) for i in services.investments_of(membership, product.pk)]
    return render(
        request,
        "measures/investments.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "investments": investments,
            "roi": roi,
            "roi_spec": charts.return_spec(
                roi.series,
                currency=roi.currency or "",
                value_name=value_measure.name if value_measure else "",
                value_unit=value_measure.unit if value_measure else "",
            ),
            "value_measure": value_measure,
            "form": form or f.InvestmentForm(goals=_goal_choices(membership, product.pk)),
            "value_form": value_form
            or f.ValueMeasureForm(
                initial={"measure": str(value_measure.pk) if value_measure else ""},
                measures=_measure_choices(membership, product.pk),
            ),
        },
        status=status,
    )


@org_view
@require_http_methods(["GET", "POST"])
def investments(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    if request.method != "POST":
        return _investment_page(request, membership, product_id)
    services.require_writer(membership)
    form = f.InvestmentForm(request.POST, goals=_goal_choices(membership, product_id))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_investment(
                membership,
                current_user(request),
                product_id,
                period_start=data["period_start"],
                period_end=data["period_end"],
                amount=data["amount"],
                people=data["people"],
                daily_rate=data["daily_rate"],
                currency=data["currency"],
                goal_id=shared_forms.optional_int(data["goal"]),
                note=data["note"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Investment recorded.")
            return redirect(
                "measures:investments", org_slug=membership.organisation.slug, product_id=product_id
            )
    return _investment_page(request, membership, product_id, form=form, status=422)


@org_view
@require_POST
def value_measure(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    form = f.ValueMeasureForm(request.POST, measures=_measure_choices(membership, product_id))
    if form.is_valid():
        try:
            services.set_value_measure(
                membership,
                current_user(request),
                product_id,
                shared_forms.optional_int(form.cleaned_data["measure"]),
            )
        except FormErrors as exc:
            form.add_error("measure", exc.message)
        else:
            messages.success(request, "Value measure saved.")
            return redirect(
                "measures:investments", org_slug=membership.organisation.slug, product_id=product_id
            )
    return _investment_page(request, membership, product_id, value_form=form, status=422)
