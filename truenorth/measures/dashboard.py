"""The value dashboard of a product: its four Key Value Areas side by side, with evidence summaries.

It must stay fast with hundreds of measures and millions of observations, so the database does the
aggregation and sends back summary rows only, in a fixed number of queries whatever the size:

1. the product;
2. its live measures, each annotated with its latest value (and time) and the value in force at the
   start of the period: correlated subqueries, each one index seek on Observation(measure,
   superseded, observed_at);
3. the mean of each measure's current observations per bucket of the period, from the daily
   roll-ups (measures/rollups.py: count and sum per measure and local day): one query, a scalar
   subquery per (measure, bucket) summing a range of their covering index (a dozen entries for a
   year's bucket), which feeds the sparklines and the trend;
4. the product's top-level goals, plus strategy.services.progress_for_org's few queries.

The period is whole local days (settings.TIME_ZONE): the days that begin within [since, until] (so
"the last 90 days" is today and the 89 days before it; a custom range is its days), cut into
BUCKETS buckets of whole days (fewer for a shorter period), since the roll-ups are daily.
`from_rollups=False` computes the same buckets from the observations themselves (tests compare the
two; the benchmark times both).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery, Value
from django.utils import timezone

from truenorth.measures import maths, rollups
from truenorth.measures.charts import sparkline_points
from truenorth.measures.models import KVA, DailyRollup, Measure, Observation
from truenorth.orgs.models import Membership
from truenorth.strategy import progress as progress_core
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Goal, Product

DEFAULT_PERIOD = dt.timedelta(days=90)
# Points per sparkline: enough to show a shape, few enough that 200 measures stay cheap.
BUCKETS = 30
DAY = 86400.0


# The Measure fields the dashboard reads (its cards, the trend's direction, staleness).
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


@dataclass(frozen=True)
class Period:
    """Whole local days, cut into buckets of whole days: bucket i is days [edges[i], edges[i + 1])."""

    first_day: dt.date
    edges: list[dt.date]

    @property
    def days(self) -> int:
        return (self.edges[-1] - self.first_day).days

    @property
    def buckets(self) -> int:
        return len(self.edges) - 1

    def middles(self) -> list[float]:
        """Each bucket's middle, in days from the start of the period (for the trend)."""
        return [((a - self.first_day).days + (b - self.first_day).days) / 2 for a, b in pairwise(self.edges)]


