"""Organisation A's Delivery evidence for the isolation walk (tests/test_isolation.py): a source with
one import of work items, transitions and deployments, the URL parameters that name them, and the rows
a successful attack would change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import F, QuerySet

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
from truenorth.delivery.models.github import GitHubConnection
from truenorth.delivery.models.process import ProcessChange
from truenorth.delivery.services import github_fetch, process, sources
from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Product

if TYPE_CHECKING:
    from conftest import Persona

DELIVERY_SECRETS = (
    "Alpha secret delivery source",
    "Alpha secret ticket",
    "ghp_alphaSecretToken",
    "alpha/secret-repo",
)

EVENTS = (
    "kind,id,at,title,type,labels,from_state,to_state,service,environment,succeeded,commits,run_id,resolved_at\n"
    "item,ALPHA-7,2026-02-02T09:00:00Z,Alpha secret ticket,story,,,,,,,,,\n"
    "transition,ALPHA-7,2026-02-03T10:00:00Z,,,,Backlog,In Progress,,,,,,\n"
    "transition,ALPHA-7,2026-02-05T16:30:00Z,,,,In Progress,Done,,,,,,\n"
)


@dataclass
class DeliveryA:
    source: DeliverySource
    run: ImportRun
    change: ProcessChange


def populate_delivery(owner: Persona, product: Product, name: str = DELIVERY_SECRETS[0]) -> DeliveryA:
    m, u = owner.membership, owner.user
    assert m is not None
    # A GitHub source (connected with a token) also takes generic events: one source serves every route.
    source = sources.create_source(m, u, name=name, kind="github", product_id=product.pk)
    github_fetch.connect(m, u, source.pk, repository="alpha/secret-repo", token="ghp_alphaSecretToken")
    events = EVENTS if name == DELIVERY_SECRETS[0] else EVENTS.replace("Alpha secret ticket", "Bravo ticket")
    run = sources.run_import(source, "events-csv", events.encode(), actor=u, file_name="events.csv")
    change = process.create_change(
        m, u, product_id=product.pk, title=f"{name}: WIP limit", changed_on="2026-02-04"
    )
    return DeliveryA(source, run, change)


DELIVERY_ID_NAMES = ("source_id", "import_id", "change_id")


def delivery_ids(d: DeliveryA) -> dict[str, str]:
    return {"source_id": str(d.source.pk), "import_id": str(d.run.pk), "change_id": str(d.change.pk)}


def delivery_state(org: Organisation) -> dict[str, Any]:
    by_org: dict[str, QuerySet[Any]] = {
        "delivery_sources": DeliverySource.objects.filter(organisation=org),
        "delivery_imports": ImportRun.objects.filter(organisation=org),
        "delivery_items": DeliveryItem.objects.filter(organisation=org),
        "delivery_transitions": StateTransition.objects.filter(item__organisation=org),
        "delivery_commits": Commit.objects.filter(source__organisation=org),
        "delivery_pulls": PullRequest.objects.filter(source__organisation=org),
        "delivery_releases": Release.objects.filter(source__organisation=org),
        "delivery_deployments": Deployment.objects.filter(source__organisation=org),
        "delivery_incidents": Incident.objects.filter(source__organisation=org),
        "delivery_github": GitHubConnection.objects.filter(organisation=org),
        "delivery_changes": ProcessChange.objects.filter(organisation=org),
    }
    return {name: sorted(map(repr, qs.order_by("pk").values())) for name, qs in by_org.items()}


def delivery_cross_references() -> dict[str, QuerySet[Any]]:
    return {
        "delivery source product": DeliverySource.objects.exclude(product__isnull=True).exclude(
            product__organisation=F("organisation")
        ),
        "delivery source team": DeliverySource.objects.exclude(team__isnull=True).exclude(
            team__organisation=F("organisation")
        ),
        "delivery item source": DeliveryItem.objects.exclude(source__organisation=F("organisation")),
        "delivery item work item": DeliveryItem.objects.exclude(work_item__isnull=True).exclude(
            work_item__organisation=F("organisation")
        ),
        "delivery import source": ImportRun.objects.exclude(source__organisation=F("organisation")),
        "delivery github source": GitHubConnection.objects.exclude(source__organisation=F("organisation")),
        "delivery change product": ProcessChange.objects.exclude(product__organisation=F("organisation")),
        "delivery change hypothesis": ProcessChange.objects.exclude(hypothesis__isnull=True).exclude(
            hypothesis__organisation=F("organisation")
        ),
    }
