"""Delivery demo for Acme Outdoor: a year of Trail App's delivery history (work items and their
transitions, commits, pull requests, deployments, incidents, releases) from the synthetic generator
(`truenorth.delivery.synthetic`), stored through the ingest service like any import, into one source of
kind "events". Safe to run twice: a source that already has its import is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.delivery import synthetic
from truenorth.delivery.importers.base import (
    CommitRecord,
    DeploymentRecord,
    IncidentRecord,
    ItemRecord,
    PullRecord,
    Record,
    ReleaseRecord,
    TransitionRecord,
)
from truenorth.delivery.models import DeliverySource, Deployment, Incident, SourceKind
from truenorth.delivery.services.ingest import ingest, start_run
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Product

PRODUCT = "Trail App"
SOURCE_NAME = "Trail App delivery"
SEED = 12
DAYS = 365


def records(history: synthetic.History) -> Iterator[Record]:
    """The synthetic history as importer records (items before their transitions)."""
    for item in history.items:
        yield ItemRecord(item.external_id, item.title, item.item_type, item.created_at, item.labels)
        for t in item.transitions:
            yield TransitionRecord(item.external_id, t.at, t.from_state, t.to_state)
    for c in history.commits:
        yield CommitRecord(c.sha, c.authored_at, c.committed_at, c.is_merge, c.branch)
    for pr in history.pull_requests:
        yield PullRecord(
            pr.number, pr.title, pr.created_at, pr.first_commit_at, pr.merged_at, pr.merge_sha, pr.commit_shas
        )
    for r in history.releases:
        yield ReleaseRecord(r.name, r.at, r.sha)
    for d in history.deployments:
        yield DeploymentRecord(
            d.external_id, d.run_id, d.service, d.environment, d.deployed_at, d.succeeded, d.commit_shas
        )
    for i in history.incidents:
        yield IncidentRecord(i.external_id, i.service, i.opened_at, i.resolved_at)


def link_incidents(source: DeliverySource, history: synthetic.History) -> int:
    """Point each incident at the failed deployment that caused it (the records carry no link)."""
    caused = {i.external_id: i.deployment_id for i in history.incidents if i.deployment_id}
    deployments = dict(
        Deployment.objects.filter(source=source, external_id__in=set(caused.values())).values_list(
            "external_id", "pk"
        )
    )
    incidents = list(Incident.objects.filter(source=source, external_id__in=caused, deployment__isnull=True))
    for incident in incidents:
        incident.deployment_id = deployments.get(caused[incident.external_id])
    Incident.objects.bulk_update(incidents, ["deployment"])
    return len(incidents)


@transaction.atomic
def load_delivery_demo(org: Organisation, users: dict[str, User], owner_email: str) -> DeliverySource | None:
    """Trail App's year of delivery history; nothing when the product is missing or the source is loaded."""
    product = Product.objects.filter(organisation=org, name=PRODUCT).first()
    if product is None:
        return None
    source = DeliverySource.objects.filter(organisation=org, name=SOURCE_NAME).first()
    if source is not None and source.imports.exists():
        return source
    owner = users[owner_email]
    if source is None:
        source = DeliverySource.objects.create(
            organisation=org,
            name=SOURCE_NAME,
            kind=SourceKind.EVENTS,
            product=product,
            team=product.teams.first(),
            state_mapping={key: list(states) for key, states in synthetic.STATE_MAPPING.items()},
            production_environment=synthetic.PRODUCTION,
            created_by=owner,
        )
        record(
            org,
            source,
            owner,
            HistoryEntry.Action.CREATED,
            {
                "name": {"old": None, "new": source.name},
                "kind": {"old": None, "new": source.kind},
                "product": {"old": None, "new": product.name},
            },
        )
    today = timezone.now().astimezone(dt.UTC).date()
    history = synthetic.generate(SEED, start=today - dt.timedelta(days=DAYS), days=DAYS)
    run = start_run(source, "events", actor=owner, file_name="demo: a year of Trail App delivery")
    ingest(source, records(history), run=run)
    link_incidents(source, history)
    return source
