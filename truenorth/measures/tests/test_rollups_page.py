"""The value dashboard page built from the daily roll-ups is the page built from the observations
themselves, byte for byte: for 90 days, a year and custom ranges whose buckets do not start on a week
(or month) boundary, in zones with DST changes (one at local midnight), with values just around local
midnight, corrections (some corrected twice), empty buckets, an empty period and a measure never
observed. And the roll-up query sorts nothing: one range of the covering index per (measure, bucket)."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from truenorth.measures import services as ms
from truenorth.measures.dashboard import period_of, product_dashboard, rollup_sql
from truenorth.measures.models import KVA, DailyRollup, Measure, Observation
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Product

# The CSRF token is masked afresh for every response.
CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": )"[^"]*"')


@pytest.fixture
def product(owner) -> Product:
    return strategy_services.create_product(owner.membership, owner.user, name="Trailhead")


def _measure(product: Product, name: str, kva: str, **kw: object) -> Measure:
    return Measure.objects.create(
        organisation=product.organisation, product=product, name=name, kva=kva, target=60, **kw
    )


def _offset_changes(tz: ZoneInfo, first: dt.date, last: dt.date) -> list[dt.date]:
    """The local days on which the zone's UTC offset changes (DST), between first and last."""
    out = []
    day = first
    while day < last:
        a = dt.datetime.combine(day, dt.time(0, 0), tzinfo=tz).astimezone(dt.UTC)
        b = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz).astimezone(dt.UTC)
        if b - a != dt.timedelta(days=1):
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def _clock(rng: random.Random) -> dt.time:
    """Often just around local midnight, where a UTC day and a local day disagree."""
    return rng.choice(
        [
            dt.time(0, 0),
            dt.time(0, 0, 1),
            dt.time(0, 30),
            dt.time(23, 59, 59),
            dt.time(23, 59, 59, 999999),
            dt.time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)),
        ]
    )


def _world(owner, product: Product, tz: ZoneInfo, seed: int) -> list[Measure]:
    """Five measures over the last 420 local days: dense, sparse with long gaps, on the DST days only,
    with many corrections, and one never observed."""
    rng = random.Random(seed)
    today = timezone.now().astimezone(tz).date()
    first = today - dt.timedelta(days=420)
    dense = _measure(product, "Dense", KVA.CURRENT_VALUE)
    sparse = _measure(product, "Sparse", KVA.UNREALIZED_VALUE, direction="lower")
    dst = _measure(product, "Around DST", KVA.TIME_TO_MARKET)
    corrected = _measure(product, "Corrected", KVA.ABILITY_TO_INNOVATE)
    never = _measure(product, "Never observed", KVA.CURRENT_VALUE)

    def when(day: dt.date) -> str:
        return dt.datetime.combine(day, _clock(rng), tzinfo=tz).astimezone(dt.UTC).isoformat()

    rows: list[ms.ObservationIn] = []
    for k in range(0, 421, 2):  # every other day, a few values a day
        day = first + dt.timedelta(days=k)
        for _ in range(rng.randint(1, 3)):
            rows.append(ms.ObservationIn(dense.pk, round(rng.uniform(-50, 150), 3), when(day)))
    for k in [*range(0, 40, 5), *range(150, 170, 3), *range(400, 421, 7)]:  # long gaps: empty buckets
        rows.append(
            ms.ObservationIn(sparse.pk, round(rng.uniform(0, 10), 2), when(first + dt.timedelta(days=k)))
        )
    for day in _offset_changes(tz, first, today):
        for near in (day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)):
            for clock in (dt.time(0, 0), dt.time(3, 0), dt.time(23, 59, 59, 999999)):
                at = dt.datetime.combine(near, clock, tzinfo=tz).astimezone(dt.UTC)
                rows.append(ms.ObservationIn(dst.pk, round(rng.uniform(1, 9), 3), at.isoformat()))
    for k in range(0, 421, 3):
        rows.append(
            ms.ObservationIn(corrected.pk, round(rng.uniform(10, 90), 3), when(first + dt.timedelta(days=k)))
        )
    now = timezone.now()
    # One current value per measure and time, none in the future.
    unique = {
        (r.measure_id, r.observed_at): r for r in rows if dt.datetime.fromisoformat(r.observed_at) <= now
    }
    ms.add_observations(owner.membership, owner.user, list(unique.values()), source="api")
    current = list(Observation.objects.filter(measure=corrected, superseded=False).order_by("id"))
    for old in rng.sample(current, 40):
        new = ms.correct_observation(owner.membership, owner.user, old.pk, round(rng.uniform(-90, 10), 3))
        if rng.random() < 0.3:  # corrected twice
            ms.correct_observation(owner.membership, owner.user, new.pk, round(rng.uniform(100, 200), 3))
    return [dense, sparse, dst, corrected, never]


@contextmanager
def _source(from_rollups: bool) -> Iterator[None]:
    board = partial(product_dashboard, from_rollups=from_rollups)
    with mock.patch("truenorth.measures.views.measures.product_dashboard", board):
        yield


