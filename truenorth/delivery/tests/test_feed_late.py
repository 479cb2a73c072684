"""Feeding right after an import: late data corrects the weeks already fed (a new observation that
supersedes the old one, both kept), re-importing the same data stores nothing, provenance names the
imports and the week; active branches as a fed metric (services/feed.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from truenorth.cli import app
from truenorth.delivery.models import Branch, Commit, Deployment, Incident
from truenorth.delivery.services import feed, sources
from truenorth.delivery.tests.metrics_data import build, d
from truenorth.delivery.tests.test_feed import NOW, WEEK1, WEEK2, second_week
from truenorth.history.models import HistoryEntry
from truenorth.measures.models import Measure, Observation, ObservationBatch

pytestmark = pytest.mark.django_db

UTC = dt.UTC
E1 = feed.week_bounds(WEEK1)[1]  # Sunday 8 March 2026, 23:59:59.999999
E2 = feed.week_bounds(WEEK2)[1]  # Sunday 15 March 2026

INCIDENT_NAMING_A_LATER_DEPLOYMENT = (
    b"kind,id,at,service,resolved_at,deployment\n"
    b"incident,INC-20,2026-03-12T15:00:00Z,api,2026-03-12T17:00:00Z,D6\n"
)
THE_DEPLOYMENT = (
    b"kind,id,at,service,environment,succeeded\ndeployment,D6,2026-03-11T10:00:00Z,api,prod,true\n"
)


@pytest.fixture
def fed(owner, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    delivery = build(owner.membership.organisation)
    second_week(delivery)
    delivery.source.created_by = owner.user
    delivery.source.save()
    first = feed.feed(delivery.source, now=NOW, actor=owner.user)
    assert first.stored > 0 and first.corrected == 0
    return delivery


def current(source, metric: str, end: dt.datetime) -> Observation:
    return Observation.objects.get(
        measure__catalogue_key=f"delivery:{source.pk}:{metric}", observed_at=end, superseded=False
    )


def values(source, end: dt.datetime) -> dict[str, float]:
    return {
        o.measure.catalogue_key.rsplit(":", 1)[1]: o.value
        for o in Observation.objects.filter(
            measure__catalogue_key__startswith=f"delivery:{source.pk}:", observed_at=end, superseded=False
        ).select_related("measure")
    }


def import_events(owner, source, data: bytes):
    return sources.run_import(source, "events", data, actor=owner.user, file_name="late.csv")


def test_late_data_corrects_the_fed_week_and_keeps_the_old_value(owner, fed) -> None:
    source = fed.source
    week1 = values(source, E1)
    week2 = values(source, E2)
    # Hand-computed from the history: week 2 has D4 and D5 in production, no incident.
    assert week2["deployment_frequency"] == 2 and week2["incidents"] == 0
    assert week2["change_failure_rate"] == 0 and "time_to_restore" not in week2
    before = Observation.objects.count()

    # 1. An incident in week 2, caused by a deployment not imported yet.
    run = import_events(owner, source, INCIDENT_NAMING_A_LATER_DEPLOYMENT)
    result = feed.fed_by(run)
    assert result is not None and result.weeks == [WEEK2]  # only the week its records touch
    assert (result.stored, result.corrected) == (
        2,
        1,
    )  # incidents 0 → 1 (correction), time to restore 2 h (new)
    assert Incident.objects.get(external_id="INC-20").deployment is None
    incidents = current(source, "incidents", E2)
    assert incidents.value == 1 and incidents.supersedes is not None and incidents.supersedes.value == 0
    assert Observation.objects.get(pk=incidents.supersedes.pk).superseded  # kept, no longer current
    assert incidents.note == (
        f"delivery source 'Payments Jira', 2026-03-09..2026-03-15, import #{run.pk}; "
        f"recomputed after import #{run.pk}"
    )
    restore = current(source, "time_to_restore", E2)
    assert restore.value == pytest.approx(2.0) and restore.supersedes is None
    assert values(source, E1) == week1  # the first week is untouched
    assert Observation.objects.count() == before + 2

    # 2. The deployment arrives: the incident is linked, and week 2's frequency and failure rate change.
    second = import_events(owner, source, THE_DEPLOYMENT)
    assert second.created == {"deployments": 1, "incident_links": 1}
    assert Incident.objects.get(external_id="INC-20").deployment == Deployment.objects.get(external_id="D6")
    result = feed.fed_by(second)
    assert result is not None and (result.stored, result.corrected) == (2, 2)
    now2 = values(source, E2)
    assert now2["deployment_frequency"] == 3  # D4, D5, D6
    assert now2["change_failure_rate"] == pytest.approx(100 / 3, abs=1e-5)  # D6 caused INC-20
    frequency = current(source, "deployment_frequency", E2)
    assert frequency.note.endswith(f"imports #{run.pk}, #{second.pk}; recomputed after import #{second.pk}")
    history = Observation.objects.filter(
        measure__catalogue_key=f"delivery:{source.pk}:deployment_frequency", observed_at=E2
    ).order_by("id")
    assert [(o.value, o.superseded) for o in history] == [(2, True), (3, False)]
    assert frequency.batch is not None
    assert frequency.batch.idempotency_key.startswith(f"delivery:{source.pk}:2026-03-09:")
    assert ObservationBatch.objects.filter(idempotency_key=f"delivery:{source.pk}:2026-03-09").count() == 1
    changes = HistoryEntry.objects.filter(object_id=frequency.measure_id).values_list("changes", flat=True)
    assert any("(correction)" in str(c["observation"]["new"]) for c in changes if "observation" in c)

    # 3. Importing the same files again stores nothing, and neither does feeding again.
    count = Observation.objects.count()
    for data in (INCIDENT_NAMING_A_LATER_DEPLOYMENT, THE_DEPLOYMENT):
        again = import_events(owner, source, data)
        assert again.created == {} and feed.fed_by(again) is None
    assert feed.feed(source, now=NOW, since=d(0)).stored == 0
    assert Observation.objects.count() == count

    # 4. A newer export says the incident was resolved later: the correction is corrected in turn.
    later = import_events(owner, source, INCIDENT_NAMING_A_LATER_DEPLOYMENT.replace(b"17:00", b"19:00"))
    assert later.created == {"incidents_updated": 1}
    assert current(source, "time_to_restore", E2).value == pytest.approx(4.0)
    restores = Observation.objects.filter(measure_id=restore.measure_id, observed_at=E2).order_by("id")
    assert [(o.value, o.superseded) for o in restores] == [(2.0, True), (4.0, False)]


def test_late_data_older_than_the_fed_weeks_does_not_backfill(owner, fed) -> None:
    source = fed.source
    oldest = min(
        Observation.objects.filter(measure__product=fed.product).values_list("observed_at", flat=True)
    )
    run = import_events(
        owner, source, b"kind,id,at,environment\ndeployment,OLD-1,2025-06-02T10:00:00Z,prod\n"
    )
    result = feed.fed_by(run)
    assert result is not None and result.stored == 0
    assert result.weeks[0] == feed.monday_of(oldest)  # recomputed from the first fed week, no earlier
    assert min(Observation.objects.values_list("observed_at", flat=True)) == oldest


def test_an_import_into_a_source_without_a_product_feeds_nothing(owner, fed) -> None:
    source = fed.source
    source.product = None
    source.save()
    run = import_events(owner, source, THE_DEPLOYMENT)
    assert run.created == {"deployments": 1} and feed.fed_by(run) is None


def test_cli_since_recomputes_and_shows_corrections(owner, fed) -> None:
    source = fed.source
    Deployment.objects.create(source=source, external_id="D9", environment="prod", deployed_at=d(6))  # week 1
    who = ["--org", "alpha", "--as", owner.user.email]
    runner = CliRunner()
    plain = runner.invoke(app, ["delivery", "feed", "--source", source.name, "--json", *who])
    assert json.loads(plain.output)["sources"][0]["stored"] == 0  # nothing new: the fed weeks stay
    dry = runner.invoke(app, ["delivery", "feed", "--since", "2026-03-02", "--dry-run", *who])
    assert dry.exit_code == 0, dry.output
    assert "2026-03-02  deployment_frequency: 3  (correction)" in dry.output
    done = runner.invoke(app, ["delivery", "feed", "--since", "2026-03-02", "--json", *who])
    data = json.loads(done.output)["sources"][0]
    assert data["corrected"] == 2 and data["stored"] == 2  # 2 → 3 deployments, failure rate 50 % → 33 %
    assert current(source, "change_failure_rate", E1).value == pytest.approx(100 / 3, abs=1e-5)
    assert current(source, "deployment_frequency", E1).note.endswith("recomputed by hand on 2026-03-17")
    bad = runner.invoke(app, ["delivery", "feed", "--since", "March", *who])
    assert bad.exit_code == 2


def test_active_branches_hand_computed(owner, monkeypatch) -> None:
    delivery = build(owner.membership.organisation)
    source = delivery.source
    at = dt.datetime

    def branch(name: str, last: dt.datetime, *, remote: bool = False, deleted: dt.datetime | None = None):
        Branch.objects.create(
            source=source, name=name, remote=remote, last_commit_at=last, deleted_at=deleted
        )

    branch("main", d(10))  # head committed in week 2; a commit in week 1 (below) was reached from it
    branch("origin/main", d(10), remote=True)  # the same branch, remote-tracking: counts once
    branch("feature-x", at(2026, 2, 10, tzinfo=UTC))  # 30 days before 8 March: yes; before 15 March: no
    branch("old-spike", d(1), deleted=at(2026, 3, 10, tzinfo=UTC))  # deleted in week 2
    branch("ancient", at(2025, 12, 1, tzinfo=UTC))
    Commit.objects.create(source=source, sha="m1", authored_at=d(3), committed_at=d(3), branch="main")
    result = feed.feed(source, now=NOW, actor=owner.user)
    assert result.stored > 0
    assert values(source, E1)["active_branches"] == 3  # main, feature-x, old-spike
    assert values(source, E2)["active_branches"] == 1  # main
    measure = Measure.objects.get(catalogue_key=f"delivery:{source.pk}:active_branches")
    assert (measure.kva, measure.unit, measure.direction) == ("ability_to_innovate", "branches", "lower")


def test_active_branches_core() -> None:
    end = dt.datetime(2026, 3, 15, 23, 59, tzinfo=UTC)
    life = feed.BranchLife
    assert feed.active_branches([], end) == 0
    assert feed.active_branches([life("a", end - dt.timedelta(days=30))], end) == 0  # the bound is open
    assert feed.active_branches([life("a", end - dt.timedelta(days=29, hours=23))], end) == 1
    assert feed.active_branches([life("a", end + dt.timedelta(days=1))], end) == 0  # only later commits
    old_head_recent_commit = life("b", end - dt.timedelta(days=60), None, (end - dt.timedelta(days=2),))
    assert feed.active_branches([old_head_recent_commit], end) == 1
    assert (
        feed.active_branches([life("c", end - dt.timedelta(days=1), end - dt.timedelta(hours=1))], end) == 0
    )
    assert (
        feed.active_branches([life("c", end - dt.timedelta(days=1), end + dt.timedelta(hours=1))], end) == 1
    )


def test_the_daily_task_feeds_an_import_that_could_not_be_fed_then(owner, fed, monkeypatch) -> None:
    from django.utils import timezone

    from truenorth.delivery import tasks_feed

    monkeypatch.setattr(timezone, "now", lambda: NOW + dt.timedelta(hours=1))  # after the first feed
    source = fed.source
    product = source.product
    source.product = None
    source.save()
    run = import_events(owner, source, THE_DEPLOYMENT)  # no product: nothing fed
    assert feed.fed_by(run) is None and current(source, "deployment_frequency", E2).value == 2
    source.product = product
    source.save()
    assert tasks_feed.feed_delivery_measures.call_local() == {"sources": 1, "stored": 1}
    corrected = current(source, "deployment_frequency", E2)
    assert corrected.value == 3 and corrected.note.endswith(f"recomputed after import #{run.pk}")
    assert tasks_feed.feed_delivery_measures.call_local()["stored"] == 0  # fed now: not again


def test_the_import_job_feeds_and_says_so(owner, fed) -> None:
    from truenorth.jobs.models import JobStatus

    job = sources.submit_import(
        owner.membership, owner.user, fed.source.pk, importer="events", data=THE_DEPLOYMENT, file_name="d.csv"
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.result["fed"], job.result["corrected"]) == (1, 1)  # week 2: 2 → 3 deployments
    assert "Fed 1 value (1 corrected) into the product's measures." in job.result["summary"]
