"""Delivery metrics from the stored records: flow (flow.py), DORA (dora.py) and forecasts (forecast.py).

Everything is scoped to the membership's organisation and optionally narrowed to one product, one source
or one team (`Scope`); archived sources are left out. Loading takes a FIXED number of queries whatever the
data size (values_list rows streamed with `.iterator()`, never a query per item):

- flow: sources (1), items (1), transitions (1);
- DORA: sources (1), deployments (1), commits (1), pull requests (1), incidents (1).

Each source's own `state_mapping` decides its states' categories: sources sharing a mapping are computed
together; when sources with different mappings are combined, the percentiles are taken over all their
items, counts are summed, and flow efficiency is the groups' active days over their active + waiting days.
Each source's own `production_environment` decides which of its deployments are production.

Flow loads each item's transitions into a few numbers an item as it streams them (`item_table`, see
services/metrics_flow.py), so 1,000,000 transitions need tens of MB, not the transitions as objects;
DORA skips commits no deployment lists. The parts live in services/metrics_load.py (scope, rows, DORA
records), metrics_flow.py and metrics_forecast.py; every name is importable from here.

Size: `rows_in(...)` counts the state transitions and deployments up to the window's end (two counts).
Pages compute inline only up to settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS; above it they `submit_report`
a background job (kind METRICS_KIND) and show it (its result is the same JSON as `report`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.delivery import dora, flow
from truenorth.delivery.services.metrics_flow import (
    _mapping,
    _merge,
    flow_for,
    flow_of,
    histories,
    item_table,
)
from truenorth.delivery.services.metrics_forecast import (
    BACKTEST_TRIALS,
    FORECAST_HISTORY_DAYS,
    FORECAST_SEED,
    FORECAST_TRIALS,
    MAX_FORECAST_DAYS,
    MAX_FORECAST_ITEMS,
    ForecastResult,
    _backtest,
    _today,
    check_by,
    check_items,
)
from truenorth.delivery.services.metrics_load import (
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    PRODUCTION,
    DoraInputs,
    Scope,
    SourceRow,
    combined,
    dora_inputs,
    inline_max_rows,
    rows_in,
    sources_in,
    window,
)
from truenorth.jobs.models import ACTIVE, Job
from truenorth.jobs.services import Progress, acting_membership, register, submit
from truenorth.orgs.models import Membership

__all__ = [
    "BACKTEST_TRIALS",
    "CHART_POINTS",
    "DEFAULT_WINDOW_DAYS",
    "FORECAST_HISTORY_DAYS",
    "FORECAST_SEED",
    "FORECAST_TRIALS",
    "MAX_FORECAST_DAYS",
    "MAX_FORECAST_ITEMS",
    "MAX_WINDOW_DAYS",
    "METRICS_KIND",
    "METRIC_LABELS",
    "PRODUCTION",
    "DoraInputs",
    "ForecastResult",
    "Request",
    "Scope",
    "SourceRow",
    "_backtest",
    "_history",
    "_mapping",
    "_merge",
    "_today",
    "check_by",
    "check_forecast",
    "check_items",
    "check_year",
    "combined",
    "compute",
    "compute_or_submit",
    "dora_for",
    "dora_inputs",
    "dora_of",
    "dora_out",
    "dora_weeks",
    "flow_for",
    "flow_of",
    "flow_out",
    "forecast_items_by",
    "forecast_out",
    "forecast_when",
    "histories",
    "inline_max_rows",
    "item_table",
    "job_report",
    "report",
    "rows_in",
    "run_metrics",
    "sources_in",
    "submit_job",
    "window",
]

METRICS_KIND = "delivery.metrics"
CHART_POINTS = 5_000  # at most this many items in the JSON's per-item lists (flow_out)
WEEK = dt.timedelta(days=7)
# How the faces name the DORA metrics, and their units ("%" for rates shown as percentages).
METRIC_LABELS = {
    "deployment_frequency_per_week": ("Deployment frequency", "per week"),
    "lead_time_hours": ("Lead time for changes", "hours"),
    "change_failure_rate": ("Change failure rate", "%"),
    "time_to_restore_hours": ("Time to restore service", "hours"),
    "rework_rate": ("Deployment rework rate", "%"),
}


# --- DORA ------------------------------------------------------------------------------------------------


def dora_of(inputs: DoraInputs, *, start: dt.datetime, end: dt.datetime, year: int) -> dora.DoraMetrics:
    return dora.dora_metrics(
        inputs.deployments,
        inputs.commits,
        inputs.pulls,
        inputs.incidents,
        start=start,
        end=end,
        production=PRODUCTION,
        year=year,
    )


def check_year(year: int | None) -> int:
    years = dora.available_years()
    if year is None:
        return years[-1]
    if year not in years:
        raise ValidationFailed(
            f"There is no DORA band table for {year}; choose one of {', '.join(map(str, years))}.",
            field="year",
        )
    return year


def dora_for(
    membership: Membership,
    *,
    product_id: int | None = None,
    source_id: int | None = None,
    team_id: int | None = None,
    start: dt.datetime,
    end: dt.datetime,
    year: int | None = None,
) -> dora.DoraMetrics:
    """DORA metrics of the scope over [start, end], banded with the report of `year` (default: latest)."""
    chosen = check_year(year)
    sources = sources_in(membership, Scope(product_id, source_id, team_id))
    return dora_of(combined(dora_inputs(sources, end), sources), start=start, end=end, year=chosen)


def dora_weeks(
    inputs: DoraInputs, *, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.date, int, float | None]]:
    """(monday, production deployments, change failure rate) for every week of the window (the trend)."""
    named = {i.deployment_id for i in inputs.incidents if i.deployment_id}
    first = start.date() - dt.timedelta(days=start.weekday())
    weeks: dict[dt.date, list[int]] = {}
    monday = first
    while monday <= end.date():
        weeks[monday] = [0, 0]
        monday += WEEK
    for d in dora.group_deployments(inputs.deployments, PRODUCTION):
        if not start <= d.deployed_at <= end:
            continue
        day = d.deployed_at.date()
        counts = weeks[day - dt.timedelta(days=day.weekday())]
        counts[0] += 1
        counts[1] += int(not d.succeeded or bool(d.ids & named))
    return [(week, n, failed / n if n else None) for week, (n, failed) in weeks.items()]


# --- forecasts -------------------------------------------------------------------------------------------


def _history(membership: Membership, scope: Scope, history_days: int) -> list[int]:
    end = timezone.now()
    start = end - dt.timedelta(days=history_days)
    metrics = flow_for(membership, **vars(scope), start=start, end=end)
    return metrics.daily_throughput


def forecast_items_by(
    membership: Membership,
    *,
    product_id: int | None = None,
    source_id: int | None = None,
    team_id: int | None = None,
    by: dt.date,
    history_days: int = FORECAST_HISTORY_DAYS,
    trials: int = FORECAST_TRIALS,
    seed: int = FORECAST_SEED,
) -> ForecastResult:
    """How many items will be done by `by` (Monte Carlo over the last `history_days` of daily throughput),
    with the backtest of the same forecast horizon on that history."""
    from truenorth.delivery import forecast

    days = check_by(by)
    daily = _history(membership, Scope(product_id, source_id, team_id), history_days)
    result = forecast.how_many(daily, days, trials=trials, seed=seed)
    test = _backtest(daily, days, seed)
    return ForecastResult("how_many", by, result, test, history_days, _today())


def forecast_when(
    membership: Membership,
    *,
    product_id: int | None = None,
    source_id: int | None = None,
    team_id: int | None = None,
    items: int,
    history_days: int = FORECAST_HISTORY_DAYS,
    trials: int = FORECAST_TRIALS,
    seed: int = FORECAST_SEED,
) -> ForecastResult:
    """How many days until `items` items are done (Monte Carlo), with the backtest of a how-many forecast
    over the 85th-percentile horizon on that history (how far the simulation can be trusted there)."""
    from truenorth.delivery import forecast

    check_items(items)
    daily = _history(membership, Scope(product_id, source_id, team_id), history_days)
    try:
        result = forecast.when(daily, items, trials=trials, seed=seed)
    except ValueError:
        raise ValidationFailed(
            f"No item was completed in the last {history_days} days: there is no throughput to forecast from.",
            field="items",
        ) from None
    horizon = result.percentiles.get(85)
    test = _backtest(daily, int(horizon), seed) if horizon else None
    return ForecastResult("when", items, result, test, history_days, _today())


# --- the JSON every face shows ---------------------------------------------------------------------------


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _percentiles(values: dict[int, float | None]) -> dict[str, float | None]:
    return {str(k): _round(v) for k, v in sorted(values.items())}


def flow_out(m: flow.FlowMetrics) -> dict[str, Any]:
    """The flow figures as JSON. The per-item lists are for the charts and stay bounded whatever the data
    size: `completed` (the cycle-time scatterplot) is the newest CHART_POINTS items done in the window,
    `ages` the CHART_POINTS oldest items in progress; the counts and percentiles cover every item."""
    return {
        "cycle_time_days": _percentiles(m.cycle_time_days),
        "lead_time_days": _percentiles(m.lead_time_days),
        "completed_count": len(m.lead_times),
        "never_started": m.never_started,
        "throughput_per_week": [{"week": w.isoformat(), "items": n} for w, n in m.throughput_per_week],
        "wip": m.wip,
        "flow_efficiency": _round(m.flow_efficiency, 4),
        "completed": [
            {"id": i, "done_at": at.isoformat(), "cycle_days": _round(c)}
            for i, at, c in m.completed[-CHART_POINTS:]
        ],
        "ages": [{"id": i, "state": s, "age_days": _round(a)} for i, s, a in m.ages[:CHART_POINTS]],
        "cfd": [{"date": d.isoformat(), **counts} for d, counts in m.cfd],
    }


def dora_out(
    m: dora.DoraMetrics, weeks: list[tuple[dt.date, int, float | None]] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "year": m.year,
        "years": dora.available_years(),
        "deployments": m.deployments,
        "failed_deployments": m.failed_deployments,
        "open_incidents": m.open_incidents,
        "metrics": {
            metric: {"value": _round(getattr(m, metric), 4), "band": m.bands.get(metric)}
            for metric in dora.METRICS
        },
    }
    if weeks is not None:
        out["weeks"] = [
            {"week": w.isoformat(), "deployments": n, "failure_rate": _round(r, 4)} for w, n, r in weeks
        ]
    return out


def forecast_out(r: ForecastResult) -> dict[str, Any]:
    f, b = r.forecast, r.backtest
    return {
        "question": r.question,
        "by": r.target.isoformat() if r.question == "how_many" else None,
        "items": r.target if r.question == "when" else None,
        "today": r.today.isoformat(),
        "history_days": r.history_days,
        "trials": f.trials,
        "percentiles": {str(k): v for k, v in sorted(f.percentiles.items())},
        "histogram": [{"value": v, "trials": n} for v, n in f.histogram],
        "backtest": None
        if b is None or not b.points
        else {
            "horizon_days": b.horizon_days,
            "forecasts": len(b.points),
            "held_85": sum(1 for p in b.points if p.actual >= p.p85),
            "hit_rate_85": _round(b.hit_rate_85, 4),
            "mean_abs_pct_error_50": _round(b.mean_abs_pct_error_50, 4),
        },
    }


def report(
    membership: Membership,
    scope: Scope,
    *,
    start: dt.datetime,
    end: dt.datetime,
    year: int | None = None,
    by_product: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Flow and DORA (with its weekly trend) of the scope over [start, end], as JSON: what pages, the API
    and the background job show; with `by_product`, also one section per product (and one for sources
    without a product). The records are loaded once (the sources' query, then six): the items first, whose
    flow sections are computed before they are let go, then the DORA records (so the two never weigh on
    memory together)."""
    tick = progress or (lambda done, total: None)
    chosen = check_year(year)
    tick(0, 3)
    sources = sources_in(membership, scope)
    sections: list[tuple[int | None, str, list[SourceRow]]] = [(None, "", sources)]
    if by_product:
        products: dict[int | None, list[SourceRow]] = defaultdict(list)
        for source in sources:
            products[source.product_id].append(source)
        sections += [
            (pk, group[0].product if pk is not None else "No product", group)
            for pk, group in sorted(
                products.items(), key=lambda kv: (kv[0] is None, kv[1][0].product.casefold())
            )
        ]
    items = item_table(sources, end)
    flows = [flow_out(flow_of(group, items, start=start, end=end)) for _, _, group in sections]
    del items
    tick(1, 3)
    inputs = dora_inputs(sources, end)
    tick(2, 3)
    parts = []
    for (_, _, group), flow_json in zip(sections, flows, strict=True):
        records = combined(inputs, group)
        dora_json = dora_out(
            dora_of(records, start=start, end=end, year=chosen), dora_weeks(records, start=start, end=end)
        )
        parts.append(
            {
                "sources": [{"id": s.id, "name": s.name} for s in group],
                "flow": flow_json,
                "dora": dora_json,
            }
        )
    out: dict[str, Any] = {
        "scope": scope.params(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "year": chosen,
        **parts[0],
    }
    if by_product:
        out["products"] = [
            {"id": pk, "name": name, **part}
            for (pk, name, _), part in zip(sections[1:], parts[1:], strict=True)
        ]
    tick(3, 3)
    return out


# --- inline or as a background job -----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What to compute: the flow and DORA `report`, or a `forecast` (`items` or `by`)."""

    what: str  # "report" or "forecast"
    scope: Scope
    start: dt.datetime
    end: dt.datetime
    year: int | None = None
    by_product: bool = False
    items: int | None = None
    by: dt.date | None = None

    def params(self) -> dict[str, Any]:
        return {
            "what": self.what,
            **self.scope.params(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "year": self.year,
            "by_product": self.by_product,
            "items": self.items,
            "by": self.by.isoformat() if self.by else None,
        }

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> Request:
        return cls(
            what=str(p["what"]),
            scope=Scope(p.get("product_id"), p.get("source_id"), p.get("team_id")),
            start=dt.datetime.fromisoformat(p["start"]),
            end=dt.datetime.fromisoformat(p["end"]),
            year=p.get("year"),
            by_product=bool(p.get("by_product")),
            items=p.get("items"),
            by=dt.date.fromisoformat(p["by"]) if p.get("by") else None,
        )


def check_forecast(items: int | None, by: dt.date | None) -> None:
    """Exactly one of `items` and `by`, each valid (422 naming the field)."""
    if items is not None and by is not None:
        raise ValidationFailed(
            "Ask either how many items by a date (by) or when N items are done (items), not both.",
            field="items",
        )
    if items is None and by is None:
        raise ValidationFailed(
            "Give items (when will N items be done?) or by (how many items by this date?).", field="items"
        )
    if items is not None:
        check_items(items)
    if by is not None:
        check_by(by)


def compute(membership: Membership, request: Request, progress: Progress | None = None) -> dict[str, Any]:
    """The request's JSON, computed now."""
    if request.what == "forecast":
        check_forecast(request.items, request.by)
        filters = vars(request.scope)
        if request.by is not None:
            result = forecast_items_by(membership, **filters, by=request.by)
        else:
            assert request.items is not None
            result = forecast_when(membership, **filters, items=request.items)
        return {"scope": request.scope.params(), "forecast": forecast_out(result)}
    return report(
        membership,
        request.scope,
        start=request.start,
        end=request.end,
        year=request.year,
        by_product=request.by_product,
        progress=progress,
    )


def compute_or_submit(
    membership: Membership, actor: User, request: Request, *, link: str = ""
) -> dict[str, Any] | Job:
    """Compute inline when the rows to load are at most TRUENORTH_DELIVERY_INLINE_MAX_ROWS; else submit a
    background job (returned) whose result is the same JSON. Bad input is refused before either."""
    check_year(request.year)
    if request.what == "forecast":
        check_forecast(request.items, request.by)
        end = timezone.now()
    else:
        end = request.end
    if rows_in(membership, request.scope, end=end) <= inline_max_rows():
        return compute(membership, request)
    return submit_job(membership, actor, request, link=link)


def submit_job(membership: Membership, actor: User, request: Request, *, link: str = "") -> Job:
    """Compute the request as a background job (checked first); its result links to `link`?job=<id>.
    The same request while one is still queued or running answers that job: a client polling the API
    does not fill the organisation's job slots with copies."""
    check_year(request.year)
    if request.what == "forecast":
        check_forecast(request.items, request.by)
    params = json.loads(json.dumps({**request.params(), "link": link}, default=str))
    active = Job.objects.filter(
        organisation_id=membership.organisation_id, kind=METRICS_KIND, status__in=ACTIVE
    )
    for job in active:  # at most TRUENORTH_JOBS_PER_ORGANISATION rows
        if _same_request(job.params, params):
            return job
    return submit(membership, actor, METRICS_KIND, params)


def _same_request(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal requests; a window that ends "now" (the default) matches to the minute."""

    def key(p: dict[str, Any]) -> dict[str, Any]:
        return {k: str(v)[:16] if k in ("start", "end") and v else v for k, v in p.items()}

    return key(a) == key(b)


# --- the background job ----------------------------------------------------------------------------------


@register(METRICS_KIND)
def run_metrics(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: compute the request as the person who asked (still a member)."""
    membership, _ = acting_membership(job)
    request = Request.from_params(job.params)
    result = compute(membership, request, progress)
    link = str(job.params.get("link") or reverse("delivery:overview", args=(job.organisation.slug,)))
    if request.what == "forecast":
        result["summary"] = "Delivery forecast computed."
    else:
        result["summary"] = (
            f"Delivery metrics: {result['flow']['completed_count']} items done, "
            f"{result['dora']['deployments']} production deployments."
        )
    result["link"] = f"{link}{'&' if '?' in link else '?'}job={job.pk}"
    result["link_text"] = "See the delivery metrics"
    return result


def job_report(membership: Membership, job_id: int) -> Job:
    """A delivery metrics job of this organisation (NotFound for another's or another kind)."""
    from truenorth.jobs.services import get_job

    job = get_job(membership, job_id)
    if job.kind != METRICS_KIND:
        raise NotFound("No such delivery metrics job.")
    return job