def period_of(since: dt.datetime, until: dt.datetime, buckets: int = BUCKETS) -> Period:
    """The local days that begin within [since, until] (at least until's day), in `buckets` buckets of
    whole days (as even as can be: the longer ones last), or one per day when there are fewer days."""
    tz = rollups.zone()
    first, last = rollups.local_day(since, tz), rollups.local_day(until, tz)
    if rollups.day_start(first, tz) < since:
        first += dt.timedelta(days=1)
    first = min(first, last)
    days = (last - first).days + 1
    count = min(buckets, days)
    return Period(first, [first + dt.timedelta(days=i * days // count) for i in range(count + 1)])


def bucket_means(
    measure_ids: Sequence[int], period: Period, *, from_rollups: bool = True
) -> dict[int, dict[int, float]]:
    """{measure id: {bucket: mean of its current observations}} (buckets without any left out) in one
    query: from the daily roll-ups (sum of sums / sum of counts), or from the observations themselves."""
    if not measure_ids:
        return {}
    sql, params = (rollup_sql if from_rollups else bucket_sql)(measure_ids, period)
    out: dict[int, dict[int, float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for measure_id, bucket, mean in cursor.fetchall():
            if mean is not None:
                out.setdefault(measure_id, {})[int(bucket)] = float(mean)
    return out


def _slices(period: Period, edge: Any, cast: str) -> tuple[str, list[Any]]:
    """`slice(i, lo, hi) AS (VALUES …)`: the buckets' bounds, one row each."""
    params: list[Any] = []
    for i, (lo, hi) in enumerate(pairwise(period.edges)):
        params += [i, edge(lo), edge(hi)]
    values = ", ".join([f"(%s, {cast}, {cast})"] * period.buckets)
    return f"slice(i, lo, hi) AS (VALUES {values})", params


def _measures(measure_ids: Sequence[int]) -> tuple[str, list[Any]]:
    """`m(id) AS (VALUES …)`: the measures, one row each."""
    cast = "CAST(%s AS BIGINT)" if connection.vendor == "postgresql" else "%s"
    return f"m(id) AS (VALUES {', '.join([f'({cast})'] * len(measure_ids))})", list(measure_ids)


def rollup_sql(measure_ids: Sequence[int], period: Period) -> tuple[str, list[Any]]:
    """(measure, bucket, mean) from the roll-ups, one row per measure and bucket (NULL: no observation):
    a correlated scalar subquery per (measure, bucket), each one range scan of the covering index
    DailyRollup(measure, day, count, total) that sums its few rows. (A join of the buckets with the
    roll-ups grouped by (measure, bucket) sorted every daily row in a temporary B-tree on SQLite: with
    365 days that sort, not reading the index, was most of the page's time.)"""
    postgres = connection.vendor == "postgresql"
    cte, params = _slices(
        period, connection.ops.adapt_datefield_value, "CAST(%s AS DATE)" if postgres else "%s"
    )
    measures, ids = _measures(measure_ids)
    q = connection.ops.quote_name
    # REAL over the integer sum of counts: a float division (SQLite divides two integers as integers).
    mean = f"CAST(SUM(r.total) AS {'DOUBLE PRECISION' if postgres else 'REAL'}) / SUM(r.{q('count')})"
    sql = (
        f"WITH {cte}, {measures} SELECT m.id, slice.i, ("  # noqa: S608 (placeholders only)
        f"SELECT {mean} FROM {DailyRollup._meta.db_table} r WHERE r.measure_id = m.id "
        f"AND r.{q('day')} >= slice.lo AND r.{q('day')} < slice.hi) FROM m CROSS JOIN slice"
    )
    return sql, [*params, *ids]


def bucket_sql(measure_ids: Sequence[int], period: Period) -> tuple[str, list[Any]]:
    """Sum and count per (measure, bucket) from the observations (the reference the roll-ups must match):
    each (measure, bucket) is one range scan of the covering index Observation(measure, superseded,
    observed_at, value), with the buckets' local midnights as UTC bounds."""
    tz = rollups.zone()

    def edge(day: dt.date) -> Any:
        return connection.ops.adapt_datetimefield_value(rollups.day_start(day, tz))

    cast = "CAST(%s AS TIMESTAMPTZ)" if connection.vendor == "postgresql" else "%s"
    cte, params = _slices(period, edge, cast)
    placeholders = ", ".join(["%s"] * len(measure_ids))
    real = "DOUBLE PRECISION" if connection.vendor == "postgresql" else "REAL"
    sql = (
        f"WITH {cte} SELECT o.measure_id, slice.i, CAST(SUM(o.value) AS {real}) / COUNT(*) "  # noqa: S608 (placeholders only)
        f"FROM slice JOIN {Observation._meta.db_table} o ON o.measure_id IN ({placeholders}) "
        "AND o.superseded = %s AND o.observed_at >= slice.lo AND o.observed_at < slice.hi "
        "GROUP BY o.measure_id, slice.i"
    )
    return sql, [*params, *measure_ids, False]


def _series(raw: dict[int, float], count: int) -> list[float | None]:
    series: list[float | None] = [None] * count
    for bucket, mean in raw.items():
        series[bucket] = mean
    return series


def _change(start: float | None, latest: float | None) -> float | None:
    """Latest value minus the value in force when the period began (as maths.change: None when the
    series does not reach back to the start of the period)."""
    return None if start is None or latest is None else latest - start


def _slope(xs: list[float], ys: list[float]) -> float | None:
    """maths.trend_slope for times already in days (the bucket middles): the same arithmetic, without
    its per-point conversion of times to days (a float stays itself there), so the same result."""
    n = len(xs)
    if n < 2:
        return None
    x0 = xs[0]
    xs = [x - x0 for x in xs]
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx <= 1e-18:
        return None
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx


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
    from_rollups: bool = True,
) -> Dashboard:
    """The value dashboard of one product of the membership's organisation (NotFound otherwise), over
    the whole local days beginning within [since, until] (see period_of)."""
    now = now or timezone.now()
    until = until or now
    since = since or until - DEFAULT_PERIOD
    if since >= until:
        since = until - dt.timedelta(days=1)
    product = strategy_services.get_product(membership, product_id)
    period = period_of(since, until)
    since = rollups.day_start(period.first_day)

    latest = _current(OuterRef("pk")).filter(observed_at__lte=until).order_by("-observed_at", "-id")
    before = _current(OuterRef("pk")).filter(observed_at__lte=since).order_by("-observed_at", "-id")
    measures = list(
        Measure.objects.filter(
            organisation_id=membership.organisation_id, product_id=product.pk, archived_at__isnull=True
        )
        # Not the long texts (queries, formulas): the cards never read them. Every other field stays, as
        # the summaries' callers (the product brief reads `baseline`) would pay a query per measure for a
        # deferred one.
        .defer("query", "formula")
        .annotate(
            latest_value=Subquery(latest.values("value")[:1]),
            latest_at=Subquery(latest.values("observed_at")[:1]),
            start_value=Subquery(before.values("value")[:1]),
        )
        .order_by("name", "id")
    )

    bucket_seconds = period.days * DAY / period.buckets
    means = bucket_means([m.pk for m in measures], period, from_rollups=from_rollups)
    middles = period.middles()

    by_kva: dict[str, list[MeasureSummary]] = {k: [] for k in KVA.values}
    for m in measures:
        buckets = _series(means.get(m.pk, {}), period.buckets)
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
            slope_per_day=_slope([middles[i] for i, _ in known], [v for _, v in known]),
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


__all__ = [
    "Dashboard",
    "KvaColumn",
    "MeasureSummary",
    "Period",
    "bucket_means",
    "bucket_sql",
    "period_of",
    "product_dashboard",
    "rollup_sql",
]
