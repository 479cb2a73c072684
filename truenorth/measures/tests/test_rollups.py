"""Daily roll-ups: kept right by every way observations are written, and the value dashboard reads the
same numbers from them as from the observations themselves (randomised data, corrections, several
values a day, local days around midnight and DST changes, empty days, measures without data)."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from typer.testing import CliRunner

from truenorth.measures import rollups
from truenorth.measures import services as ms
from truenorth.measures.dashboard import BUCKETS, period_of, product_dashboard
from truenorth.measures.models import KVA, DailyRollup, Measure, Observation, RollupState
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Product

NOW = dt.datetime(2026, 6, 30, 21, 30, tzinfo=dt.UTC)


@pytest.fixture
def product(owner) -> Product:
    return strategy_services.create_product(owner.membership, owner.user, name="Trailhead")


def _measure(product: Product, name: str, kva: str = KVA.CURRENT_VALUE, **kw) -> Measure:
    return Measure.objects.create(
        organisation=product.organisation, product=product, name=name, kva=kva, **kw
    )


def _local_times(rng: random.Random, tz: ZoneInfo, days: int) -> list[dt.datetime]:
    """Times over the `days` before NOW, many of them just around a local midnight."""
    out = set()
    for _ in range(rng.randint(30, 60)):
        day = (NOW - dt.timedelta(days=rng.randint(0, days))).astimezone(tz).date()
        for _ in range(rng.randint(1, 4)):  # several values a day
            clock = rng.choice(
                [
                    dt.time(0, 0),
                    dt.time(0, 0, 1),
                    dt.time(23, 59, 59),
                    dt.time(23, 59, 59, 999999),
                    dt.time(rng.randint(0, 23), rng.randint(0, 59)),
                ]
            )
            when = dt.datetime.combine(day, clock, tzinfo=tz).astimezone(dt.UTC)
            if when <= NOW:
                out.add(when)
    return sorted(out)


def _random_world(owner, product: Product, tz: ZoneInfo, seed: int) -> list[Measure]:
    """Five measures (one never observed), written by batches, single values, plain saves and
    corrections (some corrected twice)."""
    rng = random.Random(seed)
    measures = [_measure(product, f"M{i}", KVA.values[i % 4]) for i in range(5)]
    for m in measures[:4]:
        times = _local_times(rng, tz, 400)
        rows = [ms.ObservationIn(m.pk, round(rng.uniform(-50, 150), 3), when.isoformat()) for when in times]
        half = len(rows) // 2
        ms.add_observations(owner.membership, owner.user, rows[:half], source="api")
        for row in rows[half:]:
            if rng.random() < 0.5:
                ms.add_observation(owner.membership, owner.user, m.pk, row.value, observed_at=row.observed_at)
            else:  # saved one by one outside the services: the post_save receiver keeps its day right
                Observation.objects.create(measure=m, value=row.value, observed_at=row.observed_at)
    current = list(Observation.objects.filter(superseded=False, measure__in=measures))
    for old in rng.sample(current, 25):
        new = ms.correct_observation(owner.membership, owner.user, old.pk, round(rng.uniform(-50, 150), 3))
        if rng.random() < 0.3:
            ms.correct_observation(owner.membership, owner.user, new.pk, round(rng.uniform(-500, 500), 3))
    return measures


def _python_rollups(tz: ZoneInfo) -> dict[tuple[int, dt.date], tuple[int, float, float, float]]:
    """The roll-ups computed in Python from every current observation (independent of the SQL)."""
    days: dict[tuple[int, dt.date], list[float]] = defaultdict(list)
    for measure_id, when, value in Observation.objects.filter(superseded=False).values_list(
        "measure_id", "observed_at", "value"
    ):
        days[(measure_id, when.astimezone(tz).date())].append(value)
    return {k: (len(v), math.fsum(v), min(v), max(v)) for k, v in days.items()}


def _stored() -> dict[tuple[int, dt.date], tuple[int, float, float, float]]:
    return {
        (m, d): (n, t, lo, hi)
        for m, d, n, t, lo, hi in DailyRollup.objects.values_list(
            "measure_id", "day", "count", "total", "low", "high"
        )
    }


def _assert_same_rollups(tz: ZoneInfo) -> None:
    expected, stored = _python_rollups(tz), _stored()
    assert stored.keys() == expected.keys()
    for key, (n, total, low, high) in expected.items():
        assert stored[key] == (n, pytest.approx(total, rel=1e-12, abs=1e-9), low, high), key


def _python_buckets(
    measure_id: int, first: dt.date, edges: list[dt.date], tz: ZoneInfo
) -> list[float | None]:
    sums: dict[int, list[float]] = defaultdict(list)
    for when, value in Observation.objects.filter(measure_id=measure_id, superseded=False).values_list(
        "observed_at", "value"
    ):
        day = when.astimezone(tz).date()
        for i in range(len(edges) - 1):
            if edges[i] <= day < edges[i + 1]:
                sums[i].append(value)
    return [math.fsum(sums[i]) / len(sums[i]) if sums.get(i) else None for i in range(len(edges) - 1)]


def _same(a: list[float | None], b: list[float | None]) -> bool:
    """Equal series, up to floating-point summation order (a sum of daily sums against one sum)."""
    return len(a) == len(b) and all(
        (x is None and y is None)
        or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9))
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(("zone_name", "seed"), [("Europe/Paris", 1), ("America/Santiago", 2), ("UTC", 3)])
def test_rollups_and_the_dashboard_match_the_observations(owner, product, settings, zone_name, seed) -> None:
    settings.TIME_ZONE = zone_name
    tz = ZoneInfo(zone_name)
    measures = _random_world(owner, product, tz, seed)
    assert Observation.objects.filter(superseded=True).count() >= 25  # corrections happened
    _assert_same_rollups(tz)
    assert rollups.check() == []

    rng = random.Random(seed)
    periods = [(NOW - dt.timedelta(days=90), NOW), (NOW - dt.timedelta(days=365), NOW)]
    for _ in range(4):
        a, b = sorted(
            NOW - dt.timedelta(days=rng.randint(0, 420), hours=rng.randint(0, 23)) for _ in range(2)
        )
        periods.append((a, b))
    periods.append(
        (dt.datetime(2026, 3, 29, 0, 0, tzinfo=tz), dt.datetime(2026, 4, 4, 23, 59, 59, 999999, tzinfo=tz))
    )
    for since, until in periods:
        fast = product_dashboard(owner.membership, product.pk, since=since, until=until, now=NOW)
        raw = product_dashboard(
            owner.membership, product.pk, since=since, until=until, now=NOW, from_rollups=False
        )
        period = period_of(since, until)
        fast_rows = [s for c in fast.columns for s in c.measures]
        raw_rows = [s for c in raw.columns for s in c.measures]
        assert [s.measure.pk for s in fast_rows] == [s.measure.pk for s in raw_rows]
        assert sorted(s.measure.pk for s in fast_rows) == [m.pk for m in measures]
        for f, r in zip(fast_rows, raw_rows, strict=True):
            expected = _python_buckets(f.measure.pk, period.first_day, period.edges, tz)
            assert _same(f.buckets, r.buckets) and _same(f.buckets, expected), (
                f.buckets,
                r.buckets,
                expected,
            )
            assert (f.latest_value, f.latest_at, f.start_value, f.change, f.stale, f.distance) == (
                r.latest_value,
                r.latest_at,
                r.start_value,
                r.change,
                r.stale,
                r.distance,
            )
            assert (f.slope_per_day is None) == (r.slope_per_day is None)
            if f.slope_per_day is not None:
                assert f.slope_per_day == pytest.approx(r.slope_per_day, rel=1e-6, abs=1e-9)
        (never,) = [s for s in fast_rows if s.measure == measures[4]]
        assert never.buckets == [None] * period.buckets and never.latest_value is None
        assert fast.since == rollups.day_start(period.first_day)


def test_the_period_is_whole_local_days(settings) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    until = dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC)  # already 1 July in Paris
    ninety = period_of(until - dt.timedelta(days=90), until)
    assert ninety.first_day == dt.date(2026, 4, 3) and ninety.edges[-1] == dt.date(2026, 7, 2)
    assert ninety.days == 90 and ninety.buckets == BUCKETS
    assert {(b - a).days for a, b in pairwise(ninety.edges)} == {3}
    year = period_of(until - dt.timedelta(days=365), until)
    assert year.days == 365 and sorted({(b - a).days for a, b in pairwise(year.edges)}) == [12, 13]
    week = period_of(until - dt.timedelta(days=7), until)
    assert week.buckets == 7  # fewer days than buckets: one bucket a day
    custom = period_of(
        dt.datetime(2026, 3, 1, tzinfo=ZoneInfo("Europe/Paris")),
        dt.datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("Europe/Paris")),
    )
    assert (custom.first_day, custom.days) == (dt.date(2026, 3, 1), 31)


def test_a_correction_recomputes_its_day_and_nothing_else(owner, product, settings) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    m = _measure(product, "NPS")
    other = _measure(product, "Lead time", KVA.TIME_TO_MARKET)
    # 23:30 UTC on 1 June is 01:30 on 2 June in Paris.
    times = ["2026-06-01T10:00:00Z", "2026-06-01T21:00:00Z", "2026-06-01T23:30:00Z"]
    ms.add_observations(
        owner.membership,
        owner.user,
        [ms.ObservationIn(m.pk, v, t) for v, t in zip((10, 90, 7), times, strict=True)]
        + [ms.ObservationIn(other.pk, 5, times[0])],
        source="api",
    )
    assert _stored() == {
        (m.pk, dt.date(2026, 6, 1)): (2, 100.0, 10.0, 90.0),
        (m.pk, dt.date(2026, 6, 2)): (1, 7.0, 7.0, 7.0),
        (other.pk, dt.date(2026, 6, 1)): (1, 5.0, 5.0, 5.0),
    }
    high = Observation.objects.get(measure=m, value=90)
    ms.correct_observation(owner.membership, owner.user, high.pk, 30)  # the maximum goes down
    assert _stored()[(m.pk, dt.date(2026, 6, 1))] == (2, 40.0, 10.0, 30.0)
    assert rollups.check() == []


def test_a_refused_batch_leaves_the_rollups_as_they_were(owner, product) -> None:
    from truenorth.core.errors import Conflict

    m = _measure(product, "NPS")
    ms.add_observations(
        owner.membership, owner.user, [ms.ObservationIn(m.pk, 1, "2026-06-01T10:00:00Z")], source="api"
    )
    before = _stored()
    with pytest.raises(Conflict):  # the same key with other rows: nothing stored, roll-ups unchanged
        ms.add_observations(
            owner.membership,
            owner.user,
            [ms.ObservationIn(m.pk, 2, "2026-06-02T10:00:00Z")],
            source="api",
            idempotency_key="k",
        )
        ms.add_observations(
            owner.membership,
            owner.user,
            [ms.ObservationIn(m.pk, 3, "2026-06-03T10:00:00Z")],
            source="api",
            idempotency_key="k",
        )
    assert _stored()[(m.pk, dt.date(2026, 6, 2))] == (1, 2.0, 2.0, 2.0)
    assert (m.pk, dt.date(2026, 6, 3)) not in _stored()
    assert before.items() <= _stored().items()


def test_check_finds_a_wrong_row_and_rebuild_repairs_it(owner, product, settings) -> None:
    from truenorth.cli import app

    m = _measure(product, "NPS")
    ms.add_observations(
        owner.membership,
        owner.user,
        [ms.ObservationIn(m.pk, v, f"2026-06-0{d}T10:00:00Z") for d, v in ((1, 3), (2, 4), (3, 5))],
        source="api",
    )
    DailyRollup.objects.filter(measure=m, day=dt.date(2026, 6, 2)).update(total=400)
    DailyRollup.objects.filter(measure=m, day=dt.date(2026, 6, 3)).delete()
    DailyRollup.objects.create(measure=m, day=dt.date(2026, 6, 9), count=1, total=1, low=1, high=1)
    wrong = rollups.check()
    assert [(w.day, w.stored, w.expected) for w in wrong] == [
        (dt.date(2026, 6, 2), (1, 400.0, 4.0, 4.0), (1, 4.0, 4.0, 4.0)),
        (dt.date(2026, 6, 3), None, (1, 5.0, 5.0, 5.0)),
        (dt.date(2026, 6, 9), (1, 1.0, 1.0, 1.0), None),
    ]
    runner = CliRunner()
    checked = runner.invoke(app, ["measure", "rollups"])
    assert checked.exit_code == 1 and "3 day row(s) differ" in checked.output
    rebuilt = runner.invoke(app, ["measure", "rollups", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "1 measure(s), 3 day row(s), 3 current observation(s)" in rebuilt.output
    assert rollups.check() == []
    again = runner.invoke(app, ["measure", "rollups"])
    assert again.exit_code == 0 and "match the observations" in again.output
    assert RollupState.objects.get().time_zone == settings.TIME_ZONE


def test_the_health_check_warns_when_time_zone_changed(product, settings) -> None:
    settings.TIME_ZONE = "UTC"
    rollups.rebuild()
    assert [r.status for r in rollups.rollups_health()] == ["ok"]
    settings.TIME_ZONE = "Europe/Paris"
    (result,) = rollups.rollups_health()
    assert result.status == "warning" and "built for days in UTC" in result.detail
    rollups.rebuild()
    assert [r.status for r in rollups.rollups_health()] == ["ok"]


def test_the_dashboard_reads_the_rollups_not_the_observations(owner, product) -> None:
    m = _measure(product, "NPS")
    ms.add_observations(
        owner.membership, owner.user, [ms.ObservationIn(m.pk, 10, "2026-06-20T10:00:00Z")], source="api"
    )
    DailyRollup.objects.filter(measure=m).update(total=70, count=2)  # what only the roll-ups say
    board = product_dashboard(owner.membership, product.pk, now=NOW)
    assert [v for v in board.columns[0].measures[0].buckets if v is not None] == [35]
    raw = product_dashboard(owner.membership, product.pk, now=NOW, from_rollups=False)
    assert [v for v in raw.columns[0].measures[0].buckets if v is not None] == [10]


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_rollup_query_uses_its_covering_index(owner, product) -> None:
    from truenorth.measures.dashboard import rollup_sql

    m = _measure(product, "NPS")
    sql, params = rollup_sql([m.pk], period_of(NOW - dt.timedelta(days=90), NOW))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "measures_rollup_dashboard" in plan or "unique_rollup_day" in plan


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_two_writers_of_one_day_both_count(transactional_db, org_a) -> None:
    """The second writer's recompute waits for the first to commit (the measure's row lock), so it
    sees both values; without the lock it would overwrite the day with its own value alone."""
    import threading

    from django.db import connections, transaction

    m = Measure.objects.create(organisation=org_a, name="NPS", kva=KVA.CURRENT_VALUE)
    day = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)
    first_written, second_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                rollups.write_observations([Observation(measure=m, value=1, observed_at=day)])
                first_written.set()
                second_started.wait(10)
                threading.Event().wait(0.5)  # the second writer is now blocked on the lock
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_written.wait(10)
            second_started.set()
            with transaction.atomic():
                rollups.write_observations(
                    [Observation(measure=m, value=2, observed_at=day + dt.timedelta(hours=1))]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert _stored() == {(m.pk, dt.date(2026, 6, 1)): (2, 3.0, 1.0, 2.0)}
