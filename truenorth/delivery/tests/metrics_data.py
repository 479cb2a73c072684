"""Small hand-built delivery history for the metrics tests (one product, one source, four items, three
deployments, one incident), and the same history as the pure cores' records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from truenorth.delivery import dora, flow
from truenorth.delivery.models import (
    Commit,
    DeliveryItem,
    DeliverySource,
    Deployment,
    Incident,
    PullRequest,
    StateTransition,
)
from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Product

BASE = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)  # a Monday
MAPPING = {"started": ["In Progress"], "done": ["Done"], "waiting": ["Review"]}
START = BASE
END = BASE + dt.timedelta(days=13, hours=14)


def d(day: float) -> dt.datetime:
    return BASE + dt.timedelta(days=day)


ITEMS: dict[str, tuple[float, list[tuple[float, str]]]] = {
    # started day 1, waiting in review days 3-4, done day 5 (cycle 4 days, efficiency 2 of 4 days)
    "A-1": (0, [(0, "To Do"), (1, "In Progress"), (3, "Review"), (4, "In Progress"), (5, "Done")]),
    "A-2": (0, [(0, "To Do"), (2, "In Progress"), (4, "Done")]),  # cycle 2 days
    "A-3": (1, [(1, "To Do"), (4, "In Progress")]),  # still in progress
    "A-4": (0, [(0, "To Do"), (3, "Done")]),  # done without being started: no cycle time
}


@dataclass
class Delivery:
    product: Product
    source: DeliverySource


def build(org: Organisation, *, name: str = "Payments") -> Delivery:
    product = Product.objects.create(organisation=org, name=name)
    source = DeliverySource.objects.create(
        organisation=org,
        name=f"{name} Jira",
        kind="jira",
        product=product,
        state_mapping=MAPPING,
        production_environment="prod",
    )
    for external_id, (created, steps) in ITEMS.items():
        item = DeliveryItem.objects.create(
            organisation=org, source=source, external_id=external_id, created_at=d(created)
        )
        for at, state in steps:
            StateTransition.objects.create(item=item, at=d(at), to_state=state)
    Commit.objects.create(source=source, sha="c1", authored_at=d(1), committed_at=d(1))
    Commit.objects.create(source=source, sha="c2", authored_at=d(2), committed_at=d(2))
    PullRequest.objects.create(
        source=source, number=1, created_at=d(1.5), first_commit_at=d(0.5), merged_at=d(3), merge_sha="c2"
    )
    Deployment.objects.create(
        source=source, external_id="D1", environment="prod", deployed_at=d(4), commit_shas=["c1", "c2"]
    )
    failed = Deployment.objects.create(
        source=source, external_id="D2", environment="prod", deployed_at=d(5), succeeded=True
    )
    Deployment.objects.create(source=source, external_id="D3", environment="staging", deployed_at=d(5))
    Incident.objects.create(
        source=source, external_id="I1", opened_at=d(5.1), resolved_at=d(5.2), deployment=failed
    )
    return Delivery(product, source)


def histories() -> list[flow.ItemHistory]:
    return [
        flow.ItemHistory(external_id, d(created), [(d(at), state) for at, state in steps])
        for external_id, (created, steps) in ITEMS.items()
    ]


def expected_flow() -> flow.FlowMetrics:
    return flow.flow_metrics(histories(), flow.StateMapping.from_config(MAPPING), start=START, end=END)


def expected_dora(delivery: Delivery, year: int) -> dora.DoraMetrics:
    deployments = {dep.external_id: dep.pk for dep in delivery.source.deployments.all()}
    return dora.dora_metrics(
        [
            dora.DeploymentRecord(str(deployments["D1"]), d(4), True, "prod", commit_shas=("c1", "c2")),
            dora.DeploymentRecord(str(deployments["D2"]), d(5), True, "prod"),
            dora.DeploymentRecord(str(deployments["D3"]), d(5), True, "staging"),
        ],
        [dora.CommitRecord("c1", d(1)), dora.CommitRecord("c2", d(2))],
        [dora.PullRecord(d(0.5), d(3), "c2", ())],
        [dora.IncidentRecord("I1", d(5.1), d(5.2), str(deployments["D2"]))],
        start=START,
        end=END,
        production="prod",
        year=year,
    )
