"""Delivery pages: metrics. /o/<org>/delivery/ (`delivery:overview`: flow and DORA per product, with each
DORA metric's band for the chosen report year, and the charts) and /o/<org>/products/<id>/delivery/
(`delivery:product`: the same for one product, and the forecast form with its backtest).

A scope holding more rows than TRUENORTH_DELIVERY_INLINE_MAX_ROWS is never computed in the request: the
page offers "Compute in the background" (POST `delivery:compute`), which submits a job and shows it; the
job's result links back here with ?job=<id>, and the page then shows that result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from truenorth.core.errors import DomainError, ValidationFailed
from truenorth.delivery import charts, dora
from truenorth.delivery.services import metrics as services
from truenorth.jobs.models import Job, JobStatus
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy.services import get_product

METRIC_LABELS = services.METRIC_LABELS


class WindowForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    year = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="DORA report year")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        years = dora.available_years()
        year = self.fields["year"]
        assert isinstance(year, forms.TypedChoiceField)
        year.choices = [(y, str(y)) for y in reversed(years)]


class ForecastForm(forms.Form):
    items = forms.IntegerField(
        required=False, min_value=1, max_value=services.MAX_FORECAST_ITEMS, label="Items"
    )
    by = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Date")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                services.check_forecast(data.get("items"), data.get("by"))
            except ValidationFailed as exc:
                apply_error(self, exc)
        return data


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def section_charts(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Vega-Lite specs of one report section (its JSON, as computed inline or by the job)."""
    f, d = section["flow"], section["dora"]
    cycle = {int(k): v for k, v in f["cycle_time_days"].items()}
    return {
        "cycle": charts.cycle_time_spec(
            [(c["id"], _when(c["done_at"]), c["cycle_days"]) for c in f["completed"]], cycle
        ),
        "throughput": charts.throughput_spec(
            [(_date(w["week"]), w["items"]) for w in f["throughput_per_week"]]
        ),
        "cfd": charts.cfd_spec([(_date(row["date"]), row) for row in f["cfd"]]),
        "age": charts.age_spec([(a["id"], a["state"], a["age_days"]) for a in f["ages"]], cycle.get(85)),
        "dora": charts.dora_trend_spec(
            [(_date(w["week"]), w["deployments"], w["failure_rate"]) for w in d.get("weeks", [])]
        ),
    }


def dora_rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, (label, unit) in METRIC_LABELS.items():
        metric = section["dora"]["metrics"][key]
        value = metric["value"]
        shown = None if value is None else (round(value * 100, 1) if unit == "%" else round(value, 1))
        rows.append({"key": key, "label": label, "unit": unit, "value": shown, "band": metric["band"]})
    return rows


def _decorate(section: dict[str, Any], prefix: str) -> dict[str, Any]:
    specs = [{"key": k, "id": f"{prefix}-{k}-spec", "spec": v} for k, v in section_charts(section).items()]
    return {**section, "prefix": prefix, "charts": specs, "dora_rows": dora_rows(section)}


def forecast_context(out: dict[str, Any]) -> dict[str, Any]:
    spec = charts.forecast_spec(
        [(h["value"], h["trials"]) for h in out["histogram"]],
        {int(k): v for k, v in out["percentiles"].items()},
        outcome="Items done" if out["question"] == "how_many" else "Days",
    )
    return {"forecast": out, "forecast_spec": spec}


def _job_result(membership: Membership, request: HttpRequest) -> tuple[Job | None, dict[str, Any] | None]:
    raw = request.GET.get("job", "")
    if not raw.isdigit():
        return None, None
    job = services.job_report(membership, int(raw))
    return job, (job.result if job.status == JobStatus.SUCCEEDED else None)


