"""Delivery results feed the Value pillar's EBM measures (issue 12, capability 4).

For a live source with a product, `ensure_measures` makes (once; found again by catalogue_key
"delivery:<source id>:<metric>") one measure per delivered metric on that product, cadence 7 days.
`feed` computes the metrics over each complete week (Monday 00:00 to Sunday 23:59:59.999999 UTC) after
the last fed week (the last 12 weeks the first time) up to the last complete week, with the same
building blocks as the metrics pages (metrics.histories / flow_of, dora_inputs / dora_of), and stores
them through measures.services.observations.store_batch: one batch per source and week with the
idempotency key "delivery:<source id>:<monday>", so a re-run stores nothing twice. Each observation's
note names the source, the window and the latest import ("delivery source 'X', 2026-11-16..2026-11-22,
import #12"). There is no "delivery" MeasureSource: the observations use the closest, API ("API push").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, DomainError
from truenorth.delivery import flow
from truenorth.delivery.models import DeliverySource, ImportRun, ImportStatus
from truenorth.delivery.services import metrics
from truenorth.measures.models import KVA, Measure, MeasureDirection, MeasureSource, Observation
from truenorth.measures.services.measures import create_measure
from truenorth.measures.services.observations import CleanRow, store_batch
from truenorth.orgs.models import Membership

FIRST_WEEKS = 12
FEED_SOURCE = MeasureSource.API
DEFECT_TYPES = frozenset({"bug", "defect"})


@dataclass(frozen=True)
class Metric:
    key: str
    name: str
    kva: str
    unit: str
    direction: str
    description: str


METRICS: tuple[Metric, ...] = (
    Metric(
        "deployment_frequency",
        "Deployment frequency",
        KVA.TIME_TO_MARKET,
        "per week",
        MeasureDirection.HIGHER,
        "Production deployments per week (DORA).",
    ),
    Metric(
        "lead_time",
        "Lead time for changes",
        KVA.TIME_TO_MARKET,
        "hours",
        MeasureDirection.LOWER,
        "Median hours from first commit to production deployment (DORA).",
    ),
    Metric(
        "cycle_time_p85",
        "Cycle time (85th percentile)",
        KVA.TIME_TO_MARKET,
        "days",
        MeasureDirection.LOWER,
        "85th percentile of the days from started to done of the items done.",
    ),
    Metric(
        "time_to_restore",
        "Time to restore service",
        KVA.TIME_TO_MARKET,
        "hours",
        MeasureDirection.LOWER,
        "Median hours from an incident opened to resolved (DORA).",
    ),
    Metric(
        "change_failure_rate",
        "Change failure rate",
        KVA.ABILITY_TO_INNOVATE,
        "%",
        MeasureDirection.LOWER,
        "Share of production deployments that failed or caused an incident.",
    ),
    Metric(
        "incidents",
        "Incidents opened",
        KVA.ABILITY_TO_INNOVATE,
        "per week",
        MeasureDirection.LOWER,
        "Incidents opened in the week.",
    ),
    Metric(
        "defects_done",
        "Defects completed",
        KVA.ABILITY_TO_INNOVATE,
        "per week",
        MeasureDirection.LOWER,
        "Items of type bug or defect done in the week (a defect trend).",
    ),
)


@dataclass
class FeedResult:
    source: DeliverySource
    weeks: list[dt.date] = field(default_factory=list)  # the Mondays computed
    stored: int = 0  # observations stored now
    planned: list[tuple[str, dt.date, float, str]] = field(
        default_factory=list
    )  # (metric, monday, value, note)
    measures_created: int = 0
    skipped_weeks: list[dt.date] = field(default_factory=list)  # already stored with other values

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source.name,
            "weeks": [w.isoformat() for w in self.weeks],
            "stored": self.stored,
            "measures_created": self.measures_created,
            "observations": [
                {"metric": m, "week": w.isoformat(), "value": v, "note": n} for m, w, v, n in self.planned
            ],
        }


def catalogue_key(source: DeliverySource, metric: Metric) -> str:
    return f"delivery:{source.pk}:{metric.key}"


def last_complete_monday(now: dt.datetime) -> dt.date:
    """The Monday of the last week (Monday to Sunday, UTC) that has ended by `now`."""
    today = now.astimezone(dt.UTC).date()
    return today - dt.timedelta(days=today.weekday() + 7)


def week_bounds(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(monday, dt.time.min, tzinfo=dt.UTC)
    return start, dt.datetime.combine(monday + dt.timedelta(days=6), dt.time.max, tzinfo=dt.UTC)


def acting(source: DeliverySource, actor: User | None) -> tuple[Membership, User]:
    """Who the feed writes as: the actor, else the source's creator, else the organisation's senior member."""
    members = Membership.objects.filter(organisation_id=source.organisation_id).select_related("user")
    for user in (actor, source.created_by):
        if user is not None:
            found = members.filter(user=user).first()
            if found is not None:
                return found, user
    for membership in members.order_by("id"):
        if membership.has_role("admin"):
            return membership, membership.user
    raise DomainError("Nobody in this organisation may write its measures.")


def measures_for(source: DeliverySource) -> dict[str, Measure]:
    keys = {catalogue_key(source, m): m.key for m in METRICS}
    return {
        keys[m.catalogue_key]: m
        for m in Measure.objects.filter(organisation_id=source.organisation_id, catalogue_key__in=keys)
    }


def ensure_measures(
    source: DeliverySource, membership: Membership, actor: User
) -> tuple[dict[str, Measure], int]:
    found = measures_for(source)
    created = 0
    for metric in METRICS:
        if metric.key in found:
            continue
        found[metric.key] = create_measure(
            membership,
            actor,
            name=f"{metric.name} ({source.name})"[:120],
            kva=metric.kva,
            product_id=source.product_id,
            unit=metric.unit,
            direction=metric.direction,
            cadence_days=7,
            description=f"{metric.description} Fed weekly from delivery source '{source.name}'.",
            source=FEED_SOURCE,
            catalogue_key=catalogue_key(source, metric),
        )
        created += 1
    return found, created


def first_monday(source: DeliverySource, last: dt.date) -> dt.date:
    """The week after the last one fed, or FIRST_WEEKS weeks back the first time."""
    keys = [catalogue_key(source, m) for m in METRICS]
    latest = (
        Observation.objects.filter(
            measure__organisation_id=source.organisation_id, measure__catalogue_key__in=keys
        )
        .order_by("-observed_at")
        .values_list("observed_at", flat=True)
        .first()
    )
    if latest is None:
        return last - dt.timedelta(weeks=FIRST_WEEKS - 1)
    fed = latest.astimezone(dt.UTC).date()
    return fed - dt.timedelta(days=fed.weekday()) + dt.timedelta(weeks=1)


def compute_week(
    row: metrics.SourceRow,
    items: dict[int, list[flow.ItemHistory]],
    inputs: dict[int, metrics.DoraInputs],
    monday: dt.date,
) -> dict[str, float]:
    """The metrics of one week with the same building blocks as the metrics pages (None values left out)."""
    start, end = week_bounds(monday)
    flows = metrics.flow_of([row], items, start=start, end=end)
    records = metrics.combined(inputs, [row])
    d = metrics.dora_of(records, start=start, end=end, year=metrics.check_year(None))
    defects = {i.id for i in items.get(row.id, ()) if i.item_type.strip().casefold() in DEFECT_TYPES}
    values: dict[str, float | None] = {
        "deployment_frequency": d.deployment_frequency_per_week,
        "lead_time": d.lead_time_hours,
        "cycle_time_p85": flows.cycle_time_days.get(85),
        "time_to_restore": d.time_to_restore_hours,
        "change_failure_rate": None if d.change_failure_rate is None else 100 * d.change_failure_rate,
        "incidents": float(sum(1 for i in records.incidents if start <= i.opened_at <= end)),
        "defects_done": float(sum(1 for c in flows.completed if c[0] in defects)),
    }
    return {k: round(v, 6) for k, v in values.items() if v is not None}


def feed(
    source: DeliverySource, *, now: dt.datetime, actor: User | None = None, dry_run: bool = False
) -> FeedResult:
    """Store the source's weekly metrics since the last fed week (see the module's docstring)."""
    result = FeedResult(source)
    if source.product_id is None or source.archived_at is not None:
        return result
    membership, user = acting(source, actor)
    found = measures_for(source)
    last = last_complete_monday(now)
    monday = first_monday(source, last) if found else last - dt.timedelta(weeks=FIRST_WEEKS - 1)
    if monday > last:
        return result
    if not dry_run:
        found, result.measures_created = ensure_measures(source, membership, user)
    row = next(r for r in metrics.sources_in(membership, metrics.Scope(source_id=source.pk)))
    _, end = week_bounds(last)
    items = metrics.histories([row], end)
    inputs = metrics.dora_inputs([row], end)
    latest = (
        ImportRun.objects.filter(source=source, status=ImportStatus.SUCCEEDED)
        .order_by("-started_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    while monday <= last:
        result.weeks.append(monday)
        sunday = monday + dt.timedelta(days=6)
        note = f"delivery source '{source.name}', {monday.isoformat()}..{sunday.isoformat()}" + (
            f", import #{latest}" if latest else ""
        )
        values = compute_week(row, items, inputs, monday)
        rows = []
        for index, (key, value) in enumerate(sorted(values.items())):
            result.planned.append((key, monday, value, note))
            if not dry_run:
                rows.append(CleanRow(index, found[key], value, week_bounds(monday)[1], note[:500]))
        if rows:
            try:
                stored = store_batch(
                    membership,
                    user,
                    rows,
                    source=FEED_SOURCE,
                    idempotency_key=f"delivery:{source.pk}:{monday.isoformat()}",
                )
            except Conflict:
                result.skipped_weeks.append(monday)
            else:
                result.stored += 0 if stored.replayed else stored.created
        monday += dt.timedelta(weeks=1)
    return result


def feed_all(*, now: dt.datetime) -> list[FeedResult]:
    """Feed every organisation's live sources with a product (the daily task)."""
    out = []
    for source in DeliverySource.objects.filter(
        archived_at__isnull=True, product__isnull=False
    ).select_related("created_by"):
        try:
            out.append(feed(source, now=now))
        except DomainError:
            continue
    return out
