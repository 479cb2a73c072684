"""Delivery API: flow and DORA metrics and Monte Carlo forecasts (services/metrics.py).

Each answers 200 with the figures, or 202 with a background job (`Location`: GET it until it has
succeeded; its `result` holds the same JSON) when the scope holds more rows than
TRUENORTH_DELIVERY_INLINE_MAX_ROWS.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.core.schemas import READ_ERRORS, ObjectId
from truenorth.delivery.services import metrics as services
from truenorth.jobs.models import Job
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope

router = Router(tags=["delivery"])

ASYNC = (
    " 202 with a background job instead when the scope holds more state transitions and deployments than "
    "TRUENORTH_DELIVERY_INLINE_MAX_ROWS (its `result` is the same JSON)."
)


class ScopeFilter(Schema):
    product_id: ObjectId | None = Field(None, description="Only this product's sources.")
    source_id: ObjectId | None = Field(None, description="Only this delivery source.")
    team_id: ObjectId | None = Field(None, description="Only this team's sources.")


class WindowFilter(ScopeFilter):
    since: dt.date | None = Field(None, description="First day of the window (default: 90 days ago).")
    until: dt.date | None = Field(None, description="Last day of the window (default: today).")


class DoraFilter(WindowFilter):
    year: int | None = Field(None, description="DORA report year whose band table to use (default: latest).")


class ForecastFilter(ScopeFilter):
    items: int | None = Field(None, description="When will this many items be done? (not with `by`)")
    by: dt.date | None = Field(
        None, description="How many items will be done by this date? (not with `items`)"
    )


def _scope(filters: ScopeFilter) -> services.Scope:
    return services.Scope(filters.product_id, filters.source_id, filters.team_id)


def _answer(request: HttpRequest, response: HttpResponse, slug: str, make: Any, key: str) -> Any:
    m, user = scope(request, slug)  # another organisation is "not found" before any input is judged
    job_request: services.Request = make()
    out = services.compute_or_submit(m, user, job_request)
    if isinstance(out, Job):
        return accepted(response, out)
    if key == "flow":
        out.pop("dora", None)
    elif key == "dora":
        out.pop("flow", None)
    return Status(200, out)


@router.get(
    "/{slug}/delivery/flow",
    response={200: dict[str, Any], 202: JobOut, **READ_ERRORS, **SUBMIT_ERRORS},
    summary="Flow metrics: cycle and lead time percentiles, throughput, WIP, ages, flow efficiency, CFD",
    description="`flow`: cycle_time_days and lead_time_days (50/85/95), throughput_per_week, wip, ages, "
    "flow_efficiency (null without waiting states), completed (the scatterplot) and cfd." + ASYNC,
)
def flow(request: HttpRequest, response: HttpResponse, slug: str, filters: Query[WindowFilter]) -> Any:
    def make() -> services.Request:
        start, end = services.window(filters.since, filters.until)
        return services.Request("report", _scope(filters), start, end)

    return _answer(request, response, slug, make, "flow")


@router.get(
    "/{slug}/delivery/dora",
    response={200: dict[str, Any], 202: JobOut, **READ_ERRORS, **SUBMIT_ERRORS},
    summary="DORA metrics with their performance bands (report year `year`) and the weekly trend",
    description="`dora.metrics`: deployment_frequency_per_week, lead_time_hours, change_failure_rate, "
    "time_to_restore_hours, rework_rate, each {value, band}; `dora.years` lists the band tables; 422 "
    "naming `year` for a year without one." + ASYNC,
)
def dora(request: HttpRequest, response: HttpResponse, slug: str, filters: Query[DoraFilter]) -> Any:
    def make() -> services.Request:
        start, end = services.window(filters.since, filters.until)
        services.check_year(filters.year)
        return services.Request("report", _scope(filters), start, end, year=filters.year)

    return _answer(request, response, slug, make, "dora")


@router.get(
    "/{slug}/delivery/forecast",
    response={200: dict[str, Any], 202: JobOut, **READ_ERRORS, **SUBMIT_ERRORS},
    summary="Monte Carlo forecast: how many items by a date (`by`) or when N items are done (`items`)",
    description="Exactly one of `items` and `by` (422 naming `items` otherwise). `forecast.percentiles`: "
    "50/85/95 (items reached, or days needed, in that share of trials); `forecast.backtest`: how often "
    "the 85% figure held on the team's own history (`held_85` of `forecasts`)." + ASYNC,
)
def forecast(request: HttpRequest, response: HttpResponse, slug: str, filters: Query[ForecastFilter]) -> Any:
    def make() -> services.Request:
        services.check_forecast(filters.items, filters.by)
        start, end = services.window(None, None)
        return services.Request("forecast", _scope(filters), start, end, items=filters.items, by=filters.by)

    return _answer(request, response, slug, make, "forecast")
