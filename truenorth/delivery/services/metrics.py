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

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.delivery import dora, flow
from truenorth.delivery.models import (
    Commit,
    DeliveryItem,
    DeliverySource,
    Deployment,
    Incident,
    PullRequest,
    StateTransition,
)
from truenorth.jobs.models import ACTIVE, Job
from truenorth.jobs.services import Progress, acting_membership, register, submit
from truenorth.orgs.models import Membership
from truenorth.strategy.services import get_product, teams_of

DEFAULT_WINDOW_DAYS = 90
FORECAST_HISTORY_DAYS = 180
MAX_WINDOW_DAYS = 3 * 366
MAX_FORECAST_ITEMS = 100_000
MAX_FORECAST_DAYS = 3 * 366
FORECAST_TRIALS = 10_000
BACKTEST_TRIALS = 2_000
FORECAST_SEED = 12
METRICS_KIND = "delivery.metrics"
WEEK = dt.timedelta(days=7)
# How the faces name the DORA metrics, and their units ("%" for rates shown as percentages).
METRIC_LABELS = {
    "deployment_frequency_per_week": ("Deployment frequency", "per week"),
    "lead_time_hours": ("Lead time for changes", "hours"),
    "change_failure_rate": ("Change failure rate", "%"),
    "time_to_restore_hours": ("Time to restore service", "hours"),
    "rework_rate": ("Deployment rework rate", "%"),
}


