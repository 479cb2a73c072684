"""Daily roll-ups of observations: what the value dashboard reads instead of millions of rows.

A `DailyRollup` row holds, for one measure and one local day (settings.TIME_ZONE), the count, sum,
minimum and maximum of the measure's *current* (not superseded) observations that day. Days without a
current observation have no row.

How they stay right:
- `write_observations` is the one way observations are written (batches, single values, corrections,
  imports, refreshes, the delivery feed): in the caller's transaction it marks the superseded rows,
  inserts the new ones and then recomputes the roll-up of every (measure, day) they touch from the
  observations themselves (an upsert per day; a day left without a current value loses its row).
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
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Sum
from django.utils import timezone

from truenorth.core.health import CheckResult
from truenorth.measures.models import DailyRollup, Measure, Observation, RollupState

Key = tuple[int, dt.date]  # (measure id, local day)

# Days per statement: four parameters each, well under SQLite's 32,766 and PostgreSQL's 65,535.
KEYS_PER_STATEMENT = 1000
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
        refresh(keys_of([*created, *supersede]), emptied=bool(supersede))
    return created


def refresh(keys: Iterable[Key], *, emptied: bool = True, using: str = "default") -> None:
    """Recompute the roll-up rows of these (measure, day) pairs from the current observations.

    `emptied=False` (pure inserts) skips looking for days left with no current value."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    connection = connections[using]
    tz = zone()
    with transaction.atomic(using=using), connection.cursor() as cursor:
        _lock(connection, sorted({m for m, _ in ordered}))
        for start in range(0, len(ordered), KEYS_PER_STATEMENT):
            chunk = ordered[start : start + KEYS_PER_STATEMENT]
            cursor.execute(*_upsert_sql(connection, chunk, tz))
            if emptied:
                cursor.execute(*_delete_empty_sql(connection, chunk, tz))


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


def _days_cte(connection: BaseDatabaseWrapper, keys: Sequence[Key], tz: dt.tzinfo) -> tuple[str, list[Any]]:
    """`WITH k(m, d, lo, hi) AS (VALUES …)`: each key with its day's UTC bounds."""
    ops = connection.ops
    if connection.vendor == "postgresql":
        row = "(%s, CAST(%s AS DATE), CAST(%s AS TIMESTAMPTZ), CAST(%s AS TIMESTAMPTZ))"
    else:
        row = "(%s, %s, %s, %s)"
    params: list[Any] = []
    for measure_id, day in keys:
        params += [
            measure_id,
            ops.adapt_datefield_value(day),
            ops.adapt_datetimefield_value(day_start(day, tz)),
            ops.adapt_datetimefield_value(day_start(day + dt.timedelta(days=1), tz)),
        ]
    return f"WITH k(m, d, lo, hi) AS (VALUES {', '.join([row] * len(keys))}) ", params


def _upsert_sql(connection: BaseDatabaseWrapper, keys: Sequence[Key], tz: dt.tzinfo) -> tuple[str, list[Any]]:
    cte, params = _days_cte(connection, keys, tz)
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in ("measure_id", "day", "count", "total", "low", "high"))
    updates = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in ("count", "total", "low", "high"))
    sql = (
        f"{cte}INSERT INTO {ROLLUPS} ({columns}) "  # noqa: S608 (placeholders only)
        "SELECT k.m, k.d, COUNT(*), SUM(o.value), MIN(o.value), MAX(o.value) "
        f"FROM k JOIN {OBSERVATIONS} o ON o.measure_id = k.m AND o.superseded = %s "
        "AND o.observed_at >= k.lo AND o.observed_at < k.hi "
        # SQLite needs a WHERE between a join's ON and an upsert's ON CONFLICT to parse them apart.
        "WHERE 1 = 1 GROUP BY k.m, k.d "
        f"ON CONFLICT ({q('measure_id')}, {q('day')}) DO UPDATE SET {updates}"
    )
    return sql, [*params, False]


