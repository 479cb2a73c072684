"""Daily roll-ups of observations: what the value dashboard reads instead of millions of rows.

A `DailyRollup` row holds, for one measure and one local day (settings.TIME_ZONE), the count, sum,
minimum and maximum of the measure's *current* (not superseded) observations that day. Days without a
current observation have no row.

How they stay right:
- `write_observations` is the one way observations are written (batches, single values, corrections,
  imports, refreshes, the delivery feed): in the caller's transaction it marks the superseded rows,
  inserts the new ones and then recomputes the roll-ups of the days they touch from the observations
  themselves (per measure: delete its rows from the first to the last day touched, insert them afresh
  with one grouped statement; a day left without a current value has no row any more).
- Recomputing, rather than adding deltas, keeps minimum and maximum exact after a correction and makes
  every row a pure function of the append-only evidence: the rows themselves are derived data, so they
  are updated in place, not protected like the evidence (`rebuild` recreates them at any time).
- Concurrent writers of the same measure (PostgreSQL): the recompute first locks the measures'
  rows (FOR NO KEY UPDATE, in id order), so a second writer waits for the first to commit and its
  recompute, a new statement, sees both writers' rows. SQLite serialises writers anyway.
- An `Observation.save()` outside this module (a script, a fixture) refreshes its day too (post_save);
  `bulk_create` and `update` send no signal, so code must use `write_observations`.
- The local day of an observation depends on TIME_ZONE: `RollupState` records the zone the rows were
  built in and `truenorth check` (`rollups_health`) warns when it differs; `truenorth measure rollups
  --rebuild` recomputes everything (also the repair after any doubt; `--check` compares first).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from truenorth.core.health import CheckResult
from truenorth.measures.models import DailyRollup, Measure, Observation, RollupState

Key = tuple[int, dt.date]  # (measure id, local day)

BULK_BATCH = 1000

OBSERVATIONS = Observation._meta.db_table
ROLLUPS = DailyRollup._meta.db_table


def zone() -> dt.tzinfo:
    """The zone whose local days the roll-ups use: the instance's TIME_ZONE."""
    return ZoneInfo(settings.TIME_ZONE)


def local_day(when: dt.datetime, tz: dt.tzinfo | None = None) -> dt.date:
    return when.astimezone(tz or zone()).date()


