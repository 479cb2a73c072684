"""The value dashboard of a product: its four Key Value Areas side by side, with evidence summaries.

It must stay fast with hundreds of measures and millions of observations, so the database does the
aggregation and sends back summary rows only, in a fixed number of queries whatever the size:

1. the product;
2. its live measures, each annotated with its latest value (and time) and the value in force at the
   start of the period: correlated subqueries, each one index seek on Observation(measure,
   superseded, observed_at);
3. the mean of each measure's current observations per time bucket of the period (one grouped query:
   range scans of the covering index added by migration 0003), which feeds the sparklines and the
   trend;
4. the product's top-level goals, plus strategy.services.progress_for_org's few queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery, Value
from django.utils import timezone

from truenorth.measures import maths
from truenorth.measures.charts import sparkline_points
from truenorth.measures.models import KVA, Measure, Observation
from truenorth.orgs.models import Membership
from truenorth.strategy import progress as progress_core
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Goal, Product

DEFAULT_PERIOD = dt.timedelta(days=90)
# Points per sparkline: enough to show a shape, few enough that 200 measures stay cheap.
BUCKETS = 30
DAY = 86400.0


@dataclass(frozen=True)
class MeasureSummary:
    """One measure on the dashboard: where it is, where it is going, and whether to trust it."""

    measure: Measure
    latest_value: float | None
    latest_at: dt.datetime | None
    start_value: float | None
    # Mean of the current observations in each bucket of the period (None: no observation there).
    buckets: list[float | None]
    change: float | None
    slope_per_day: float | None
    distance: float | None
    stale: bool
    # The `points` of the sparkline's SVG polyline ("" when there is too little to draw).
    sparkline: str

    @property
    def improving(self) -> bool | None:
        """Whether the change over the period goes the measure's better way (None: no change known)."""
        if self.change is None or self.change == 0:
            return None
        return (self.change > 0) == (self.measure.direction == "higher")


@dataclass(frozen=True)
class KvaColumn:
    key: str
    label: str
    measures: list[MeasureSummary]

    @property
    def stale_count(self) -> int:
        return sum(1 for m in self.measures if m.stale)


@dataclass(frozen=True)
class GoalSummary:
    id: int
    title: str
    progress: float | None


@dataclass(frozen=True)
class Dashboard:
    product: Product
    since: dt.datetime
    until: dt.datetime
    bucket_seconds: float
    columns: list[KvaColumn]
    missing_kvas: list[tuple[str, str]]
    goal_progress: float | None
    goals: list[GoalSummary] = field(default_factory=list)

    @property
    def measure_count(self) -> int:
        return sum(len(c.measures) for c in self.columns)

    @property
    def stale_count(self) -> int:
        return sum(c.stale_count for c in self.columns)


def _current(measure_ref: Any) -> Any:
    # Value(False), not False: Django writes `superseded = False` as `NOT superseded`, which SQLite
    # cannot match to the (measure, superseded, observed_at) index; `superseded = 0` it can.
    return Observation.objects.filter(measure=measure_ref, superseded=Value(False))