def _delete_empty_sql(
    connection: BaseDatabaseWrapper, keys: Sequence[Key], tz: dt.tzinfo
) -> tuple[str, list[Any]]:
    cte, params = _days_cte(connection, keys, tz)
    q = connection.ops.quote_name
    sql = (
        f"{cte}DELETE FROM {ROLLUPS} WHERE id IN ("  # noqa: S608 (placeholders only)
        f"SELECT r.id FROM {ROLLUPS} r JOIN k ON r.measure_id = k.m AND r.{q('day')} = k.d "
        f"WHERE NOT EXISTS (SELECT 1 FROM {OBSERVATIONS} o WHERE o.measure_id = k.m "
        "AND o.superseded = %s AND o.observed_at >= k.lo AND o.observed_at < k.hi))"
    )
    return sql, [*params, False]


def saved(sender: type, instance: Observation, created: bool, **kwargs: Any) -> None:
    """post_save of an Observation saved one by one outside write_observations: refresh its day."""
    using = kwargs.get("using") or "default"
    if not isinstance(instance.observed_at, dt.datetime):  # saved from text: the stored time counts
        instance = Observation.objects.using(using).only("measure_id", "observed_at").get(pk=instance.pk)
    refresh(keys_of([instance]), emptied=not created, using=using)


# --- rebuilding and checking ------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildResult:
    measures: int
    days: int
    observations: int


def _spans(connection: BaseDatabaseWrapper, measure_ids: Sequence[int] | None) -> list[tuple[int, Any, Any]]:
    """(measure id, first, last observed_at) of each measure with current observations."""
    where, params = "superseded = %s", list[Any]([False])
    if measure_ids is not None:
        where += f" AND measure_id IN ({', '.join(['%s'] * len(measure_ids))})"
        params += list(measure_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT measure_id, MIN(observed_at), MAX(observed_at) FROM {OBSERVATIONS} "  # noqa: S608
            f"WHERE {where} GROUP BY measure_id ORDER BY measure_id",
            params,
        )
        return list(cursor.fetchall())


def _as_datetime(connection: BaseDatabaseWrapper, value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite returns raw text from a hand-written query
        value = dt.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    result: dt.datetime = value
    return result


def _all_keys(connection: BaseDatabaseWrapper, measure_ids: Sequence[int] | None, tz: dt.tzinfo) -> list[Key]:
    keys: list[Key] = []
    for measure_id, first, last in _spans(connection, measure_ids):
        day = local_day(_as_datetime(connection, first), tz)
        end = local_day(_as_datetime(connection, last), tz)
        while day <= end:
            keys.append((measure_id, day))
            day += dt.timedelta(days=1)
    return keys


def rebuild(
    measure_ids: Sequence[int] | None = None, *, using: str = "default", record_zone: bool = True
) -> RebuildResult:
    """Recompute the roll-ups (of every measure, or of these) from the observations, in one transaction,
    and record the time zone they were built in. Safe while observations are being written (PostgreSQL:
    the measures are locked, so a writer waits)."""
    connection = connections[using]
    tz = zone()
    rows = DailyRollup.objects.using(using)
    if measure_ids is not None:
        rows = rows.filter(measure_id__in=measure_ids)
    with transaction.atomic(using=using):
        _lock(connection, measure_ids)  # first: a writer waits, or has committed and is seen below
        keys = _all_keys(connection, measure_ids, tz)
        rows.delete()
        refresh(keys, emptied=False, using=using)
        totals = rows.aggregate(days=Count("id"), observations=Sum("count"))
        if measure_ids is None and record_zone:
            RollupState.objects.using(using).update_or_create(
                pk=1, defaults={"time_zone": settings.TIME_ZONE, "rebuilt_at": timezone.now()}
            )
    return RebuildResult(len({m for m, _ in keys}), totals["days"], totals["observations"] or 0)


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
    keys = _all_keys(connection, measure_ids, tz)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), KEYS_PER_STATEMENT):
            cte, params = _days_cte(connection, keys[start : start + KEYS_PER_STATEMENT], tz)
            cursor.execute(
                f"{cte}SELECT k.m, k.d, COUNT(*), SUM(o.value), MIN(o.value), MAX(o.value) "  # noqa: S608
                f"FROM k JOIN {OBSERVATIONS} o ON o.measure_id = k.m AND o.superseded = %s "
                "AND o.observed_at >= k.lo AND o.observed_at < k.hi GROUP BY k.m, k.d",
                [*params, False],
            )
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
