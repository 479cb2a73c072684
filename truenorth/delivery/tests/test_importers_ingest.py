"""The ingest service: idempotent, incremental, bad records kept, items before transitions, line of sight."""

from __future__ import annotations

import datetime as dt

import pytest

from truenorth.delivery.importers.base import (
    BadRecord,
    CommitRecord,
    DeploymentRecord,
    IncidentRecord,
    ItemRecord,
    PullRecord,
    ReleaseRecord,
    TransitionRecord,
)
from truenorth.delivery.models import DeliveryItem, DeliverySource, ImportStatus, Incident, StateTransition
from truenorth.delivery.services.ingest import ingest, start_run
from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Product, WorkItem

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def t(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def source() -> DeliverySource:
    org = Organisation.objects.create(name="Acme", slug="acme")
    product = Product.objects.create(organisation=org, name="Payments")
    return DeliverySource.objects.create(organisation=org, name="Payments Jira", kind="jira", product=product)


def records() -> list:
    return [
        ItemRecord("PAY-1", "Refunds", "Story", t(1), ("payments",)),
        TransitionRecord("PAY-1", t(2), "To Do", "In Progress"),
        TransitionRecord("PAY-1", t(4), "In Progress", "Done"),
        BadRecord("line 7", "Created: not a date"),
        CommitRecord("a" * 40, t(2), t(2, 10), False, "main"),
        PullRecord(12, "Refunds API", t(2), t(2), t(3), "b" * 40, ("a" * 40,)),
        ReleaseRecord("v1.0", t(3), "b" * 40),
        DeploymentRecord("d-1", "run-1", "api", "production", t(3, 12), True, ("b" * 40,)),
        IncidentRecord("INC-1", "api", t(5), None),
    ]


def run_once(source: DeliverySource, recs: list, batch_size: int = 5000):
    return ingest(source, recs, run=start_run(source, "test"), batch_size=batch_size)


def test_first_import_creates_every_kind_and_keeps_the_bad_record(source: DeliverySource) -> None:
    run = run_once(source, records())
    assert run.status == ImportStatus.SUCCEEDED
    assert run.created == {
        "commits": 1,
        "deployments": 1,
        "incidents": 1,
        "items": 1,
        "pull_requests": 1,
        "releases": 1,
        "transitions": 2,
    }
    assert run.unchanged == 0
    assert run.error_count == 1
    assert run.errors == [{"location": "line 7", "message": "Created: not a date"}]
    assert run.window_start == t(1) and run.window_end == t(5)
    assert run.finished_at is not None


def test_reimporting_the_same_records_creates_nothing(source: DeliverySource) -> None:
    run_once(source, records())
    again = run_once(source, records(), batch_size=3)
    assert again.created == {}
    assert again.unchanged == 9 - 1  # every record but the bad one
    assert StateTransition.objects.filter(item__source=source).count() == 2


def test_a_newer_export_updates_known_records(source: DeliverySource) -> None:
    run_once(source, records())
    newer = [IncidentRecord("INC-1", "api", t(5), t(5, 13)), ItemRecord("PAY-1", "Refunds v2", "Story", t(1))]
    run = run_once(source, newer)
    assert run.created == {"incidents_updated": 1, "items_updated": 1}
    assert Incident.objects.get(source=source).resolved_at == t(5, 13)
    assert DeliveryItem.objects.get(source=source).title == "Refunds v2"


def test_transitions_of_unknown_items_create_bare_items_that_a_later_record_fills(
    source: DeliverySource,
) -> None:
    run = run_once(
        source,
        [TransitionRecord("PAY-9", t(6), "", "In Progress"), TransitionRecord("PAY-9", t(3), "", "To Do")],
    )
    assert run.created == {"items": 1, "transitions": 2}
    item = DeliveryItem.objects.get(source=source, external_id="PAY-9")
    assert item.created_at == t(3) and item.title == ""
    run_once(source, [ItemRecord("PAY-9", "Chargebacks", "Bug", t(2))])
    item.refresh_from_db()
    assert (item.title, item.item_type, item.created_at) == ("Chargebacks", "Bug", t(2))


def test_items_link_to_vision_work_items_of_the_product_by_key(source: DeliverySource) -> None:
    assert source.product is not None
    work = WorkItem.objects.create(
        organisation=source.organisation, product=source.product, title="Refunds", external_key="PAY-1"
    )
    run_once(
        source, [ItemRecord("PAY-1", "Refunds", "Story", t(1)), ItemRecord("PAY-2", "Other", "Bug", t(1))]
    )
    assert DeliveryItem.objects.get(external_id="PAY-1").work_item == work
    assert DeliveryItem.objects.get(external_id="PAY-2").work_item is None
    # A work item created later is linked by the next import.
    later = WorkItem.objects.create(
        organisation=source.organisation, product=source.product, title="Other", external_key="PAY-2"
    )
    run = run_once(source, [ItemRecord("PAY-2", "Other", "Bug", t(1))])
    assert run.created == {"items_updated": 1}
    assert DeliveryItem.objects.get(external_id="PAY-2").work_item == later


def test_keys_too_long_are_bad_records_and_the_rest_lands(source: DeliverySource) -> None:
    run = run_once(source, [ItemRecord("X" * 101, "", "", t(1)), ItemRecord("PAY-3", "", "", t(1))])
    assert run.created == {"items": 1}
    assert run.error_count == 1 and "1 to 100" in run.errors[0]["message"]


def test_errors_are_capped_but_counted(source: DeliverySource) -> None:
    run = run_once(source, [BadRecord(f"line {n}", "bad") for n in range(250)])
    assert run.error_count == 250 and len(run.errors) == 200


def test_progress_is_reported_per_batch(source: DeliverySource) -> None:
    seen: list[tuple[int, int]] = []
    ingest(
        source,
        records(),
        run=start_run(source, "test"),
        progress=lambda d, n: seen.append((d, n)),
        batch_size=4,
    )
    assert seen == [(4, 4), (8, 8)]


def test_an_incident_is_linked_to_the_deployment_it_names_even_when_that_comes_later(
    source: DeliverySource,
) -> None:
    from truenorth.delivery.models import Deployment, IncidentCause

    incident = IncidentRecord("INC-9", "api", t(6), t(6, 11), deployment="d-9")
    deployment = DeploymentRecord("d-9", "run-9", "api", "production", t(6, 8), True, ())
    first = run_once(source, [incident, ItemRecord("PAY-2", "", "Bug", t(1))], batch_size=1)
    assert Incident.objects.get(external_id="INC-9").deployment is None
    assert IncidentCause.objects.get().deployment_external_id == "d-9"  # kept until d-9 arrives
    assert "incident_links" not in first.created
    second = run_once(source, [ItemRecord("PAY-3", "", "Story", t(1)), deployment], batch_size=1)
    assert second.created == {"deployments": 1, "incident_links": 1, "items": 1}
    assert Incident.objects.get(external_id="INC-9").deployment == Deployment.objects.get(external_id="d-9")
    again = run_once(source, [incident, deployment])  # re-importing both changes nothing
    assert again.created == {} and again.unchanged == 2
    # A newer export names another deployment: the link follows it.
    other = DeploymentRecord("d-10", "run-10", "api", "production", t(6, 9), False, ())
    moved = run_once(source, [other, IncidentRecord("INC-9", "api", t(6), t(6, 11), deployment="d-10")])
    assert moved.created == {"deployments": 1, "incident_links": 1}
    assert Incident.objects.get(external_id="INC-9").deployment.external_id == "d-10"  # type: ignore[union-attr]
    # Naming no deployment keeps the link.
    run_once(source, [IncidentRecord("INC-9", "api", t(6), t(6, 12))])
    assert Incident.objects.get(external_id="INC-9").deployment.external_id == "d-10"  # type: ignore[union-attr]


def test_changes_tell_the_earliest_time_a_new_or_changed_record_touches(source: DeliverySource) -> None:
    from truenorth.delivery.services.ingest import Changes

    first = Changes()
    ingest(source, records(), run=start_run(source, "test"), changes=first)
    assert first.since == t(1)  # PAY-1 created on day 1
    again = Changes()
    ingest(source, records(), run=start_run(source, "test"), changes=again)
    assert again.since is None  # nothing new
    late = Changes()
    ingest(
        source,
        [*records(), IncidentRecord("INC-1", "api", t(5), t(5, 15)), CommitRecord("c" * 40, t(3), t(3))],
        run=start_run(source, "test"),
        changes=late,
    )
    assert late.since == t(3)  # the new commit; the incident now resolved touches day 5
