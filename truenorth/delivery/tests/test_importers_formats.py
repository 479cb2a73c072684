"""Jira and generic-event importers on the sample files, and what they store through ingest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from truenorth.delivery.importers import UnreadableInput, registry
from truenorth.delivery.importers.base import (
    BadRecord,
    BranchRecord,
    DeploymentRecord,
    Importer,
    IncidentRecord,
    ItemRecord,
    TransitionRecord,
)
from truenorth.delivery.importers.jira import parse_jira_time
from truenorth.delivery.models import Branch, DeliveryItem, DeliverySource, Deployment, Incident
from truenorth.delivery.services.ingest import ingest, start_run
from truenorth.orgs.models import Organisation

SAMPLES = Path(__file__).parent / "samples"
UTC = dt.UTC
CET = dt.timezone(dt.timedelta(hours=1))


def read(name: str, sample: str, as_bytes: bool = False) -> list:
    data = (SAMPLES / sample).read_bytes() if as_bytes else SAMPLES / sample
    return list(registry[name].read(data))


def bad(records: list) -> list[tuple[str, str]]:
    return [(r.location, r.message) for r in records if isinstance(r, BadRecord)]


def test_every_builtin_is_an_importer_registered_under_its_name() -> None:
    assert {"git", "jira", "jira-csv", "jira-changelog", "events", "events-csv", "events-json"} <= set(
        registry
    )
    for name, importer in registry.items():
        assert isinstance(importer, Importer) and importer.name == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("03/Mar/26 9:15 AM", dt.datetime(2026, 3, 3, 9, 15, tzinfo=UTC)),
        ("10/Mar/26 4:02 PM", dt.datetime(2026, 3, 10, 16, 2, tzinfo=UTC)),
        ("12/Mar/26 12:00 AM", dt.datetime(2026, 3, 12, 0, 0, tzinfo=UTC)),
        ("06/Mar/2026 10:30", dt.datetime(2026, 3, 6, 10, 30, tzinfo=UTC)),
        ("2026-03-05 08:05", dt.datetime(2026, 3, 5, 8, 5, tzinfo=UTC)),
        ("05.03.2026 14:00", dt.datetime(2026, 3, 5, 14, 0, tzinfo=UTC)),
        ("13/03/2026 09:00", dt.datetime(2026, 3, 13, 9, 0, tzinfo=UTC)),
        ("2026-03-03T09:15:00.000+0100", dt.datetime(2026, 3, 3, 9, 15, tzinfo=CET)),
        ("2026-03-03T08:15:00Z", dt.datetime(2026, 3, 3, 9, 15, tzinfo=CET)),
    ],
)
def test_jira_date_formats(text: str, expected: dt.datetime) -> None:
    assert parse_jira_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "31/Feb/26 9:00 AM", "2026-13-01 10:00"])
def test_jira_dates_that_are_not_dates(text: str) -> None:
    with pytest.raises(ValueError):
        parse_jira_time(text)


def test_jira_csv_items_labels_resolutions_and_bad_rows() -> None:
    records = read("jira-csv", "jira_export.csv")
    items = {r.external_id: r for r in records if isinstance(r, ItemRecord)}
    assert sorted(items) == ["PAY-101", "PAY-102", "PAY-103", "PAY-104", "PAY-107"]
    assert items["PAY-101"] == ItemRecord(
        "PAY-101",
        "Refund a card payment, partially",
        "Story",
        dt.datetime(2026, 3, 3, 9, 15, tzinfo=UTC),
        ("payments", "refunds"),
    )
    assert items["PAY-104"].labels == ()
    done = [(r.item_external_id, r.at, r.to_state) for r in records if isinstance(r, TransitionRecord)]
    assert done == [
        ("PAY-101", dt.datetime(2026, 3, 10, 16, 2, tzinfo=UTC), "Done"),
        ("PAY-103", dt.datetime(2026, 3, 6, 17, 30, tzinfo=UTC), "Done"),
        ("PAY-107", dt.datetime(2026, 3, 13, 9, 0, tzinfo=UTC), "Done"),
    ]
    assert [loc for loc, _ in bad(records)] == ["line 6", "line 7"]
    assert "yesterday" in bad(records)[0][1] and bad(records)[0][1].startswith("Created:")


def test_jira_csv_needs_its_key_columns() -> None:
    with pytest.raises(UnreadableInput, match="Issue key"):
        list(registry["jira-csv"].read(b"Summary,Created\nx,03/Mar/26 9:15 AM\n"))


def test_jira_changelog_transitions_start_in_the_first_state_at_creation() -> None:
    records = read("jira-changelog", "jira_changelog.json")
    moves = [
        (r.item_external_id, r.at, r.from_state, r.to_state)
        for r in records
        if isinstance(r, TransitionRecord)
    ]
    assert moves == [
        ("PAY-101", dt.datetime(2026, 3, 3, 9, 15, tzinfo=CET), "", "To Do"),
        ("PAY-101", dt.datetime(2026, 3, 4, 10, 0, tzinfo=CET), "To Do", "In Progress"),
        ("PAY-101", dt.datetime(2026, 3, 6, 15, 30, tzinfo=CET), "In Progress", "In Review"),
        ("PAY-101", dt.datetime(2026, 3, 10, 16, 2, tzinfo=CET), "In Review", "Done"),
        ("PAY-102", dt.datetime(2026, 3, 4, 11, 40, tzinfo=CET), "", "To Do"),
    ]
    assert bad(records) == [
        (
            "issues[2].fields.created",
            "PAY-103: “soon” is not a date Jira writes (e.g. 12/Mar/26 9:15 AM or 2026-03-12 09:15).",
        ),
        ("issues[3]", "An issue needs a key."),
    ]


def test_jira_picks_the_format_from_the_content() -> None:
    assert read("jira", "jira_changelog.json", as_bytes=True) == read("jira-changelog", "jira_changelog.json")
    assert read("jira", "jira_export.csv", as_bytes=True) == read("jira-csv", "jira_export.csv")


def test_jira_changelog_that_is_not_json() -> None:
    with pytest.raises(UnreadableInput, match="Not valid JSON"):
        list(registry["jira-changelog"].read(b'{"issues": ['))


def test_events_csv_every_kind_and_bad_rows_by_line() -> None:
    records = read("events", "events.csv")
    kinds = [type(r).__name__ for r in records]
    assert kinds.count("ItemRecord") == 1 and kinds.count("TransitionRecord") == 3
    deployments = [r for r in records if isinstance(r, DeploymentRecord)]
    assert [(d.external_id, d.run_id, d.succeeded, d.commit_shas) for d in deployments] == [
        ("dep-100", "pipeline-77", True, ("1a2b3c4d", "5e6f7a8b")),
        ("dep-101", "pipeline-77", True, ("1a2b3c4d",)),
        ("dep-102", "pipeline-78", False, ("9c0d1e2f",)),
    ]
    incidents = [r for r in records if isinstance(r, IncidentRecord)]
    assert [i.resolved_at for i in incidents] == [dt.datetime(2026, 2, 6, 12, 5, tzinfo=UTC), None]
    assert [i.deployment for i in incidents] == ["dep-102", "dep-104"]  # the deployment that caused it
    branches = [r for r in records if isinstance(r, BranchRecord)]
    assert branches == [
        BranchRecord("feature/checkout-v2", "5e6f7a8b", dt.datetime(2026, 2, 5, 16, tzinfo=UTC)),
        BranchRecord(
            "spike/old-cart",
            "77aa88bb",
            dt.datetime(2026, 1, 20, 10, tzinfo=UTC),
            deleted_at=dt.datetime(2026, 2, 6, 9, tzinfo=UTC),
        ),
    ]
    assert [loc for loc, _ in bad(records)] == ["line 13", "line 14", "line 15"]
    assert bad(records)[1][1].startswith("kind: “rollout” is not one of")


def test_events_json_and_json_lines() -> None:
    records = read("events", "events.json")
    assert bad(records) == [
        ("events[6]", "succeeded: “maybe” is not true or false."),
        ("events[7]", "An event is an object with kind, id and at."),
    ]
    incident = next(r for r in records if isinstance(r, IncidentRecord))
    assert incident.deployment == "rel-9"
    assert (
        BranchRecord("hotfix/edge-timeout", "4f5e6d7c8b9a", dt.datetime(2026, 1, 14, 12, 40, tzinfo=UTC))
        in records
    )
    lines = read("events", "events.jsonl", as_bytes=True)
    assert [type(r).__name__ for r in lines] == [
        "CommitRecord",
        "CommitRecord",
        "ReleaseRecord",
        "DeploymentRecord",
        "BadRecord",
        "BadRecord",
    ]
    assert lines[1].is_merge is True and lines[0].authored_at == dt.datetime(2026, 2, 4, 18, tzinfo=UTC)
    assert lines[2].sha == "1a2b3c4d5e6f"
    assert [loc for loc, _ in bad(lines)] == ["line 5", "line 6"]


def test_events_csv_with_semicolons_and_a_byte_order_mark() -> None:
    data = "\ufeffkind;id;at;to_state\ntransition;A-1;2026-02-01;Doing\n".encode()
    assert list(registry["events"].read(data)) == [
        TransitionRecord("A-1", dt.datetime(2026, 2, 1, tzinfo=UTC), "", "Doing")
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("importer", "sample"),
    [
        ("jira", "jira_export.csv"),
        ("jira", "jira_changelog.json"),
        ("events", "events.csv"),
        ("events", "events.json"),
        ("events", "events.jsonl"),
    ],
)
def test_importing_a_sample_twice_creates_nothing_the_second_time(importer: str, sample: str) -> None:
    org = Organisation.objects.create(name="Acme", slug="acme")
    source = DeliverySource.objects.create(organisation=org, name="S", kind="events")
    data = (SAMPLES / sample).read_bytes()
    first = ingest(source, registry[importer].read(data), run=start_run(source, importer, data=data))
    assert first.created and first.error_count >= 1
    again = ingest(source, registry[importer].read(data), run=start_run(source, importer, data=data))
    assert again.created == {}
    assert again.error_count == first.error_count and again.digest == first.digest


@pytest.mark.django_db
def test_events_sample_lands_as_rows() -> None:
    org = Organisation.objects.create(name="Acme", slug="acme")
    source = DeliverySource.objects.create(organisation=org, name="S", kind="events")
    run = ingest(source, registry["events"].read(SAMPLES / "events.csv"), run=start_run(source, "events"))
    assert run.created == {
        "branches": 2,
        "deployments": 3,
        "incident_links": 1,
        "incidents": 2,
        "items": 2,
        "transitions": 3,
    }
    assert DeliveryItem.objects.get(source=source, external_id="WEB-2").title == ""  # a bare item
    assert Deployment.objects.filter(source=source, run_id="pipeline-77").count() == 2
    assert Incident.objects.get(external_id="INC-8").resolved_at is None
    assert Incident.objects.get(external_id="INC-7").deployment == Deployment.objects.get(
        external_id="dep-102"
    )
    assert Incident.objects.get(external_id="INC-8").deployment is None  # dep-104 is not known yet
    assert Branch.objects.get(source=source, name="spike/old-cart").deleted_at == dt.datetime(
        2026, 2, 6, 9, tzinfo=UTC
    )
    assert run.window_start == dt.datetime(2026, 1, 20, 10, tzinfo=UTC)  # the old branch's last commit
    assert run.window_end == dt.datetime(2026, 2, 9, 8, tzinfo=UTC)
    # The deployment INC-8 names arrives in a later file: the incident is linked then.
    later = b"kind,id,at,environment,succeeded\ndeployment,dep-104,2026-02-09T07:30:00Z,production,true\n"
    second = ingest(source, registry["events"].read(later), run=start_run(source, "events"))
    assert second.created == {"deployments": 1, "incident_links": 1}
    assert Incident.objects.get(external_id="INC-8").deployment.external_id == "dep-104"  # type: ignore[union-attr]
    # An events file lists some branches, not all: none is taken for deleted.
    assert not Branch.objects.filter(
        source=source, name="feature/checkout-v2", deleted_at__isnull=False
    ).exists()