def bucket_means(
    measure_ids: Sequence[int], since: dt.datetime, until: dt.datetime, buckets: int = BUCKETS
) -> dict[int, dict[int, tuple[float, int]]]:
    """{measure id: {bucket: (mean, count) of current observations}}: [since, until] cut into
    `buckets` equal slices (the last one includes `until`), in one grouped query.

    The slices are a VALUES table joined on the time range, so each (measure, slice) is one range scan
    of the covering index Observation(measure, superseded, observed_at, value) and no per-row date
    function is evaluated: the same SQL on SQLite and PostgreSQL."""
    if not measure_ids:
        return {}
    sql, params = bucket_sql(measure_ids, since, until, buckets)
    out: dict[int, dict[int, tuple[float, int]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for measure_id, bucket, mean, count in cursor.fetchall():
            out.setdefault(measure_id, {})[int(bucket)] = (float(mean), int(count))
    return out


def bucket_sql(
    measure_ids: Sequence[int], since: dt.datetime, until: dt.datetime, buckets: int = BUCKETS
) -> tuple[str, list[Any]]:
    """The SQL and parameters of bucket_means (separate so the benchmark can show its plan)."""
    adapt = connection.ops.adapt_datetimefield_value
    width = (until - since) / buckets
    edges = [since + width * i for i in range(buckets)] + [until + dt.timedelta(microseconds=1)]
    slices: list[Any] = []
    for i in range(buckets):
        slices += [i, adapt(edges[i]), adapt(edges[i + 1])]
    cast = "CAST(%s AS TIMESTAMPTZ)" if connection.vendor == "postgresql" else "%s"
    values = ", ".join([f"(%s, {cast}, {cast})"] * buckets)
    table = Observation._meta.db_table
    placeholders = ", ".join(["%s"] * len(measure_ids))
    sql = (
        f"WITH slice(i, lo, hi) AS (VALUES {values}) "  # noqa: S608 (no user text: placeholders only)
        "SELECT o.measure_id, slice.i, AVG(o.value), COUNT(*) "
        f"FROM slice JOIN {table} o ON o.measure_id IN ({placeholders}) AND o.superseded = %s "
        "AND o.observed_at >= slice.lo AND o.observed_at < slice.hi "
        "GROUP BY o.measure_id, slice.i"
    )
    return sql, [*slices, *measure_ids, False]


def _series(raw: dict[int, tuple[float, int]], count: int) -> list[float | None]:
    series: list[float | None] = [None] * count
    for bucket, (mean, _) in raw.items():
        series[bucket] = mean
    return series


def _change(start: float | None, latest: float | None) -> float | None:
    """Latest value minus the value in force when the period began (as maths.change: None when the
    series does not reach back to the start of the period)."""
    return None if start is None or latest is None else latest - start


def _goals(membership: Membership, product_id: int) -> tuple[float | None, list[GoalSummary]]:
    """The product's top-level goals with their progress, and their weighted roll-up."""
    progress = strategy_services.progress_for_org(membership.organisation_id)
    rows = list(
        Goal.objects.filter(
            organisation_id=membership.organisation_id,
            product_id=product_id,
            parent__isnull=True,
            archived_at__isnull=True,
        )
        .exclude(status=Goal.Status.ABANDONED)
        .order_by("position", "id")
        .values_list("id", "title", "weight")
    )
    goals = [GoalSummary(pk, title, p.value if (p := progress.get(pk)) else None) for pk, title, _ in rows]
    rollup = progress_core.weighted_mean((g.progress, w) for g, (_, _, w) in zip(goals, rows, strict=True))
    return rollup, goals


def product_dashboard(
    membership: Membership,
    product_id: int,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Dashboard:
    """The value dashboard of one product of the membership's organisation (NotFound otherwise)."""
    now = now or timezone.now()
    until = until or now
    since = since or until - DEFAULT_PERIOD
    if since >= until:
        since = until - dt.timedelta(days=1)
    product = strategy_services.get_product(membership, product_id)

    latest = _current(OuterRef("pk")).filter(observed_at__lte=until).order_by("-observed_at", "-id")
    before = _current(OuterRef("pk")).filter(observed_at__lte=since).order_by("-observed_at", "-id")
    measures = list(
        Measure.objects.filter(
            organisation_id=membership.organisation_id, product_id=product.pk, archived_at__isnull=True
        )
        .annotate(
            latest_value=Subquery(latest.values("value")[:1]),
            latest_at=Subquery(latest.values("observed_at")[:1]),
            start_value=Subquery(before.values("value")[:1]),
        )
        .order_by("name", "id")
    )

    bucket_seconds = (until - since).total_seconds() / BUCKETS
    means = bucket_means([m.pk for m in measures], since, until)

    by_kva: dict[str, list[MeasureSummary]] = {k: [] for k in KVA.values}
    for m in measures:
        buckets = _series(means.get(m.pk, {}), BUCKETS)
        latest_value: float | None = m.latest_value
        latest_at: dt.datetime | None = m.latest_at
        start_value: float | None = m.start_value
        # Trend: least-squares slope of the bucket means against the bucket middles, in days.
        known = [(i, v) for i, v in enumerate(buckets) if v is not None]
        summary = MeasureSummary(
            measure=m,
            latest_value=latest_value,
            latest_at=latest_at,
            start_value=start_value,
            buckets=buckets,
            change=_change(start_value, latest_value),
            slope_per_day=maths.trend_slope(
                [(i + 0.5) * bucket_seconds / DAY for i, _ in known], [v for _, v in known]
            ),
            distance=maths.distance_to_target(latest_value, m.target, m.direction),
            stale=maths.is_stale(latest_at, m.cadence_days, now),
            sparkline=sparkline_points(buckets),
        )
        by_kva.setdefault(m.kva, []).append(summary)
    columns = [KvaColumn(key, str(label), by_kva.get(key, [])) for key, label in KVA.choices]
    missing = [(c.key, c.label) for c in columns if not c.measures]
    goal_progress, goals = _goals(membership, product.pk)
    return Dashboard(
        product=product,
        since=since,
        until=until,
        bucket_seconds=bucket_seconds,
        columns=columns,
        missing_kvas=missing,
        goal_progress=goal_progress,
        goals=goals,
    )


__all__ = ["Dashboard", "KvaColumn", "MeasureSummary", "bucket_means", "bucket_sql", "product_dashboard"]
