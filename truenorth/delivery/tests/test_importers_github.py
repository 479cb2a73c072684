"""The GitHub importer on REST API JSON files: pull requests (with their commits), releases,
deployments (statuses), issues; concatenated pages; bad objects by location; idempotent ingest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from truenorth.delivery.importers import UnreadableInput, registry
from truenorth.delivery.importers.base import (
    BadRecord,
    DeploymentRecord,
    ItemRecord,
    PullRecord,
    ReleaseRecord,
    TransitionRecord,
)
from truenorth.delivery.models import DeliverySource, PullRequest
from truenorth.delivery.services.ingest import ingest, start_run
from truenorth.orgs.models import Organisation

SAMPLES = Path(__file__).parent / "samples"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 2, day, hour, minute, tzinfo=dt.UTC)


def test_pull_requests_over_two_pages() -> None:
    records = list(registry["github"].read(SAMPLES / "github_pulls.json"))
    pulls = {r.number: r for r in records if isinstance(r, PullRecord)}
    assert sorted(pulls) == [41, 42, 43]
    squash = pulls[41]
    assert squash.first_commit_at == at(2, 17, 40)  # lead time from the first commit, not the PR
    assert squash.merged_at == at(4, 15) and squash.merge_sha.startswith("5e6f7a8b")
    assert len(squash.commit_shas) == 2
    assert pulls[42].merged_at is None and pulls[42].merge_sha == ""  # open: no merge sha
    assert pulls[43].first_commit_at is None
    assert [(r.location, r.message) for r in records if isinstance(r, BadRecord)] == [
        ("[1][1]", "created_at: “last week” is not a time.")
    ]


def test_releases_deployments_and_issues() -> None:
    records = list(registry["github"].read((SAMPLES / "github_mixed.json").read_bytes()))
    releases = [r for r in records if isinstance(r, ReleaseRecord)]
    assert releases == [
        ReleaseRecord("v2.4.0", at(4, 16), ""),  # target "main" is a branch, not a sha
        ReleaseRecord("v2.4.1", at(6, 12), "9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d"),
    ]
    deployments = {r.external_id: r for r in records if isinstance(r, DeploymentRecord)}
    assert (deployments["7001"].run_id, deployments["7001"].service) == ("run-301", "shop")
    assert deployments["7001"].deployed_at == at(4, 16, 9) and deployments["7001"].succeeded
    assert deployments["7002"].succeeded is False and deployments["7002"].run_id == "7002"
    assert deployments["7003"].succeeded and deployments["7003"].environment == "staging"
    items = [r for r in records if isinstance(r, ItemRecord)]
    assert [(i.external_id, i.item_type) for i in items] == [("#120", "bug"), ("#121", "issue")]
    moves = [(t.item_external_id, t.at, t.to_state) for t in records if isinstance(t, TransitionRecord)]
    assert moves == [("#120", at(1, 9), "open"), ("#120", at(4, 15), "closed"), ("#121", at(2, 10), "open")]
    assert [r.location for r in records if isinstance(r, BadRecord)] == ["[8]"]  # the PR in issues is skipped


def test_not_a_list() -> None:
    with pytest.raises(UnreadableInput, match="list of objects"):
        list(registry["github"].read(b'{"a": 1}'))
    with pytest.raises(UnreadableInput, match="Not valid JSON"):
        list(registry["github"].read(b"[{"))


@pytest.mark.django_db
def test_ingest_twice_creates_nothing_and_a_later_merge_updates() -> None:
    org = Organisation.objects.create(name="Acme", slug="acme")
    source = DeliverySource.objects.create(organisation=org, name="Shop", kind="github")
    for name in ("github_pulls.json", "github_mixed.json"):
        data = (SAMPLES / name).read_bytes()
        first = ingest(source, registry["github"].read(data), run=start_run(source, "github"))
        assert first.created
        again = ingest(source, registry["github"].read(data), run=start_run(source, "github"))
        assert again.created == {}
    merged = (
        b'[{"number": 42, "title": "Draft: new payment provider", "created_at": "2026-02-05T10:00:00Z",'
        b' "merged_at": "2026-02-07T10:00:00Z", "merge_commit_sha": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]'
    )
    run = ingest(source, registry["github"].read(merged), run=start_run(source, "github"))
    assert run.created == {"pull_requests_updated": 1}
    assert PullRequest.objects.get(source=source, number=42).merged_at == at(7, 10)
