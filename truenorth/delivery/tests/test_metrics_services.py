"""Delivery metrics services: the same figures as the pure cores on the same data, in a fixed number of
queries, scoped to the organisation; inline below the row threshold, a background job above it."""

from __future__ import annotations

import datetime as dt

import pytest

from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.delivery import dora, forecast
from truenorth.delivery.models import DeliveryItem, DeliverySource, StateTransition
from truenorth.delivery.services import metrics
from truenorth.delivery.tests.metrics_data import END, START, build, d, expected_dora, expected_flow
from truenorth.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_flow_for_matches_the_pure_core(owner, django_assert_max_num_queries) -> None:
    delivery = build(owner.membership.organisation)
    with django_assert_max_num_queries(4):  # product check, sources, transitions, items
        got = metrics.flow_for(owner.membership, product_id=delivery.product.pk, start=START, end=END)
    want = expected_flow()
    assert got == want
    # by hand: cycle times 4 and 2 days, one item in progress, A-4 done without being started
    assert got.cycle_time_days[50] == pytest.approx(3.0)
    assert got.wip == 1 and got.never_started == 1
    assert got.throughput_per_week[0] == (dt.date(2026, 3, 2), 3)
    assert got.flow_efficiency == pytest.approx(5 / 6)  # A-1 3 active days of 4, A-2 2 of 2


def test_flow_query_count_does_not_grow_with_items(owner, django_assert_max_num_queries) -> None:
    delivery = build(owner.membership.organisation)
    for n in range(30):
        item = DeliveryItem.objects.create(
            organisation=owner.membership.organisation,
            source=delivery.source,
            external_id=f"B-{n}",
            created_at=d(0),
        )
        StateTransition.objects.create(item=item, at=d(1), to_state="In Progress")
        StateTransition.objects.create(item=item, at=d(2), to_state="Done")
    with django_assert_max_num_queries(3):
        got = metrics.flow_for(owner.membership, start=START, end=END)
    assert len(got.completed) == 32


def test_two_mappings_are_each_applied_to_their_own_source(owner) -> None:
    org = owner.membership.organisation
    build(org)
    other = DeliverySource.objects.create(
        organisation=org,
        name="Ops board",
        kind="events",
        state_mapping={"started": ["Doing"], "done": ["Shipped"]},
    )
    item = DeliveryItem.objects.create(organisation=org, source=other, external_id="O-1", created_at=d(0))
    StateTransition.objects.create(item=item, at=d(1), to_state="Doing")
    StateTransition.objects.create(item=item, at=d(7), to_state="Shipped")
    got = metrics.flow_for(owner.membership, start=START, end=END)
    assert sorted(c for _, _, c in got.completed) == [2.0, 4.0, 6.0]
    assert got.cycle_time_days[50] == pytest.approx(4.0)
    only = metrics.flow_for(owner.membership, source_id=other.pk, start=START, end=END)
    assert [c for _, _, c in only.completed] == [6.0]
    # flow efficiency over both: the Ops board has no waiting states, so only Payments' days count
    assert got.flow_efficiency == pytest.approx(5 / 6)


def test_dora_for_matches_the_pure_core(owner, django_assert_max_num_queries) -> None:
    delivery = build(owner.membership.organisation)
    year = dora.available_years()[-1]
    with django_assert_max_num_queries(6):  # product check, sources, deployments, commits, pulls, incidents
        got = metrics.dora_for(
            owner.membership, product_id=delivery.product.pk, start=START, end=END, year=year
        )
    want = expected_dora(delivery, year)
    assert (got.deployments, got.failed_deployments) == (want.deployments, want.failed_deployments) == (2, 1)
    assert got.change_failure_rate == want.change_failure_rate == 0.5
    assert got.lead_time_hours == want.lead_time_hours
    assert got.time_to_restore_hours == pytest.approx(want.time_to_restore_hours)
    assert got.bands == want.bands


