"""The git importer on a real repository built here: commits, a merge commit, branches, tags."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from truenorth.delivery.importers import UnreadableInput, registry
from truenorth.delivery.importers.base import BranchesComplete, BranchRecord, CommitRecord, ReleaseRecord
from truenorth.delivery.models import Branch, Commit, DeliverySource, Release
from truenorth.delivery.services.ingest import ingest, start_run
from truenorth.orgs.models import Organisation


def git(repo: Path, *args: str, when: str = "2026-03-01T10:00:00+01:00") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_AUTHOR_NAME": "Ana",
        "GIT_AUTHOR_EMAIL": "ana@example.com",
        "GIT_COMMITTER_NAME": "Ana",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def commit(repo: Path, name: str, when: str) -> str:
    (repo / name).write_text(name)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", name, when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, str | Path]:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    first = commit(path, "a", "2026-03-01T10:00:00+01:00")
    git(path, "tag", "v0.1")  # lightweight: dated by its commit
    git(path, "checkout", "-q", "-b", "feature")
    feature = commit(path, "b", "2026-03-02T09:00:00+00:00")
    git(path, "checkout", "-q", "main")
    second = commit(path, "c", "2026-03-02T12:00:00+00:00")
    git(path, "merge", "-q", "--no-ff", "feature", "-m", "Merge feature", when="2026-03-03T08:00:00+00:00")
    merge = git(path, "rev-parse", "HEAD")
    git(path, "tag", "-a", "v1.0", "-m", "Release 1.0", when="2026-03-04T16:00:00+00:00")
    return {"path": path, "first": first, "feature": feature, "second": second, "merge": merge}


def test_commits_merges_and_tags(repo: dict) -> None:
    records = list(registry["git"].read(repo["path"]))
    commits = {r.sha: r for r in records if isinstance(r, CommitRecord)}
    assert set(commits) == {repo["first"], repo["feature"], repo["second"], repo["merge"]}
    assert [sha for sha, c in commits.items() if c.is_merge] == [repo["merge"]]
    first = commits[repo["first"]]
    assert first.committed_at == dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert first.committed_at.utcoffset() == dt.timedelta(hours=1)  # the committer's zone is kept
    assert commits[repo["merge"]].branch == "main"
    releases = sorted((r.name, r.sha, r.at) for r in records if isinstance(r, ReleaseRecord))
    assert releases == [
        ("v0.1", repo["first"], dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)),
        ("v1.0", repo["merge"], dt.datetime(2026, 3, 4, 16, 0, tzinfo=dt.UTC)),  # annotated: peeled, tag date
    ]
    branches = sorted(
        (r.name, r.head_sha, r.last_commit_at, r.remote) for r in records if isinstance(r, BranchRecord)
    )
    assert branches == [
        ("feature", repo["feature"], dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC), False),
        ("main", repo["merge"], dt.datetime(2026, 3, 3, 8, 0, tzinfo=dt.UTC), False),
    ]
    assert isinstance(records[-1], BranchesComplete)  # the listing is whole: missing branches were deleted


def test_remote_branches_count_and_their_head_symref_is_skipped(repo: dict, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo["path"]), str(clone)], check=True, capture_output=True)
    records = list(registry["git"].read(clone))
    names = sorted((r.name, r.remote) for r in records if isinstance(r, BranchRecord))
    assert names == [("main", False), ("origin/feature", True), ("origin/main", True)]  # not origin/HEAD


@pytest.mark.django_db
def test_ingest_is_idempotent_and_incremental(repo: dict) -> None:
    org = Organisation.objects.create(name="Acme", slug="acme")
    source = DeliverySource.objects.create(organisation=org, name="Repo", kind="git")
    run = ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    assert run.created == {"branches": 2, "commits": 4, "releases": 2}
    again = ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    assert again.created == {} and again.unchanged == 8
    commit(repo["path"], "d", "2026-03-05T10:00:00+00:00")
    later = ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    assert later.created == {"branches_updated": 1, "commits": 1} and later.unchanged == 7
    assert Commit.objects.filter(source=source, is_merge=True).get().sha == repo["merge"]
    assert Release.objects.filter(source=source).count() == 2
    main = Branch.objects.get(source=source, name="main")
    assert main.last_commit_at == dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC) and main.deleted_at is None


@pytest.mark.django_db
def test_a_branch_gone_from_the_repository_is_marked_deleted_not_removed(repo: dict) -> None:
    org = Organisation.objects.create(name="Acme", slug="acme")
    source = DeliverySource.objects.create(organisation=org, name="Repo", kind="git")
    ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    git(repo["path"], "branch", "-q", "-D", "feature")
    run = ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    assert run.created == {"branches_deleted": 1}
    feature = Branch.objects.get(source=source, name="feature")
    assert feature.deleted_at is not None and feature.head_sha == repo["feature"]
    assert Branch.objects.get(source=source, name="main").deleted_at is None
    again = ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    assert again.created == {} and Branch.objects.get(pk=feature.pk).deleted_at == feature.deleted_at
    git(repo["path"], "branch", "-q", "feature", repo["feature"])  # restored: live again
    back = ingest(source, registry["git"].read(repo["path"]), run=start_run(source, "git"))
    assert back.created == {"branches_updated": 1}
    assert Branch.objects.get(pk=feature.pk).deleted_at is None


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput, match="not a git repository"):
        list(registry["git"].read(tmp_path))
    with pytest.raises(UnreadableInput, match="on disk"):
        list(registry["git"].read(b"bytes"))


def test_an_empty_repository_has_nothing(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert list(registry["git"].read(tmp_path)) == [BranchesComplete()]  # no commit, no branch
