"""Delivery sources and imports: the service (versions, names, state mapping, history), the API
(CRUD, imports as jobs, path confinement, size cap), the pages; other organisations see nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.delivery.models import DeliveryItem, DeliverySource, ImportRun, ImportStatus
from truenorth.delivery.services import sources
from truenorth.history.models import HistoryEntry
from truenorth.jobs.models import Job, JobStatus
from truenorth.measures.sources import organisation_directory
from truenorth.strategy.models import Product, Team

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "samples"
API = "/api/v1/orgs/alpha/delivery"


def make(member, **kwargs) -> DeliverySource:
    values = {"name": "Payments Jira", "kind": "jira"} | kwargs
    return sources.create_source(member.membership, member.user, **values)


# --- the service --------------------------------------------------------------------------------


def test_create_update_archive_with_versions_and_history(member, org_a) -> None:
    product = Product.objects.create(organisation=org_a, name="Payments")
    team = Team.objects.create(organisation=org_a, name="Payments team")
    source = make(
        member,
        product_id=product.pk,
        team_id=team.pk,
        state_mapping={"started": ["In Progress", " in  review "], "done": ["Done"], "waiting": []},
    )
    assert source.state_mapping == {"started": ["In Progress", "in review"], "done": ["Done"]}
    assert (source.product, source.team, source.version) == (product, team, 1)
    same = sources.update_source(member.membership, member.user, source.pk, version=1, name="Payments Jira")
    assert same.version == 1  # nothing changed: no version, no history
    changed = sources.update_source(
        member.membership, member.user, source.pk, version=1, production_environment="prod", team_id=None
    )
    assert (changed.version, changed.production_environment, changed.team) == (2, "prod", None)
    with pytest.raises(Conflict) as stale:
        sources.update_source(member.membership, member.user, source.pk, version=1, name="Other")
    assert stale.value.field == "version"
    sources.archive_source(member.membership, member.user, source.pk, version=2)
    assert sources.sources_of(member.membership).count() == 0
    actions = list(
        HistoryEntry.objects.filter(object_id=str(source.pk), object_type__icontains="deliverysource")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["created", "updated", "archived"]


def test_names_are_unique_per_organisation_case_insensitively(member, outsider) -> None:
    make(member)
    with pytest.raises(Conflict):
        make(member, name="payments JIRA")
    sources.create_source(outsider.membership, outsider.user, name="Payments Jira", kind="jira")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("In Progress", "object"),
        ({"begun": ["x"]}, "Unknown state categories: begun"),
        ({"started": "In Progress"}, "list of state names"),
        ({"started": [1]}, "list of state names"),
        ({"started": ["Doing"], "done": ["doing"]}, "in both"),
        ({"done": ["x" * 61]}, "60 characters"),
    ],
)
def test_state_mapping_is_checked(member, mapping, message) -> None:
    with pytest.raises(ValidationFailed, match=message) as error:
        make(member, state_mapping=mapping)
    assert error.value.field == "state_mapping"


def test_product_and_team_of_another_organisation_are_refused(member, org_b) -> None:
    theirs = Product.objects.create(organisation=org_b, name="Theirs")
    team = Team.objects.create(organisation=org_b, name="Theirs")
    with pytest.raises(ValidationFailed) as product:
        make(member, product_id=theirs.pk)
    assert product.value.field == "product_id"
    with pytest.raises(ValidationFailed) as other_team:
        make(member, team_id=team.pk)
    assert other_team.value.field == "team_id"


def test_stakeholders_read_but_do_not_write(member, stakeholder, outsider) -> None:
    source = make(member)
    assert sources.get_source(stakeholder.membership, source.pk) == source
    with pytest.raises(Forbidden):
        make(stakeholder, name="Mine")
    with pytest.raises(NotFound):
        sources.get_source(outsider.membership, source.pk)


def test_importer_must_fit_the_source(member) -> None:
    source = make(member)
    with pytest.raises(ValidationFailed, match="feeds Git repository") as error:
        sources.check_importer(source, "git")
    assert error.value.field == "importer"
    assert sources.check_importer(source, "events") == "events"  # the generic format feeds any source
    with pytest.raises(ValidationFailed):
        sources.check_importer(source, "nope")


# --- the API ------------------------------------------------------------------------------------


def test_api_crud(member, outsider, org_a) -> None:
    client = member.api()
    product = Product.objects.create(organisation=org_a, name="Payments")
    created = client.post(
        f"{API}/sources",
        {"name": "Web", "kind": "events", "product_id": product.pk, "state_mapping": {"done": ["Shipped"]}},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state_mapping"] == {"done": ["Shipped"]} and body["version"] == 1
    assert body["page"] == f"/o/alpha/delivery/sources/{body['id']}/"
    url = f"{API}/sources/{body['id']}"
    assert client.get(url).json()["name"] == "Web"
    patched = client.patch(url, {"version": 1, "product_id": None}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["product_id"] is None
    stale = client.patch(url, {"version": 1, "name": "X"}, content_type="application/json")
    assert stale.status_code == 409
    bad = client.patch(url, {"version": 2, "state_mapping": {"done": "x"}}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state_mapping"
    archived = client.post(f"{url}/archive", {"version": 2}, content_type="application/json")
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert client.get(f"{API}/sources").json() == []
    assert len(client.get(f"{API}/sources?archived=true").json()) == 1
    assert outsider.api().get(url).status_code == 404
    assert outsider.api().get(f"{API}/sources").status_code == 404


def test_api_import_a_file_as_a_job_and_read_the_run(member, outsider) -> None:
    source = make(member)
    client = member.api()
    data = (SAMPLES / "jira_export.csv").read_bytes()
    response = client.post(
        f"{API}/sources/{source.pk}/imports",
        {"importer": "jira", "file": SimpleUploadedFile("export.csv", data, "text/csv")},
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert "5 items, 3 transitions new" in job.result["summary"]
    run = ImportRun.objects.get(pk=job.result["import_id"])
    assert run.job == job and run.file_name == "export.csv" and run.created_by == member.user
    listed = client.get(f"{API}/sources/{source.pk}/imports").json()
    assert [r["id"] for r in listed] == [run.pk]
    one = client.get(f"{API}/imports/{run.pk}").json()
    assert one["error_count"] == 2 and one["errors"][0] == {
        "location": "line 6",
        "message": "Created: “yesterday” is not a date Jira writes (e.g. 12/Mar/26 9:15 AM or 2026-03-12 09:15).",
    }
    # Again: nothing new.
    client.post(
        f"{API}/sources/{source.pk}/imports",
        {"importer": "jira", "file": SimpleUploadedFile("export.csv", data, "text/csv")},
    )
    latest = ImportRun.objects.order_by("-id").first()
    assert latest is not None and latest.created == {}
    assert DeliveryItem.objects.filter(source=source).count() == 5
    assert outsider.api().get(f"{API}/imports/{run.pk}").status_code == 404


def test_api_import_refusals(member, stakeholder, settings) -> None:
    source = make(member)
    url = f"{API}/sources/{source.pk}/imports"
    client = member.api()
    missing = client.post(url, {"importer": "jira"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "file"
    unknown = client.post(url, {"importer": "nope", "file": SimpleUploadedFile("a.csv", b"x\n")})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "importer"
    settings.TRUENORTH_IMPORT_MAX_FILE_BYTES = 10
    big = client.post(url, {"importer": "jira", "file": SimpleUploadedFile("a.csv", b"x" * 11)})
    assert big.status_code == 413
    read_only = stakeholder.api().post(url, {"importer": "jira", "file": SimpleUploadedFile("a.csv", b"x\n")})
    assert read_only.status_code == 403
    assert Job.objects.count() == 0


def test_an_unreadable_file_fails_the_job_with_the_reason(member) -> None:
    source = make(member, kind="events", name="Events")
    response = member.api().post(
        f"{API}/sources/{source.pk}/imports",
        {"importer": "events-csv", "file": SimpleUploadedFile("e.csv", b"when,what\n1,2\n")},
    )
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED and "needs the columns kind, id and at" in job.error
    run = ImportRun.objects.get(source=source)
    assert run.status == ImportStatus.FAILED and run.errors[0]["location"] == "input"


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x"}  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q")
    (path / "f").write_text("x")
    _git(path, "add", "f")
    _git(path, "commit", "-qm", "first")
    _git(path, "tag", "v1")
    return path


def test_git_paths_only_inside_the_organisations_directory(member, org_a, tmp_path) -> None:
    source = make(member, kind="git", name="Repo")
    url = f"{API}/sources/{source.pk}/imports"
    client = member.api()
    inside = _repo(organisation_directory(org_a) / "repos" / "app")
    ok = client.post(url, {"importer": "git", "path": "repos/app"})  # relative: inside the directory
    assert ok.status_code == 202, ok.content
    job = Job.objects.get(pk=ok.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["created"] == {"branches": 1, "commits": 1, "releases": 1}
    assert client.post(url, {"importer": "git", "path": str(inside)}).status_code == 202
    outside = _repo(tmp_path / "elsewhere")
    for path in (str(outside), "../../elsewhere", "repos/../../org-999999"):
        refused = client.post(url, {"importer": "git", "path": path})
        assert refused.status_code == 422, path
        assert refused.json()["errors"][0]["field"] == "path"
    link = organisation_directory(org_a) / "sneaky"
    link.symlink_to(outside)
    refused = client.post(url, {"importer": "git", "path": "sneaky"})
    assert refused.status_code == 422 and str(outside) not in refused.json()["detail"]
    empty = client.post(url, {"importer": "git"})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "path"


def test_the_job_checks_the_path_again(member, org_a, tmp_path) -> None:
    """A link swapped after the request is refused when the job runs."""
    source = make(member, kind="git", name="Repo")
    outside = _repo(tmp_path / "elsewhere")
    job = Job.objects.create(
        organisation=org_a,
        kind=sources.JOB_KIND,
        created_by=member.user,
        params={"source_id": source.pk, "importer": "git", "path": str(outside)},
    )
    from truenorth.jobs.services import execute

    execute(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "outside this organisation's directories" in job.error
    assert not ImportRun.objects.exists()


# --- pages --------------------------------------------------------------------------------------


def test_pages_list_add_edit_upload_archive(member, outsider) -> None:
    client = member.client
    assert client.get("/o/alpha/delivery/sources/").status_code == 200
    added = client.post(
        "/o/alpha/delivery/sources/",
        {
            "name": "Tickets",
            "kind": "jira",
            "production_environment": "production",
            "started": "In Progress\nIn Review",
            "done": "Done",
        },
    )
    assert added.status_code == 302
    source = DeliverySource.objects.get(name="Tickets")
    assert source.state_mapping == {"started": ["In Progress", "In Review"], "done": ["Done"]}
    page = client.get(added.url)
    assert page.status_code == 200 and b"Import" in page.content
    edit_url = f"/o/alpha/delivery/sources/{source.pk}/edit/"
    form = client.get(edit_url)
    assert form.status_code == 200 and b"In Progress\nIn Review" in form.content
    saved = client.post(
        edit_url,
        {
            "name": "Tickets",
            "kind": "jira",
            "production_environment": "production",
            "started": "In Progress\nIn Review",
            "done": "Done",
            "version": 1,
        },
    )
    assert saved.status_code == 302
    source.refresh_from_db()
    assert source.version == 1  # unchanged: nothing written
    dup = client.post(
        "/o/alpha/delivery/sources/", {"name": "tickets", "kind": "jira", "production_environment": "p"}
    )
    assert dup.status_code == 422 and "already exists" in dup.content.decode()
    upload = client.post(
        f"/o/alpha/delivery/sources/{source.pk}/import/",
        {
            "importer": "jira",
            "file": SimpleUploadedFile("c.json", (SAMPLES / "jira_changelog.json").read_bytes()),
        },
    )
    assert upload.status_code == 302 and "/jobs/" in upload.url
    detail = client.get(f"/o/alpha/delivery/sources/{source.pk}/").content.decode()
    assert "issues[3]" in detail and "An issue needs a key." in detail
    bad = client.post(f"/o/alpha/delivery/sources/{source.pk}/import/", {"importer": "jira"})
    assert bad.status_code == 422
    archived = client.post(f"/o/alpha/delivery/sources/{source.pk}/archive/", {"version": 1})
    assert archived.status_code == 302
    source.refresh_from_db()
    assert source.archived_at is not None
    for url in ("/o/alpha/delivery/sources/", f"/o/alpha/delivery/sources/{source.pk}/", edit_url):
        assert outsider.client.get(url).status_code == 404


def test_run_summary_names_every_count() -> None:
    run = ImportRun(
        created={
            "commits": 3,
            "incidents": 1,
            "branches": 1,
            "pull_requests": 1,
            "items": 0,
            "pulls_updated": 2,
            "branches_deleted": 1,
            "incident_links": 2,
        },
        unchanged=5,
        error_count=1,
    )
    assert sources.run_summary(run) == (
        "3 commits, 1 incident, 1 branch, 1 pull request new; 2 updated; 1 branches marked deleted; "
        "2 incidents linked; 5 unchanged; 1 bad record"
    )
    assert sources.run_summary(ImportRun(created={}, unchanged=0)) == "nothing new; 0 unchanged"


def test_readers_are_not_shown_edit_forms_they_cannot_save(member, stakeholder) -> None:
    from truenorth.delivery.services import process

    source = make(member)
    product = Product.objects.create(organisation=member.membership.organisation, name="Pay")
    change = process.create_change(
        member.membership, member.user, product_id=product.pk, title="WIP limit", changed_on="2026-05-04"
    )
    for url in (
        f"/o/alpha/delivery/sources/{source.pk}/edit/",
        f"/o/alpha/delivery/changes/{change.pk}/edit/",
    ):
        assert stakeholder.client.get(url).status_code == 403
        assert member.client.get(url).status_code == 200
    overview = member.client.get("/o/alpha/delivery/").content.decode()
    assert 'href="/o/alpha/delivery/sources/"' in overview