def day_start(day: dt.date, tz: dt.tzinfo | None = None) -> dt.datetime:
    """The first instant of a local day, in UTC (a midnight that a DST change skips is the day's
    first existing instant)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz or zone()).astimezone(dt.UTC)


def keys_of(observations: Iterable[Observation], tz: dt.tzinfo | None = None) -> set[Key]:
    tz = tz or zone()
    return {(o.measure_id, local_day(o.observed_at, tz)) for o in observations}


# --- writing ----------------------------------------------------------------------------------------


def write_observations(
    new: Sequence[Observation], *, supersede: Sequence[Observation] = (), batch_size: int = BULK_BATCH
) -> list[Observation]:
    """Store observations and keep the roll-ups right, in one transaction: mark `supersede` superseded
    (the one change their append-only trigger allows; before the insert, since the database holds one
    current value per measure and time), insert `new`, then recompute every (measure, day) touched.

    An IntegrityError (a current value already at that measure and time) leaves nothing behind."""
    with transaction.atomic():
        if supersede:
            Observation.objects.filter(pk__in=[o.pk for o in supersede]).update(superseded=True)
            for old in supersede:
                old.superseded = True
        created = Observation.objects.bulk_create(list(new), batch_size=batch_size)
        refresh(keys_of([*created, *supersede]))
    return created


def refresh(keys: Iterable[Key], *, using: str = "default") -> None:
    """Recompute the roll-ups of these (measure, day) pairs from the current observations: per measure,
    every day from its first to its last key (recomputing more days than touched is harmless)."""
    spans: dict[int, tuple[dt.date, dt.date]] = {}
    for measure_id, day in keys:
        first, last = spans.get(measure_id, (day, day))
        spans[measure_id] = (min(first, day), max(last, day))
    if not spans:
        return
    connection = connections[using]
    tz = zone()
    with transaction.atomic(using=using):
        _lock(connection, sorted(spans))
        for measure_id, (first, last) in sorted(spans.items()):
            _recompute(
                connection, tz, [measure_id], day_start(first, tz), day_start(last + dt.timedelta(days=1), tz)
            )


def _lock(connection: BaseDatabaseWrapper, measure_ids: Sequence[int] | None) -> None:
    """PostgreSQL: hold these measures (all of them for None) until the transaction ends, in id order, so
    concurrent writers of a measure recompute its days one after the other. FOR NO KEY UPDATE does not
    block inserting observations (their foreign key check takes KEY SHARE); SQLite has one writer."""
    if connection.vendor != "postgresql" or measure_ids == []:
        return
    where, params = "", list(measure_ids or [])
    if measure_ids is not None:
        where = f"WHERE id IN ({', '.join(['%s'] * len(measure_ids))}) "
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Measure._meta.db_table} {where}ORDER BY id FOR NO KEY UPDATE",  # noqa: S608
            params,
        )


def offsets(tz: dt.tzinfo, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """The zone's UTC offsets over [lo, hi): [(from this instant, offset in seconds)], in order. Found
    by steps of 6 hours and a bisection to the microsecond at each change (DST, a new legal time)."""

    def offset(t: dt.datetime) -> int:
        delta = t.astimezone(tz).utcoffset()
        return round(delta.total_seconds()) if delta is not None else 0

    out = [(lo, offset(lo))]
    step = dt.timedelta(hours=6)
    t = lo
    while t < hi:
        n = min(t + step, hi)
        if offset(n) != out[-1][1]:
            a, b = t, n
            while b - a > dt.timedelta(microseconds=1):
                mid = a + (b - a) // 2
                a, b = (mid, b) if offset(mid) == out[-1][1] else (a, mid)
            out.append((b, offset(b)))
        t = n
    return out


def _day_sql(
    connection: BaseDatabaseWrapper, tz: dt.tzinfo, lo: dt.datetime, hi: dt.datetime
) -> tuple[str, list[Any]]:
    """SQL for the local day of `o.observed_at` in [lo, hi): the UTC time shifted by the offset in force
    (a CASE over the offset changes in the range), as a date; the same days as local_day."""
    adapt = connection.ops.adapt_datetimefield_value
    changes = offsets(tz, lo, hi)
    postgres = connection.vendor == "postgresql"
    when = "o.observed_at < CAST(%s AS TIMESTAMPTZ)" if postgres else "o.observed_at < %s"
    then = "CAST(%s AS INTEGER)" if postgres else "%s"
    shift = then
    params: list[Any] = []
    if len(changes) > 1:
        shift = "CASE"
        for (_, seconds), (start, _) in pairwise(changes):
            shift += f" WHEN {when} THEN {then}"
            params += [adapt(start), seconds if postgres else f"{seconds:+d} seconds"]
        shift += f" ELSE {then} END"
    last = changes[-1][1]
    params.append(last if postgres else f"{last:+d} seconds")
    if postgres:
        return f"CAST((o.observed_at AT TIME ZONE 'UTC') + ({shift}) * INTERVAL '1 second' AS DATE)", params
    # SQLite keeps milliseconds in its date arithmetic: 23:59:59.9999 would round into the next day, so
    # the microseconds go first (offsets are whole seconds: the day is the same).
    return f"date(substr(o.observed_at, 1, 19), {shift})", params


def _grouped_sql(
    connection: BaseDatabaseWrapper,
    tz: dt.tzinfo,
    measure_ids: Sequence[int] | None,
    lo: dt.datetime,
    hi: dt.datetime,
) -> tuple[str, list[Any]]:
    """SELECT measure, local day, count, sum, min, max of the current observations in [lo, hi): one
    range scan of Observation(measure, superseded, observed_at, value) per measure, grouped."""
    adapt = connection.ops.adapt_datetimefield_value
    day, day_params = _day_sql(connection, tz, lo, hi)
    where, params = (
        "o.superseded = %s AND o.observed_at >= %s AND o.observed_at < %s",
        list[Any]([False, adapt(lo), adapt(hi)]),
    )
    if measure_ids is not None:
        where += f" AND o.measure_id IN ({', '.join(['%s'] * len(measure_ids))})"
        params += list(measure_ids)
    sql = (
        f"SELECT o.measure_id, {day}, COUNT(*), SUM(o.value), MIN(o.value), MAX(o.value) "  # noqa: S608
        f"FROM {OBSERVATIONS} o WHERE {where} GROUP BY 1, 2"
    )
    return sql, [*day_params, *params]


def _recompute(
    connection: BaseDatabaseWrapper,
    tz: dt.tzinfo,
    measure_ids: Sequence[int] | None,
    lo: dt.datetime,
    hi: dt.datetime,
) -> None:
    """Replace the roll-ups of these measures (all: None) on the local days within [lo, hi) (whole days)."""
    rows = DailyRollup.objects.using(connection.alias).filter(
        day__gte=local_day(lo, tz), day__lt=local_day(hi, tz)
    )
    if measure_ids is not None:
        rows = rows.filter(measure_id__in=measure_ids)
    rows.delete()  # one DELETE: nothing refers to roll-ups, no signal listens
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in ("measure_id", "day", "count", "total", "low", "high"))
    select, params = _grouped_sql(connection, tz, measure_ids, lo, hi)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {ROLLUPS} ({columns}) {select}", params)


def saved(sender: type, instance: Observation, created: bool, **kwargs: Any) -> None:
    """post_save of an Observation saved one by one outside write_observations: refresh its day."""
    using = kwargs.get("using") or "default"
    if not isinstance(instance.observed_at, dt.datetime):  # saved from text: the stored time counts
        instance = Observation.objects.using(using).only("measure_id", "observed_at").get(pk=instance.pk)
    refresh(keys_of([instance]), using=using)


# --- rebuilding and checking ------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildResult:
    measures: int
    days: int
    observations: int


def _span(
    connection: BaseDatabaseWrapper, measure_ids: Sequence[int] | None
) -> tuple[dt.datetime, dt.datetime] | None:
    """[first local midnight, the one after the last day) of the current observations (of these
    measures), or None when there are none."""
    rows = Observation.objects.using(connection.alias).filter(superseded=False)
    if measure_ids is not None:
        rows = rows.filter(measure_id__in=measure_ids)
    found = rows.aggregate(first=Min("observed_at"), last=Max("observed_at"))
    if found["first"] is None:
        return None
    tz = zone()
    return day_start(local_day(found["first"], tz), tz), day_start(
        local_day(found["last"], tz) + dt.timedelta(days=1), tz
    )


def rebuild(
    measure_ids: Sequence[int] | None = None, *, using: str = "default", record_zone: bool = True
) -> RebuildResult:
    """Recompute the roll-ups (of every measure, or of these) from the observations, in one transaction
    (one grouped statement), and record the time zone they were built in. Safe while observations are
    being written (PostgreSQL: the measures are locked first, so a writer waits)."""
    connection = connections[using]
    tz = zone()
    rows = DailyRollup.objects.using(using)
    if measure_ids is not None:
        rows = rows.filter(measure_id__in=measure_ids)
    with transaction.atomic(using=using):
        _lock(connection, measure_ids)  # first: a writer waits, or has committed and is seen below
        rows.delete()
        span = _span(connection, measure_ids)
        if span is not None:
            _recompute(connection, tz, measure_ids, *span)
        totals = rows.aggregate(
            measures=Count("measure_id", distinct=True), days=Count("id"), observations=Sum("count")
        )
        if measure_ids is None and record_zone:
            RollupState.objects.using(using).update_or_create(
                pk=1, defaults={"time_zone": settings.TIME_ZONE, "rebuilt_at": timezone.now()}
            )
    return RebuildResult(totals["measures"], totals["days"], totals["observations"] or 0)


@dataclass(frozen=True)
class Mismatch:
    measure_id: int
    day: dt.date
    stored: tuple[int, float, float, float] | None
    expected: tuple[int, float, float, float] | None


def _close(a: tuple[int, float, float, float] | None, b: tuple[int, float, float, float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a[0] == b[0] and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(a[1:], b[1:], strict=True)
    )


def check(measure_ids: Sequence[int] | None = None, *, using: str = "default") -> list[Mismatch]:
    """The (measure, day) rows that differ from a recomputation from the observations (none: all right)."""
    connection = connections[using]
    tz = zone()
    expected: dict[Key, tuple[int, float, float, float]] = {}
    span = _span(connection, measure_ids)
    if span is not None:
        sql, params = _grouped_sql(connection, tz, measure_ids, *span)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for m, d, n, total, low, high in cursor.fetchall():
                day = d if isinstance(d, dt.date) else dt.date.fromisoformat(d)
                expected[(m, day)] = (int(n), float(total), float(low), float(high))
    stored_rows = DailyRollup.objects.using(using)
    if measure_ids is not None:
        stored_rows = stored_rows.filter(measure_id__in=measure_ids)
    stored = {
        (m, d): (n, t, lo, hi)
        for m, d, n, t, lo, hi in stored_rows.values_list(
            "measure_id", "day", "count", "total", "low", "high"
        )
    }
    out = []
    for key in sorted(expected.keys() | stored.keys()):
        if not _close(stored.get(key), expected.get(key)):
            out.append(Mismatch(key[0], key[1], stored.get(key), expected.get(key)))
    return out


def rollups_health() -> list[CheckResult]:
    """`truenorth check`: the roll-ups were built in the current TIME_ZONE (else the dashboard's days
    are shifted until `truenorth measure rollups --rebuild`)."""
    try:
        state = RollupState.objects.filter(pk=1).first()
        has_rows = DailyRollup.objects.exists()
    except Exception:  # no database or no tables yet: the database checks say so
        return []
    name = "value dashboard roll-ups"
    if state is None:
        if has_rows:
            return [
                CheckResult(
                    name, "warning", "no record of their time zone: run `truenorth measure rollups --rebuild`"
                )
            ]
        return [CheckResult(name, "ok", "none yet")]
    if state.time_zone != settings.TIME_ZONE:
        return [
            CheckResult(
                name,
                "warning",
                f"built for days in {state.time_zone}, but TIME_ZONE is {settings.TIME_ZONE}: "
                "run `truenorth measure rollups --rebuild`",
            )
        ]
    return [CheckResult(name, "ok", f"daily, in {state.time_zone}")]


def by_measure(mismatches: Sequence[Mismatch]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for m in mismatches:
        counts[m.measure_id] += 1
    return dict(counts)