def _page(client: Client, url: str, *, from_rollups: bool) -> str:
    with _source(from_rollups):
        response = client.get(url)
    assert response.status_code == 200
    return CSRF.sub(r"\1", response.content.decode())


def _queries(today: dt.date) -> list[str]:
    def custom(since: dt.date, until: dt.date | None) -> str:
        return f"?period=custom&since={since}" + (f"&until={until}" if until else "")

    # A Wednesday-to-Saturday range, 17 and 40 days from mid-week, a year from the 17th of a month, a
    # single day, and a period before any observation (empty).
    wednesday = today - dt.timedelta(days=(today.weekday() - 2) % 7 + 63)
    return [
        "",
        "?period=365",
        "?period=30",
        custom(wednesday, wednesday + dt.timedelta(days=17)),
        custom(today - dt.timedelta(days=40), None),
        custom(
            dt.date(today.year - 1, today.month, 17) - dt.timedelta(days=40), today - dt.timedelta(days=9)
        ),
        custom(today - dt.timedelta(days=200), today - dt.timedelta(days=200)),
        custom(today - dt.timedelta(days=900), today - dt.timedelta(days=700)),
    ]


@pytest.mark.parametrize(
    ("zone_name", "seed"),
    [("Europe/Paris", 11), ("America/Santiago", 12), ("Asia/Kolkata", 13)],
)
def test_the_page_from_rollups_is_the_page_from_observations(
    owner, product, settings, zone_name, seed
) -> None:
    settings.TIME_ZONE = zone_name
    tz = ZoneInfo(zone_name)
    measures = _world(owner, product, tz, seed)
    assert Observation.objects.filter(superseded=True).count() >= 40
    today = timezone.now().astimezone(tz).date()
    url = reverse(
        "measures:dashboard", kwargs={"org_slug": product.organisation.slug, "product_id": product.pk}
    )
    drawn = 0
    for query in _queries(today):
        with mock.patch("django.utils.timezone.now", return_value=timezone.now()):  # the page shows it
            fast = _page(owner.client, url + query, from_rollups=True)
            raw = _page(owner.client, url + query, from_rollups=False)
        assert fast == raw, query
        drawn += fast.count("<polyline")
        assert all(m.name in fast for m in measures), query
    assert drawn >= 12  # the pages drew sparklines: the buckets were compared, not just empty cards

    # The page does follow the roll-ups: a wrong roll-up row shows (so the comparison above compared).
    dense = measures[0]
    row = DailyRollup.objects.filter(measure=dense, day__gte=today - dt.timedelta(days=30)).order_by("day")[0]
    DailyRollup.objects.filter(pk=row.pk).update(total=row.total + 1000 * row.count)
    with mock.patch("django.utils.timezone.now", return_value=timezone.now()):
        assert _page(owner.client, url, from_rollups=True) != _page(owner.client, url, from_rollups=False)


def test_a_year_of_buckets_not_aligned_with_weeks_matches_the_observations(owner, product, settings) -> None:
    """The figures behind the page, per bucket: a year cut into buckets of 12 and 13 days that start on
    every day of the week, and the custom ranges above."""
    settings.TIME_ZONE = "Europe/Paris"
    tz = ZoneInfo("Europe/Paris")
    _world(owner, product, tz, 21)
    now = timezone.now()
    period = period_of(now - dt.timedelta(days=365), now)
    assert {a.weekday() for a in period.edges[:-1]} == set(range(7))
    fast = product_dashboard(owner.membership, product.pk, since=now - dt.timedelta(days=365), now=now)
    raw = product_dashboard(
        owner.membership, product.pk, since=now - dt.timedelta(days=365), now=now, from_rollups=False
    )
    rows = [
        (f, r)
        for cf, cr in zip(fast.columns, raw.columns, strict=True)
        for f, r in zip(cf.measures, cr.measures, strict=True)
    ]
    assert len(rows) == 5
    for f, r in rows:
        assert f.measure.pk == r.measure.pk
        assert len(f.buckets) == len(r.buckets) == 30
        for a, b in zip(f.buckets, r.buckets, strict=True):
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert a == pytest.approx(b, rel=1e-12, abs=1e-12)
        assert f.sparkline == r.sparkline
    assert any(None in f.buckets for f, _ in rows if f.measure.name == "Sparse")  # empty buckets
    assert all(v is None for f, _ in rows if f.measure.name == "Never observed" for v in f.buckets)


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_the_rollup_query_sorts_nothing_on_sqlite(owner, product) -> None:
    """A join grouped by (measure, bucket) sorted every daily row in a temporary B-tree (most of a
    year's page time); the scalar subqueries read their index ranges in order and sort nothing."""
    m = _measure(product, "NPS", KVA.CURRENT_VALUE)
    now = timezone.now()
    sql, params = rollup_sql([m.pk, m.pk + 1], period_of(now - dt.timedelta(days=365), now))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    assert "measures_rollup_dashboard" in plan
    assert "TEMP B-TREE" not in plan, plan