def test_bad_year_and_other_organisations(owner, outsider) -> None:
    delivery = build(owner.membership.organisation)
    with pytest.raises(ValidationFailed) as exc:
        metrics.dora_for(owner.membership, start=START, end=END, year=1999)
    assert exc.value.field == "year"
    with pytest.raises(NotFound):
        metrics.flow_for(outsider.membership, product_id=delivery.product.pk, start=START, end=END)
    with pytest.raises(NotFound):
        metrics.flow_for(outsider.membership, source_id=delivery.source.pk, start=START, end=END)
    assert metrics.flow_for(outsider.membership, start=START, end=END).completed == []


def test_forecasts_use_the_daily_throughput(owner, monkeypatch) -> None:
    build(owner.membership.organisation)
    monkeypatch.setattr(metrics, "_history", lambda membership, scope, days: [1] * 60)
    today = metrics._today()
    by = metrics.forecast_items_by(owner.membership, by=today + dt.timedelta(days=10))
    assert by.forecast.percentiles == {50: 10.0, 85: 10.0, 95: 10.0}  # constant throughput: degenerate
    assert by.backtest is not None and by.backtest.hit_rate_85 == 1.0
    out = metrics.forecast_out(by)
    assert out["backtest"]["held_85"] == out["backtest"]["forecasts"] > 0
    when = metrics.forecast_when(owner.membership, items=5)
    assert when.forecast.percentiles == forecast.when([1] * 60, 5, trials=10_000, seed=12).percentiles
    assert when.forecast.percentiles[85] == 5.0


def test_forecast_input_is_checked(owner) -> None:
    for items, by, field in (
        (None, None, "items"),
        (5, dt.date(2030, 1, 1), "items"),
        (0, None, "items"),
        (None, dt.date(2020, 1, 1), "by"),
    ):
        with pytest.raises(ValidationFailed) as exc:
            metrics.check_forecast(items, by)
        assert exc.value.field == field
    with pytest.raises(ValidationFailed) as exc:
        metrics.forecast_when(owner.membership, items=3)  # nothing was ever completed
    assert exc.value.field == "items"


def test_above_the_threshold_a_job_computes_the_same_report(owner, settings) -> None:
    delivery = build(owner.membership.organisation)
    request = metrics.Request("report", metrics.Scope(product_id=delivery.product.pk), START, END)
    inline = metrics.compute_or_submit(owner.membership, owner.user, request)
    assert isinstance(inline, dict)
    settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS = 5  # 13 transitions + 3 deployments
    job = metrics.compute_or_submit(owner.membership, owner.user, request, link="/somewhere/")
    assert isinstance(job, Job)
    assert job.status == "succeeded", job.error
    assert job.result["flow"] == inline["flow"] and job.result["dora"] == inline["dora"]
    assert job.result["link"] == f"/somewhere/?job={job.pk}"


def test_report_by_product(owner) -> None:
    org = owner.membership.organisation
    build(org)
    build(org, name="Search")
    out = metrics.report(owner.membership, metrics.Scope(), start=START, end=END, by_product=True)
    assert [p["name"] for p in out["products"]] == ["Payments", "Search"]
    assert out["flow"]["completed_count"] == 6
    assert [p["flow"]["completed_count"] for p in out["products"]] == [3, 3]
    assert out["products"][0]["dora"]["metrics"]["change_failure_rate"]["value"] == 0.5


def test_the_same_request_while_its_job_is_active_answers_that_job(owner, settings) -> None:
    delivery = build(owner.membership.organisation)
    settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS = 5
    request = metrics.Request("report", metrics.Scope(product_id=delivery.product.pk), START, END)
    done = metrics.compute_or_submit(owner.membership, owner.user, request)
    assert isinstance(done, Job) and done.status == "succeeded"
    Job.objects.filter(pk=done.pk).update(status="queued")  # as if the worker had not run it yet
    again = metrics.compute_or_submit(owner.membership, owner.user, request)
    assert isinstance(again, Job) and again.pk == done.pk
    other = metrics.Request("report", metrics.Scope(product_id=delivery.product.pk), START, END, year=2021)
    assert metrics.compute_or_submit(owner.membership, owner.user, other).pk != done.pk  # type: ignore[union-attr]
    assert Job.objects.filter(kind=metrics.METRICS_KIND).count() == 2