def _page(
    request: HttpRequest,
    membership: Membership,
    *,
    product_id: int | None,
    template: str,
    extra: dict[str, Any],
) -> HttpResponse:
    form = WindowForm(request.GET or None)
    since = until = year = None
    if form.is_bound and form.is_valid():
        since, until, year = form.cleaned_data["since"], form.cleaned_data["until"], form.cleaned_data["year"]
    scope = services.Scope(product_id=product_id)
    context: dict[str, Any] = {
        "membership": membership,
        "org": membership.organisation,
        "form": form,
        **extra,
    }
    try:
        start, end = services.window(since, until)
    except ValidationFailed as exc:
        apply_error(form, exc)
        start, end = services.window(None, None)
    job, result = _job_result(membership, request)
    if job is not None and result is None:
        context["job"] = job  # still running (or failed): the page links it
    if result is not None and "forecast" in result:  # a forecast job: shown in the forecast panel
        context.update(forecast_context(result["forecast"]))
        job, result = None, None
    rows = services.rows_in(membership, scope, end=end)
    context.update(
        rows=rows, limit=services.inline_max_rows(), start=start, end=end, query=request.GET.urlencode()
    )
    if result is None and job is None and rows <= services.inline_max_rows():
        result = services.report(
            membership, scope, start=start, end=end, year=year, by_product=product_id is None
        )
    if result is not None:
        context["report"] = result
        sections = result.get("products") if product_id is None else None
        context["sections"] = (
            [_decorate(s, f"p{s['id'] or 0}") for s in sections]
            if sections is not None
            else [_decorate(result, "all")]
        )
    return render(request, template, context)


@org_view
@require_GET
def overview(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership, product_id=None, template="delivery/metrics/overview.html", extra={})


@org_view
@require_GET
def product(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    item = get_product(membership, product_id)
    extra: dict[str, Any] = {"product": item}
    forecast_form = ForecastForm(request.GET if ("items" in request.GET or "by" in request.GET) else None)
    extra["forecast_form"] = forecast_form
    if forecast_form.is_bound and forecast_form.is_valid():
        data = forecast_form.cleaned_data
        try:
            request_ = services.Request(
                "forecast",
                services.Scope(product_id=item.pk),
                *services.window(None, None),
                items=data.get("items"),
                by=data.get("by"),
            )
            rows = services.rows_in(membership, request_.scope, end=request_.end)
            if rows <= services.inline_max_rows():
                extra.update(forecast_context(services.compute(membership, request_)["forecast"]))
            else:
                extra["forecast_too_big"] = True
        except DomainError as exc:
            apply_error(forecast_form, exc)
    return _page(
        request, membership, product_id=item.pk, template="delivery/metrics/product.html", extra=extra
    )


@org_view
@require_POST
def compute(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Submit the page's metrics (or forecast) as a background job and show the job."""
    data: QueryDict = request.POST
    raw = str(data.get("product_id", ""))
    product_id = int(raw) if raw.isdigit() else None
    if product_id is not None:
        get_product(membership, product_id)
        link = reverse("delivery:product", args=(membership.organisation.slug, product_id))
    else:
        link = reverse("delivery:overview", args=(membership.organisation.slug,))
    form = WindowForm(data)
    form.is_valid()
    cleaned = getattr(form, "cleaned_data", {})
    start, end = services.window(cleaned.get("since"), cleaned.get("until"))
    forecast = ForecastForm(data if ("items" in data or "by" in data) else None)
    if forecast.is_bound and forecast.is_valid():
        job_request = services.Request(
            "forecast",
            services.Scope(product_id=product_id),
            start,
            end,
            items=forecast.cleaned_data.get("items"),
            by=forecast.cleaned_data.get("by"),
        )
    else:
        job_request = services.Request(
            "report",
            services.Scope(product_id=product_id),
            start,
            end,
            year=cleaned.get("year"),
            by_product=product_id is None,
        )
    job = services.submit_job(membership, current_user(request), job_request, link=link)
    return redirect("jobs:job", org_slug=membership.organisation.slug, job_id=job.pk)


ORG = "o/<slug:org_slug>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "delivery/", overview, name="overview"),
    path(ORG + "delivery/compute/", compute, name="compute"),
    path(ORG + "products/<id:product_id>/delivery/", product, name="product"),
]
