"""The Azure DevOps importer on work item revisions: "Revisions - List" answers and reporting batches,
concatenated pages, out-of-order and repeated revisions, reopened and never-started items, 7-digit
fractional seconds, bad revisions by location; idempotent ingest; the upload path for an azure source."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from truenorth.delivery.importers import UnreadableInput, registry
from truenorth.delivery.importers.base import BadRecord, ItemRecord, TransitionRecord
from truenorth.delivery.models import DeliveryItem, DeliverySource, ImportRun, StateTransition
from truenorth.delivery.services import sources
from truenorth.delivery.services.ingest import ingest, start_run
from truenorth.jobs.models import Job, JobStatus
from truenorth.orgs.models import Organisation

SAMPLES = Path(__file__).parent / "samples"
API = "/api/v1/orgs/alpha/delivery"


def at(month: int, day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, micro, tzinfo=dt.UTC)


def read(data: bytes | Path) -> list:
    return list(registry["azure"].read(data))


def test_revisions_list_pages_give_items_and_state_changes() -> None:
    records = read(SAMPLES / "azure_revisions.json")
    created_101 = at(2, 2, 9, 12, 31, 577000)
    created_102 = at(2, 4, 8, 55, 10, 300000)
    assert [r for r in records if not isinstance(r, BadRecord)] == [
        # Title and tags from the latest revision; the type lower-cased.
        ItemRecord(
            "101", "Checkout: save card for later payments", "user story", created_101,
            ("checkout", "payments", "reopened"),
        ),
        TransitionRecord("101", created_101, "", "New"),
        TransitionRecord("101", at(2, 3, 10, 4, 55, 123456), "New", "Active"),  # 7 digits read
        # rev 4 only moves the board column: no transition.
        TransitionRecord("101", at(2, 6, 11, 0, 12, 987654), "Active", "Resolved"),
        TransitionRecord("101", at(2, 9, 8, 30), "Resolved", "Closed"),
        TransitionRecord("101", at(2, 10, 13, 15, 45, 250000), "Closed", "Active"),  # reopened
        TransitionRecord("101", at(2, 12, 17, 2, 9, 703000), "Active", "Closed"),
        # Never started: created in New and still there.
        ItemRecord("102", "Card number field accepts letters", "bug", created_102, ("checkout",)),
        TransitionRecord("102", created_102, "", "New"),
    ]  # fmt: skip
    assert [(r.location, r.message) for r in records if isinstance(r, BadRecord)] == [
        ("[1].value[1]", "System.ChangedDate: “yesterday” is not a time.")
    ]


def test_reporting_batches_out_of_order_and_mixed_across_items() -> None:
    records = read((SAMPLES / "azure_reporting.json").read_bytes())
    assert [r for r in records if not isinstance(r, BadRecord)] == [
        ItemRecord("201", "Rotate payment API keys (production)", "task", at(3, 2, 8), ("ops", "security")),
        TransitionRecord("201", at(3, 2, 8), "", "To Do"),
        TransitionRecord("201", at(3, 3, 9, 10), "To Do", "Doing"),  # rev 2 came after rev 3
        TransitionRecord("201", at(3, 4, 15, 45, 30, 555000), "Doing", "Done"),
        ItemRecord("202", "Refund email shows wrong currency", "bug", at(3, 2, 10, 30), ("currency",)),
        TransitionRecord("202", at(3, 2, 10, 30), "", "New"),
        TransitionRecord("202", at(3, 5, 9), "New", "Active"),  # rev 2 read twice, counted once
        TransitionRecord("202", at(3, 6, 16), "Active", "Resolved"),
        ItemRecord("203", "Export statements as CSV", "product backlog item", at(3, 5, 11, 0, 0, 500000),
                   ("statements",)),
        TransitionRecord("203", at(3, 5, 11, 0, 0, 500000), "", "New"),
    ]  # fmt: skip
    assert [(r.location, r.message) for r in records if isinstance(r, BadRecord)] == [
        ("[0].values[4]", "id: required."),
        ("[1].values[4]", "System.State: required."),
    ]


def test_a_plain_list_a_single_page_and_an_input_starting_mid_history() -> None:
    def revision(rev: int, state: str, changed: str, **extra: object) -> dict:
        fields = {"System.WorkItemType": "Bug", "System.Title": f"Rev {rev}", "System.State": state,
                  "System.CreatedDate": "2026-04-01T08:00:00Z", "System.ChangedDate": changed}  # fmt: skip
        return {"id": 7, "rev": rev, "fields": fields | extra}

    later = [revision(5, "Active", "2026-04-03T08:00:00Z"), revision(6, "Closed", "2026-04-04T08:00:00Z")]
    records = read(json.dumps(later).encode())
    # rev 5 is where this input starts: its state is the baseline, not a change at creation.
    assert records == [
        ItemRecord("7", "Rev 6", "bug", at(4, 1, 8)),
        TransitionRecord("7", at(4, 4, 8), "Active", "Closed"),
    ]
    page = {"count": 3, "value": [
        revision(1, "New", "2026-04-01T08:00:00Z", **{"System.Tags": " api ;; ui "}),
        {"id": 7, "fields": {"System.State": "New"}},
        {"id": 7, "rev": 3, "fields": {"System.ChangedDate": "2026-04-02T08:00:00Z"}},
        {"id": "seven", "rev": 4, "fields": {}},
        "not a revision",
    ]}  # fmt: skip
    records = read(json.dumps(page).encode())
    # Bad revisions are reported as they are read, before the items (which need every page).
    assert records[4:] == [
        ItemRecord("7", "Rev 1", "bug", at(4, 1, 8), ("api", "ui")),
        TransitionRecord("7", at(4, 1, 8), "", "New"),
    ]
    assert [(r.location, r.message) for r in records if isinstance(r, BadRecord)] == [
        ("value[1]", "rev: required."),
        ("value[2]", "System.State: required."),
        ("value[3]", "id: “seven” is not a work item number."),
        ("value[4]", "Not an object."),
    ]


def test_unreadable_inputs() -> None:
    with pytest.raises(UnreadableInput, match="Not valid JSON"):
        read(b'{"value": [')
    with pytest.raises(UnreadableInput, match="work item revisions"):
        read(b'{"count": 0}')
    with pytest.raises(UnreadableInput, match="empty"):
        read(b"  \n")
    with pytest.raises(UnreadableInput, match="not a file"):
        read(SAMPLES / "no-such-file.json")


@pytest.mark.django_db
def test_ingest_twice_creates_nothing_and_a_longer_export_adds_the_new_changes() -> None:
    org = Organisation.objects.create(name="Acme", slug="acme")
    source = DeliverySource.objects.create(organisation=org, name="Payments board", kind="azure")
    data = (SAMPLES / "azure_reporting.json").read_bytes()
    first = ingest(source, registry["azure"].read(data), run=start_run(source, "azure"))
    assert first.created == {"items": 3, "transitions": 7}
    assert first.error_count == 2 and first.errors[0] == {
        "location": "[0].values[4]",
        "message": "id: required.",
    }
    again = ingest(source, registry["azure"].read(data), run=start_run(source, "azure"))
    assert again.created == {} and again.unchanged == 10
    closed = {"values": [{"id": 202, "rev": 4, "fields": {
        "System.WorkItemType": "Bug", "System.Title": "Refund email shows the wrong currency",
        "System.State": "Closed", "System.CreatedDate": "2026-03-02T10:30:00Z",
        "System.ChangedDate": "2026-03-09T12:00:00Z", "System.Tags": "currency"}}], "isLastBatch": True}  # fmt: skip
    later = ingest(
        source, registry["azure"].read(data + json.dumps(closed).encode()), run=start_run(source, "azure")
    )
    assert later.created == {"items_updated": 1, "transitions": 1}
    item = DeliveryItem.objects.get(source=source, external_id="202")
    assert item.title == "Refund email shows the wrong currency"
    assert list(StateTransition.objects.filter(item=item).order_by("at").values_list("to_state", flat=True)) == [
        "New", "Active", "Resolved", "Closed",
    ]  # fmt: skip


def test_the_api_imports_azure_revisions_into_an_azure_source_only(member) -> None:
    board = sources.create_source(member.membership, member.user, name="Payments board", kind="azure")
    tickets = sources.create_source(member.membership, member.user, name="Tickets", kind="jira")
    assert sources.check_importer(board, "azure") == "azure"
    client = member.api()
    data = (SAMPLES / "azure_revisions.json").read_bytes()
    refused = client.post(
        f"{API}/sources/{tickets.pk}/imports",
        {"importer": "azure", "file": SimpleUploadedFile("revisions.json", data, "application/json")},
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "importer"
    response = client.post(
        f"{API}/sources/{board.pk}/imports",
        {"importer": "azure", "file": SimpleUploadedFile("revisions.json", data, "application/json")},
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = ImportRun.objects.get(pk=job.result["import_id"])
    assert run.importer == "azure" and run.created == {"items": 2, "transitions": 7}
    assert run.errors == [
        {"location": "[1].value[1]", "message": "System.ChangedDate: “yesterday” is not a time."}
    ]


def test_the_upload_form_accepts_the_azure_importer(member) -> None:
    board = sources.create_source(member.membership, member.user, name="Payments board", kind="azure")
    upload = member.client.post(
        f"/o/alpha/delivery/sources/{board.pk}/import/",
        {
            "importer": "azure",
            "file": SimpleUploadedFile("r.json", (SAMPLES / "azure_reporting.json").read_bytes()),
        },
    )
    assert upload.status_code == 302 and "/jobs/" in upload.url
    assert DeliveryItem.objects.filter(source=board).count() == 3
