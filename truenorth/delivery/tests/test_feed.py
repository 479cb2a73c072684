"""Delivery metrics feed the product's Value measures weekly (services/feed.py, `delivery feed`)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from truenorth.cli import app, main
from truenorth.delivery.models import DeliveryItem, Deployment, ImportRun, StateTransition
from truenorth.delivery.services import feed, metrics
from truenorth.delivery.tests.metrics_data import build, d
from truenorth.history.models import HistoryEntry
from truenorth.measures.models import Measure, Observation, ObservationBatch

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 17, 8, tzinfo=dt.UTC)  # a Tuesday: the last complete week is 9-15 March
WEEK1 = dt.date(2026, 3, 2)
WEEK2 = dt.date(2026, 3, 9)


def second_week(delivery) -> None:
    source = delivery.source
    org = source.organisation
    bug = DeliveryItem.objects.create(
        organisation=org, source=source, external_id="B-1", created_at=d(7), item_type="Bug"
    )
    StateTransition.objects.create(item=bug, at=d(7), to_state="In Progress")
    StateTransition.objects.create(item=bug, at=d(9), to_state="Done")
    Deployment.objects.create(source=source, external_id="D4", environment="prod", deployed_at=d(8))
    Deployment.objects.create(source=source, external_id="D5", environment="prod", deployed_at=d(10))


def observed(source) -> dict[tuple[str, dt.date], Observation]:
    measures = {
        m.pk: m.catalogue_key.rsplit(":", 1)[1]
        for m in Measure.objects.filter(catalogue_key__startswith=f"delivery:{source.pk}:")
    }
    return {
        (measures[o.measure_id], o.observed_at.date() - dt.timedelta(days=6)): o
        for o in Observation.objects.filter(measure_id__in=measures)
    }


def test_feed_creates_measures_and_stores_the_weekly_metrics(owner, org_b) -> None:
    delivery = build(owner.membership.organisation)
    second_week(delivery)
    other = build(org_b, name="Other")
    run = ImportRun.objects.create(
        organisation=owner.membership.organisation,
        source=delivery.source,
        importer="jira-csv",
        status="succeeded",
        window_start=d(0),
        window_end=d(5),  # it brought the data of the first week only
        created={"items": 4},
    )
    ImportRun.objects.create(  # read the same week again, found nothing new: not named
        organisation=owner.membership.organisation,
        source=delivery.source,
        importer="jira-csv",
        status="succeeded",
        window_start=d(0),
        window_end=d(5),
        unchanged=4,
    )
    result = feed.feed(delivery.source, now=NOW, actor=owner.user)
    measures = {
        m.catalogue_key.rsplit(":", 1)[1]: m for m in Measure.objects.filter(product=delivery.product)
    }
    assert len(measures) == 9 and result.measures_created == 9
    assert (measures["deployment_frequency"].kva, measures["deployment_frequency"].direction) == (
        "time_to_market",
        "higher",
    )
    assert (measures["lead_time"].unit, measures["lead_time"].direction) == ("hours", "lower")
    assert measures["cycle_time_p85"].unit == "days"
    assert (measures["change_failure_rate"].kva, measures["change_failure_rate"].unit) == (
        "ability_to_innovate",
        "%",
    )
    assert all(m.cadence_days == 7 for m in measures.values())
    assert HistoryEntry.objects.filter(object_id__in=[m.pk for m in measures.values()]).count() >= 7
    assert len(result.weeks) == 12 and result.weeks[-1] == WEEK2
    got = observed(delivery.source)
    row = metrics.sources_in(owner.membership, metrics.Scope(source_id=delivery.source.pk))
    for week in (WEEK1, WEEK2):
        start, end = feed.week_bounds(week)
        records = metrics.combined(metrics.dora_inputs(row, end), row)
        core = metrics.dora_of(records, start=start, end=end, year=metrics.check_year(None))
        flows = metrics.flow_of(row, metrics.histories(row, end), start=start, end=end)
        assert got[("deployment_frequency", week)].value == pytest.approx(core.deployment_frequency_per_week)
        assert got[("cycle_time_p85", week)].value == pytest.approx(flows.cycle_time_days[85])
        assert got[("deployment_frequency", week)].observed_at == end
    assert got[("change_failure_rate", WEEK1)].value == pytest.approx(50.0)  # D2 caused incident I1
    assert got[("incidents", WEEK1)].value == 1 and got[("incidents", WEEK2)].value == 0
    assert got[("time_to_restore", WEEK1)].value == pytest.approx(2.4)
    assert ("time_to_restore", WEEK2) not in got  # no value that week: skipped
    assert got[("defects_done", WEEK2)].value == 1 and got[("defects_done", WEEK1)].value == 0
    assert got[("defects_created", WEEK2)].value == 1 and got[("defects_created", WEEK1)].value == 0
    assert ("active_branches", WEEK2) not in got  # a source that never reported branches
    assert got[("deployment_frequency", WEEK2)].value == 2
    note = got[("lead_time", WEEK1)].note
    assert note == f"delivery source 'Payments Jira', 2026-03-02..2026-03-08, import #{run.pk}"
    assert got[("incidents", WEEK2)].note == "delivery source 'Payments Jira', 2026-03-09..2026-03-15"
    batch = got[("lead_time", WEEK1)].batch
    assert batch is not None
    assert batch.idempotency_key == f"delivery:{delivery.source.pk}:2026-03-02"
    # Running again stores nothing; another organisation is untouched.
    count = Observation.objects.count()
    again = feed.feed(delivery.source, now=NOW, actor=owner.user)
    assert again.stored == 0 and again.measures_created == 0 and Observation.objects.count() == count
    assert not Measure.objects.filter(product=other.product).exists()
    # A new complete week adds one observation per metric that has a value.
    later = feed.feed(delivery.source, now=NOW + dt.timedelta(days=7))
    assert later.weeks == [dt.date(2026, 3, 16)]
    # frequency, incidents, defects done and opened (0s)
    assert later.stored == 4 == Observation.objects.count() - count
    assert ObservationBatch.objects.filter(organisation=org_b).count() == 0


def test_feed_all_and_sources_without_a_product(owner) -> None:
    delivery = build(owner.membership.organisation)
    delivery.source.product = None
    delivery.source.save()
    assert feed.feed(delivery.source, now=NOW).stored == 0
    assert feed.feed_all(now=NOW) == []
    assert not Measure.objects.exists()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_dry_run_then_feed(owner) -> None:
    delivery = build(owner.membership.organisation)
    who = ["--org", "alpha", "--as", owner.user.email]
    code, out = run("delivery", "feed", "--source", "payments jira", "--dry-run", "--json", *who)
    assert code == 0, out
    data = json.loads(out)
    assert data["dry_run"] and data["sources"][0]["observations"]
    assert not Observation.objects.exists() and not Measure.objects.exists()
    code, out = run("delivery", "feed", "--dry-run", *who)
    assert code == 0 and "would store" in out
    code, out = run("delivery", "feed", *who)
    assert code == 0 and "stored" in out, out
    assert Observation.objects.filter(measure__product=delivery.product).exists()
    assert main(["delivery", "feed", "--source", "nowhere", *who]) == 2


def test_daily_task_feeds_every_organisations_sources(owner, org_b, monkeypatch) -> None:
    from django.utils import timezone

    from truenorth.delivery import tasks_feed

    build(owner.membership.organisation)
    other = build(org_b, name="Other")  # no creator: written as org_b's senior member
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    # 12 weeks x 4 counts (deployments, incidents, defects done and opened: 0 when none) + 4 more in the
    # week with data, for each of the two sources
    assert tasks_feed.feed_delivery_measures.call_local() == {"sources": 2, "stored": 104}
    assert Measure.objects.filter(organisation=org_b, product=other.product).count() == 9
    assert tasks_feed.feed_delivery_measures.call_local()["stored"] == 0