@dataclass(frozen=True)
class Scope:
    """Which sources count: all of the organisation's, or one product's, one source, one team's."""

    product_id: int | None = None
    source_id: int | None = None
    team_id: int | None = None

    def params(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class SourceRow:
    id: int
    name: str
    product_id: int | None
    product: str
    mapping: str  # the state mapping as canonical JSON (sources are grouped by it)
    production: str


def window(
    start: dt.datetime | dt.date | None, end: dt.datetime | dt.date | None
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end] as aware datetimes: end defaults to now, start to DEFAULT_WINDOW_DAYS before end; a
    date means its whole day (start at 00:00, end at 23:59:59.999999 UTC)."""

    def aware(value: dt.datetime | dt.date, *, last: bool) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time.max if last else dt.time.min)
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)

    stop = aware(end, last=True) if end is not None else timezone.now()
    begin = aware(start, last=False) if start is not None else stop - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
    if begin > stop:
        raise ValidationFailed("The start of the window is after its end.", field="since")
    if stop - begin > dt.timedelta(days=MAX_WINDOW_DAYS):
        raise ValidationFailed(f"The window may span at most {MAX_WINDOW_DAYS} days.", field="since")
    return begin, stop


def sources_in(membership: Membership, scope: Scope) -> list[SourceRow]:
    """The organisation's live sources in the scope (one query, plus one to check a product or team).
    A product, source or team of another organisation is "not found"."""
    org_id = membership.organisation_id
    qs = DeliverySource.objects.filter(organisation_id=org_id, archived_at__isnull=True)
    if scope.product_id is not None:
        get_product(membership, scope.product_id)
        qs = qs.filter(product_id=scope.product_id)
    if scope.team_id is not None:
        if not teams_of(membership).filter(pk=scope.team_id).exists():
            raise NotFound("No such team.")
        qs = qs.filter(team_id=scope.team_id)
    if scope.source_id is not None:
        qs = qs.filter(pk=scope.source_id)
    rows = [
        SourceRow(
            pk,
            name,
            product_id,
            product or "",
            json.dumps(mapping or {}, sort_keys=True),
            env or "production",
        )
        for pk, name, product_id, product, mapping, env in qs.values_list(
            "pk", "name", "product_id", "product__name", "state_mapping", "production_environment"
        )
    ]
    if scope.source_id is not None and not rows:
        raise NotFound("No such delivery source.")
    return rows


def rows_in(membership: Membership, scope: Scope, *, end: dt.datetime) -> int:
    """How many state transitions and deployments the metrics up to `end` would load."""
    ids = [s.id for s in sources_in(membership, scope)]
    if not ids:
        return 0
    transitions = StateTransition.objects.filter(item__source_id__in=ids, at__lte=end).count()
    return transitions + Deployment.objects.filter(source_id__in=ids, deployed_at__lte=end).count()


def inline_max_rows() -> int:
    return int(settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS)


# --- flow ------------------------------------------------------------------------------------------------


def _mapping(raw: str) -> flow.StateMapping:
    try:
        return flow.StateMapping.from_config(json.loads(raw))
    except (ValueError, TypeError, AttributeError):  # a malformed mapping falls back to the defaults
        return flow.StateMapping.from_config({})


def histories(sources: list[SourceRow], end: dt.datetime) -> dict[int, list[flow.ItemHistory]]:
    """Item histories up to `end` by source id (two queries, streamed)."""
    ids = [s.id for s in sources]
    if not ids:
        return {}
    steps: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    transitions = (
        StateTransition.objects.filter(item__source_id__in=ids, at__lte=end)
        .order_by()
        .values_list("item_id", "at", "to_state")
    )
    for item_id, at, state in transitions.iterator(chunk_size=10_000):
        steps[item_id].append((at, state))
    groups: dict[int, list[flow.ItemHistory]] = defaultdict(list)
    items = (
        DeliveryItem.objects.filter(source_id__in=ids, created_at__lte=end)
        .order_by()
        .values_list("pk", "source_id", "external_id", "created_at", "item_type")
    )
    for pk, source_id, external_id, created_at, item_type in items.iterator(chunk_size=10_000):
        groups[source_id].append(flow.ItemHistory(external_id, created_at, steps.pop(pk, []), item_type))
    return groups


def _merge(parts: list[flow.FlowMetrics]) -> flow.FlowMetrics:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    completed = sorted((row for p in parts for row in p.completed), key=lambda r: (r[1], r[0]))
    leads = sorted((row for p in parts for row in p.lead_times), key=lambda r: (r[1], r[0]))
    active = sum(p.active_days for p in parts)
    waiting = sum(p.waiting_days for p in parts)
    return flow.FlowMetrics(
        cycle_time_days=flow.percentiles([c for _, _, c in completed]),
        lead_time_days=flow.percentiles([c for _, _, c in leads]),
        completed=completed,
        throughput_per_week=[
            (week, sum(p.throughput_per_week[i][1] for p in parts))
            for i, (week, _) in enumerate(first.throughput_per_week)
        ],
        daily_throughput=[sum(day) for day in zip(*(p.daily_throughput for p in parts), strict=True)],
        wip=sum(p.wip for p in parts),
        ages=sorted((row for p in parts for row in p.ages), key=lambda r: (-r[2], r[0])),
        flow_efficiency=active / (active + waiting) if active + waiting > 0 else None,
        cfd=[
            (day, {c: sum(p.cfd[i][1][c] for p in parts) for c in flow.CATEGORIES})
            for i, (day, _) in enumerate(first.cfd)
        ],
        never_started=sum(p.never_started for p in parts),
        lead_times=leads,
        active_days=active,
        waiting_days=waiting,
    )


def flow_for(
    membership: Membership,
    *,
    product_id: int | None = None,
    source_id: int | None = None,
    team_id: int | None = None,
    start: dt.datetime,
    end: dt.datetime,
) -> flow.FlowMetrics:
    """Flow metrics of the scope's items over [start, end] (flow.flow_metrics per state mapping)."""
    sources = sources_in(membership, Scope(product_id, source_id, team_id))
    return flow_of(sources, histories(sources, end), start=start, end=end)


def flow_of(
    sources: list[SourceRow],
    items: dict[int, list[flow.ItemHistory]],
    *,
    start: dt.datetime,
    end: dt.datetime,
) -> flow.FlowMetrics:
    """flow.flow_metrics over these sources' items, one run per distinct state mapping, merged."""
    by_mapping: dict[str, list[flow.ItemHistory]] = defaultdict(list)
    for source in sources:
        by_mapping[source.mapping].extend(items.get(source.id, ()))
    runs = [(raw, group) for raw, group in sorted(by_mapping.items()) if group]
    if not runs:
        return flow.flow_metrics([], flow.StateMapping.from_config({}), start=start, end=end)
    return _merge([flow.flow_metrics(group, _mapping(raw), start=start, end=end) for raw, group in runs])


# --- DORA ------------------------------------------------------------------------------------------------

PRODUCTION = "production"


@dataclass
class DoraInputs:
    deployments: list[dora.DeploymentRecord]
    commits: list[dora.CommitRecord]
    pulls: list[dora.PullRecord]
    incidents: list[dora.IncidentRecord]


def dora_inputs(sources: list[SourceRow], end: dt.datetime) -> dict[int, DoraInputs]:
    """The DORA records up to `end` by source id (four queries). Deployment ids are their primary keys and run ids are
    prefixed with their source, so two sources never merge; a deployment to its source's production
    environment is marked PRODUCTION, any other keeps its name prefixed with "other:"."""
    ids = [s.id for s in sources]
    out: dict[int, DoraInputs] = {i: DoraInputs([], [], [], []) for i in ids}
    if not ids:
        return out
    production = {s.id: s.production.strip().casefold() for s in sources}
    for src, record in (
        (
            src,
            dora.DeploymentRecord(
                id=str(pk),
                deployed_at=at,
                succeeded=ok,
                environment=PRODUCTION if env.strip().casefold() == production[src] else f"other:{env}",
                run_id=f"{src}:{run}" if run else "",
                commit_shas=tuple(shas or ()),
                service=f"{src}:{service}",
            ),
        )
        for pk, src, at, ok, env, run, shas, service in Deployment.objects.filter(
            source_id__in=ids, deployed_at__lte=end
        )
        .order_by()
        .values_list(
            "pk", "source_id", "deployed_at", "succeeded", "environment", "run_id", "commit_shas", "service"
        )
        .iterator(chunk_size=10_000)
    ):
        out[src].deployments.append(record)
    commits = Commit.objects.filter(source_id__in=ids, authored_at__lte=end).order_by()
    for src, sha, authored_at in commits.values_list("source_id", "sha", "authored_at").iterator(
        chunk_size=10_000
    ):
        out[src].commits.append(dora.CommitRecord(sha, authored_at))
    pulls = PullRequest.objects.filter(source_id__in=ids).order_by()
    for src, first, merged, merge_sha, shas in pulls.values_list(
        "source_id", "first_commit_at", "merged_at", "merge_sha", "commit_shas"
    ).iterator(chunk_size=10_000):
        out[src].pulls.append(dora.PullRecord(first, merged, merge_sha, tuple(shas or ())))
    incidents = Incident.objects.filter(source_id__in=ids, opened_at__lte=end).order_by()
    for src, external, opened, resolved, dep in incidents.values_list(
        "source_id", "external_id", "opened_at", "resolved_at", "deployment_id"
    ).iterator(chunk_size=10_000):
        out[src].incidents.append(
            dora.IncidentRecord(f"{src}:{external}", opened, resolved, str(dep) if dep else "")
        )
    return out


def combined(inputs: dict[int, DoraInputs], sources: list[SourceRow]) -> DoraInputs:
    """The records of these sources together."""
    parts = [inputs[s.id] for s in sources if s.id in inputs]
    return DoraInputs(
        [d for p in parts for d in p.deployments],
        [c for p in parts for c in p.commits],
        [r for p in parts for r in p.pulls],
        [i for p in parts for i in p.incidents],
    )


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


@dataclass
class ForecastResult:
    question: str  # "how_many" or "when"
    target: Any  # the date (how many by) or the number of items (when)
    forecast: Any  # forecast.Forecast
    backtest: Any  # forecast.Backtest | None
    history_days: int
    today: dt.date


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _history(membership: Membership, scope: Scope, history_days: int) -> list[int]:
    end = timezone.now()
    start = end - dt.timedelta(days=history_days)
    metrics = flow_for(membership, **vars(scope), start=start, end=end)
    return metrics.daily_throughput


def check_by(by: dt.date, today: dt.date | None = None) -> int:
    today = today or _today()
    days = (by - today).days
    if days < 1:
        raise ValidationFailed("The date must be after today.", field="by")
    if days > MAX_FORECAST_DAYS:
        raise ValidationFailed(f"The date may be at most {MAX_FORECAST_DAYS} days ahead.", field="by")
    return days


def check_items(items: int) -> int:
    if not 1 <= items <= MAX_FORECAST_ITEMS:
        raise ValidationFailed(
            f"The number of items must be between 1 and {MAX_FORECAST_ITEMS}.", field="items"
        )
    return items


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


def _backtest(daily: list[int], horizon: int, seed: int) -> Any:
    from truenorth.delivery import forecast

    if horizon < 1 or not any(daily):
        return None
    try:
        return forecast.backtest(
            daily,
            horizon_days=horizon,
            step_days=7,
            min_history=min(28, max(len(daily) // 3, 7)),
            trials=BACKTEST_TRIALS,
            seed=seed,
        )
    except ValueError:  # not enough history to test a horizon this long
        return None


# --- the JSON every face shows ---------------------------------------------------------------------------


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _percentiles(values: dict[int, float | None]) -> dict[str, float | None]:
    return {str(k): _round(v) for k, v in sorted(values.items())}


def flow_out(m: flow.FlowMetrics) -> dict[str, Any]:
    return {
        "cycle_time_days": _percentiles(m.cycle_time_days),
        "lead_time_days": _percentiles(m.lead_time_days),
        "completed_count": len(m.lead_times),
        "never_started": m.never_started,
        "throughput_per_week": [{"week": w.isoformat(), "items": n} for w, n in m.throughput_per_week],
        "wip": m.wip,
        "flow_efficiency": _round(m.flow_efficiency, 4),
        "completed": [
            {"id": i, "done_at": at.isoformat(), "cycle_days": _round(c)} for i, at, c in m.completed
        ],
        "ages": [{"id": i, "state": s, "age_days": _round(a)} for i, s, a in m.ages],
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


def _section(
    sources: list[SourceRow],
    items: dict[int, list[flow.ItemHistory]],
    inputs: dict[int, DoraInputs],
    *,
    start: dt.datetime,
    end: dt.datetime,
    year: int,
) -> dict[str, Any]:
    records = combined(inputs, sources)
    return {
        "sources": [{"id": s.id, "name": s.name} for s in sources],
        "flow": flow_out(flow_of(sources, items, start=start, end=end)),
        "dora": dora_out(
            dora_of(records, start=start, end=end, year=year), dora_weeks(records, start=start, end=end)
        ),
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
    without a product). The records are loaded once (the sources' query, then six)."""
    tick = progress or (lambda done, total: None)
    chosen = check_year(year)
    tick(0, 3)
    sources = sources_in(membership, scope)
    items = histories(sources, end)
    tick(1, 3)
    inputs = dora_inputs(sources, end)
    tick(2, 3)
    out: dict[str, Any] = {
        "scope": scope.params(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "year": chosen,
        **_section(sources, items, inputs, start=start, end=end, year=chosen),
    }
    if by_product:
        products: dict[int | None, list[SourceRow]] = defaultdict(list)
        for source in sources:
            products[source.product_id].append(source)
        out["products"] = [
            {
                "id": pk,
                "name": group[0].product if pk is not None else "No product",
                **_section(group, items, inputs, start=start, end=end, year=chosen),
            }
            for pk, group in sorted(
                products.items(), key=lambda kv: (kv[0] is None, kv[1][0].product.casefold())
            )
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
