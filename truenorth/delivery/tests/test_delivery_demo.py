"""The delivery demo: a year of Trail App's delivery history, loaded once (a second load changes
nothing), with plausible counts and every edge case the metrics must handle."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db.models import Count
from django.utils import timezone

from truenorth.delivery.demo import SOURCE_NAME, load_delivery_demo
from truenorth.delivery.models import (
    Commit,
    DeliveryItem,
    DeliverySource,
    Deployment,
    ImportRun,
    Incident,
    PullRequest,
    Release,
    StateTransition,
)
from truenorth.delivery.services import metrics
from truenorth.history.models import HistoryEntry
from truenorth.strategy import services as strategy

pytestmark = pytest.mark.django_db

MODELS = (DeliveryItem, StateTransition, Commit, PullRequest, Deployment, Incident, Release, ImportRun)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def trail(owner):
    team = strategy.create_team(owner.membership, owner.user, "Trail Team")
    return strategy.create_product(owner.membership, owner.user, name="Trail App", team_ids=[team.pk])


def test_loading_twice_changes_nothing(owner, trail) -> None:
    org = owner.membership.organisation
    users = {owner.user.email: owner.user}
    started = time.perf_counter()
    source = load_delivery_demo(org, users, owner.user.email)
    elapsed = time.perf_counter() - started
    assert source is not None
    first = _counts()
    history = HistoryEntry.objects.count()
    assert load_delivery_demo(org, users, owner.user.email) == source
    assert _counts() == first and HistoryEntry.objects.count() == history
    assert DeliverySource.objects.filter(organisation=org).count() == 1
    assert elapsed < 20  # < 3 s on a quiet machine; the bound only catches a runaway

    assert source.name == SOURCE_NAME and source.kind == "events" and source.product == trail
    assert source.team is not None and source.team.name == "Trail Team"
    assert source.state_mapping == {
        "started": ["In Progress"],
        "waiting": ["In Review", "Blocked"],
        "done": ["Done"],
    }
    assert source.production_environment == "production"
    run = ImportRun.objects.get(source=source)
    assert run.status == "succeeded" and run.error_count == 0
    assert run.created["items"] == first["DeliveryItem"]


def test_counts_are_plausible_for_a_year(owner, trail) -> None:
    load_delivery_demo(owner.membership.organisation, {owner.user.email: owner.user}, owner.user.email)
    counts = _counts()
    assert 450 <= counts["DeliveryItem"] <= 750
    assert 2_000 <= counts["StateTransition"] <= 4_000
    assert 1_400 <= counts["Commit"] <= 3_000
    assert 200 <= counts["Deployment"] <= 400
    assert 10 <= counts["Release"] <= 20
    assert counts["Incident"] >= 5


def test_the_demo_has_every_edge_case(owner, trail) -> None:
    source = load_delivery_demo(
        owner.membership.organisation, {owner.user.email: owner.user}, owner.user.email
    )
    items = DeliveryItem.objects.filter(source=source)
    # Reopened (done twice), never started (only To Do), still in progress or waiting at the end.
    reopened = (
        StateTransition.objects.filter(item__source=source, to_state="Done")
        .values("item")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert reopened.count() > 5
    never = items.annotate(n=Count("transitions")).filter(n=1)
    assert never.exists() and all(i.transitions.get().to_state == "To Do" for i in never[:5])
    last_states = {}
    for item_id, state in (
        StateTransition.objects.filter(item__source=source)
        .order_by("at", "id")
        .values_list("item_id", "to_state")
    ):
        last_states[item_id] = state
    assert {"In Progress", "In Review", "Blocked"} & set(last_states.values())
    assert StateTransition.objects.filter(item__source=source, to_state="Blocked").exists()

    deployments = Deployment.objects.filter(source=source, environment="production")
    assert deployments.filter(succeeded=False).exists()
    assert deployments.filter(commit_shas=[]).exists()  # a rollback deploys no commits
    assert deployments.values("run_id").distinct().count() < deployments.count()  # several per run
    assert Deployment.objects.filter(source=source, environment="staging").exists()

    incidents = Incident.objects.filter(source=source)
    assert incidents.filter(resolved_at__isnull=True).exists()  # still open
    assert incidents.filter(deployment__succeeded=False).exists()  # linked to the failed deployment
    assert incidents.filter(deployment__isnull=True).exists()  # one no deployment caused

    squashed = [
        pr
        for pr in PullRequest.objects.filter(source=source, merged_at__isnull=False)
        if pr.merge_sha and pr.merge_sha not in pr.commit_shas
    ]
    assert squashed
    for pr in squashed:
        assert pr.first_commit_at is not None and pr.merged_at is not None
        assert pr.first_commit_at < pr.merged_at
    assert PullRequest.objects.filter(source=source, merged_at__isnull=True).exists()
    assert Commit.objects.filter(source=source, is_merge=True).exists()


def test_nothing_without_the_product(org_a, owner) -> None:
    assert load_delivery_demo(org_a, {owner.user.email: owner.user}, owner.user.email) is None
    assert not DeliverySource.objects.exists()


def test_the_metrics_meet_the_edge_cases_in_the_demo(owner, trail) -> None:
    load_delivery_demo(owner.membership.organisation, {owner.user.email: owner.user}, owner.user.email)
    end = timezone.now()
    start = end - dt.timedelta(days=365)
    flow = metrics.flow_for(owner.membership, product_id=trail.pk, start=start, end=end)
    assert flow.never_started > 0 and flow.wip > 0 and flow.flow_efficiency is not None
    assert len(flow.completed) > 300 and 1 < (flow.cycle_time_days[50] or 0) < 10
    dora = metrics.dora_for(owner.membership, product_id=trail.pk, start=start, end=end)
    assert 150 < dora.deployments < 300 and dora.failed_deployments > 5
    assert dora.open_incidents >= 1 and dora.restore_samples > 0
    assert dora.lead_time_hours is not None and 0.05 < (dora.change_failure_rate or 0) < 0.25
