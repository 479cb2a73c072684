"""The value dashboard query: figures checked by hand on a small set, and a fixed query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from truenorth.measures.dashboard import BUCKETS, product_dashboard
from truenorth.measures.models import KVA, Measure, Observation
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Product, TargetObservation

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
SINCE = NOW - dt.timedelta(days=30)  # the 30 days 1-30 June: 30 buckets of one day each


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, 0, tzinfo=dt.UTC)


@pytest.fixture
def product(owner) -> Product:
    return strategy_services.create_product(owner.membership, owner.user, name="Trailhead")


def _measure(product: Product, name: str, kva: str, **kw) -> Measure:
    return Measure.objects.create(
        organisation=product.organisation, product=product, name=name, kva=kva, **kw
    )


def _observe(measure: Measure, *rows: tuple[dt.datetime, float]) -> list[Observation]:
    return [
        Observation.objects.create(measure=measure, observed_at=when, value=value) for when, value in rows
    ]


@pytest.fixture
def board_data(product):
    nps = _measure(product, "NPS", KVA.CURRENT_VALUE, direction="higher", target=100, cadence_days=7)
    _observe(nps, (at(5, 1), 10), (at(6, 1), 20), (at(6, 1, 18), 30))
    (wrong,) = _observe(nps, (at(6, 29), 40))
    # A correction: the 40 is superseded by a 50 at the same time (both rows kept).
    Observation.objects.filter(pk=wrong.pk).update(superseded=True)
    Observation.objects.create(measure=nps, observed_at=at(6, 29), value=50, supersedes=wrong)
    lead = _measure(product, "Lead time", KVA.TIME_TO_MARKET, direction="lower", target=2, cadence_days=7)
    _observe(lead, (at(6, 10), 5))
    old = _measure(product, "Retired", KVA.ABILITY_TO_INNOVATE, archived_at=at(1, 1))
    _observe(old, (at(6, 10), 1))
    return nps, lead


def test_figures_per_measure_match_a_hand_calculation(owner, product, board_data) -> None:
    nps, lead = board_data
    board = product_dashboard(owner.membership, product.pk, since=SINCE, until=NOW, now=NOW)
    assert [c.key for c in board.columns] == list(KVA.values)
    (a,) = board.columns[0].measures
    assert a.measure == nps
    assert a.latest_value == 50  # the correction, not the superseded 40
    assert a.latest_at == at(6, 29)
    assert a.start_value == 10  # in force when the period began
    assert a.change == 40
    assert a.distance == 50
    assert a.stale is False
    assert a.improving is True
    assert len(a.buckets) == BUCKETS
    assert a.buckets[0] == 25  # mean of 20 and 30 on 1 June
    assert a.buckets[28] == 50
    assert sum(v is not None for v in a.buckets) == 2
    # Least squares through two bucket means, 28 days apart: (50 - 25) / 28 per day.
    assert a.slope_per_day == pytest.approx(25 / 28)
    assert a.sparkline.count(",") == 2

    (b,) = board.columns[2].measures
    assert b.measure == lead
    assert (b.latest_value, b.start_value, b.change) == (5, None, None)
    assert b.distance == 3  # lower is better: 5 down to 2
    assert b.stale is True  # 20 days old against a 7-day cadence
    assert b.slope_per_day is None
    assert b.buckets[9] == 5  # 10 June
    assert board.measure_count == 2
    assert board.stale_count == 1


def test_archived_measures_are_left_out_and_empty_areas_are_flagged(owner, product, board_data) -> None:
    board = product_dashboard(owner.membership, product.pk, since=SINCE, until=NOW, now=NOW)
    assert board.columns[3].measures == []
    assert [key for key, _ in board.missing_kvas] == [KVA.UNREALIZED_VALUE, KVA.ABILITY_TO_INNOVATE]


def test_an_earlier_period_shows_the_values_of_that_time(owner, product, board_data) -> None:
    board = product_dashboard(owner.membership, product.pk, since=at(4, 1), until=at(6, 5), now=NOW)
    (a,) = board.columns[0].measures
    assert a.latest_value == 30
    assert a.latest_at == at(6, 1, 18)
    assert a.start_value is None  # nothing observed before 1 April
    assert a.change is None


def test_goal_progress_rolls_up_the_products_top_goals(owner, product) -> None:
    goal = strategy_services.create_goal(
        owner.membership,
        owner.user,
        title="Hikers trust our routes",
        product_id=product.pk,
        targets=[{"name": "Accuracy", "baseline": 0, "target": 100}],
    )
    TargetObservation.objects.create(target_measure=goal.targets.get(), value=40)
    board = product_dashboard(owner.membership, product.pk, now=NOW)
    assert board.goal_progress == pytest.approx(0.4)
    assert [(g.title, g.progress) for g in board.goals] == [("Hikers trust our routes", pytest.approx(0.4))]


def test_another_organisations_product_is_not_found(outsider, product) -> None:
    from truenorth.core.errors import NotFound

    with pytest.raises(NotFound):
        product_dashboard(outsider.membership, product.pk)


def _grow(product: Product, measures: int, per_measure: int) -> None:
    created = Measure.objects.bulk_create(
        [
            Measure(
                organisation=product.organisation,
                product=product,
                name=f"M{measures}-{i}",
                kva=KVA.values[i % 4],
            )
            for i in range(measures)
        ]
    )
    Observation.objects.bulk_create(
        [
            Observation(measure=m, observed_at=NOW - dt.timedelta(hours=7 * k), value=float(k % 13))
            for m in created
            for k in range(per_measure)
        ]
    )


def _count(owner, product) -> int:
    with CaptureQueriesContext(connection) as captured:
        product_dashboard(owner.membership, product.pk, now=NOW)
    return len(captured.captured_queries)


def test_the_query_count_is_the_same_for_3_and_30_measures(owner, product) -> None:
    _grow(product, 3, 50)
    few = _count(owner, product)
    _grow(product, 27, 200)
    assert Measure.objects.filter(product=product).count() == 30
    many = _count(owner, product)
    assert few == many
    assert many <= 8
