"""Fetching a GitHub source from the REST API: against a real HTTP server on 127.0.0.1 (github_fake.py)
that paginates with Link headers, checks the Bearer token and rate-limits on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from truenorth.core.errors import ValidationFailed
from truenorth.delivery.models import (
    DeliveryItem,
    Deployment,
    GitHubConnection,
    ImportRun,
    PullRequest,
    Release,
    StateTransition,
)
from truenorth.delivery.services import github_fetch, sources
from truenorth.delivery.tests import github_fake
from truenorth.delivery.tests.github_fake import REPO, TOKEN, FakeGitHub, issue, pull
from truenorth.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def fake(settings) -> Iterator[FakeGitHub]:
    settings.TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS = True  # the fake listens on loopback
    server = FakeGitHub()
    yield server
    server.close()


@pytest.fixture
def source(member, fake):
    m = member.membership
    created = sources.create_source(m, member.user, name="Payments GitHub", kind="github")
    github_fetch.connect(m, member.user, created.pk, repository=REPO, api_url=fake.api_url, token=TOKEN)
    return created


def fetch(member, source) -> Job:
    return github_fetch.submit_fetch(member.membership, member.user, source.pk)


def test_a_fetch_stores_pull_requests_releases_deployments_and_issues(member, fake, source) -> None:
    job = fetch(member, source)
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = ImportRun.objects.get(pk=job.result["import_id"])
    assert run.importer == "github-api" and run.status == "succeeded"
    # Every request carried the token, and pages were followed by their Link headers.
    assert fake.requests and all(auth == f"Bearer {TOKEN}" for _, auth in fake.requests)
    assert any(
        f"/repositories/{github_fake.REPO_ID}/pulls?" in p and "page=2" in p for p in fake.paths("pulls")
    )

    pulls = {p.number: p for p in PullRequest.objects.filter(source=source)}
    assert set(pulls) == {12, 13, 14}
    squash = pulls[12]  # lead time from its first commit, not the merge
    assert squash.first_commit_at == dt.datetime(2026, 2, 27, 14, tzinfo=UTC)
    assert squash.merge_sha == "a1" * 20 and squash.commit_shas == ["12" * 20, "34" * 20]
    assert pulls[14].merged_at is None and pulls[14].merge_sha == ""
    assert len(fake.paths("/pulls/14/commits")) == 0  # an open pull request's commits are not asked for

    assert list(Release.objects.filter(source=source).values_list("name", "sha")) == [("v2.4.0", "b2" * 20)]
    deployments = {d.external_id: d for d in Deployment.objects.filter(source=source)}
    assert deployments["9001"].succeeded is False and deployments["9000"].succeeded is True
    assert deployments["9000"].deployed_at == dt.datetime(2026, 3, 4, 16, 9, tzinfo=UTC)  # its first success
    assert deployments["9000"].service == "payments" and deployments["9000"].commit_shas == ["a1" * 20]

    items = {i.external_id: i for i in DeliveryItem.objects.filter(source=source)}
    assert set(items) == {"#20", "#21"}  # the pull request listed among issues is not an item
    assert items["#20"].item_type == "bug"
    assert list(StateTransition.objects.filter(item=items["#20"]).values_list("to_state", flat=True)) == [
        "open",
        "closed",
    ]
    # The issue without a number is reported where it was, the others stored.
    assert run.error_count == 1
    assert run.errors[0]["location"] == "issues page 1 [0]" and "number" in run.errors[0]["message"]
    connection = GitHubConnection.objects.get(source=source)
    assert connection.last_fetched_at is not None and connection.last_error == ""
    assert job.result["summary"].startswith("Payments GitHub: ") and job.result["pages"] == len(fake.requests)


def test_a_second_fetch_changes_nothing_and_asks_only_for_what_changed(member, fake, source) -> None:
    fetch(member, source)
    counts = (PullRequest.objects.count(), DeliveryItem.objects.count(), Deployment.objects.count())
    first_requests = len(fake.requests)
    fake.requests.clear()

    again = fetch(member, source)
    assert again.status == JobStatus.SUCCEEDED, again.error
    run = ImportRun.objects.get(pk=again.result["import_id"])
    assert {k: v for k, v in run.created.items()} == {}  # idempotent: nothing new, nothing changed
    assert (PullRequest.objects.count(), DeliveryItem.objects.count(), Deployment.objects.count()) == counts
    # Incremental: issues since the last fetch, no pull request older than it, no commits asked again.
    assert all("since=" in p for p in fake.paths("/issues"))
    assert fake.paths("/commits") == []
    assert len(fake.requests) < first_requests


def test_an_incremental_fetch_picks_up_new_and_changed_objects(member, fake, source) -> None:
    fetch(member, source)
    now = dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake.data["pulls"][2] = pull(14, "New ledger", "2026-03-06T08:00:00Z", now, now, "c3" * 20)
    fake.data["commits"][14] = [github_fake.commit("78" * 20, "2026-03-05T20:00:00Z")]
    fake.data["issues"].append(issue(22, "Ledger totals drift", now, now, labels=("bug",)))
    fake.requests.clear()

    job = fetch(member, source)
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = ImportRun.objects.get(pk=job.result["import_id"])
    assert run.created == {"items": 1, "pull_requests_updated": 1, "transitions": 1}
    merged = PullRequest.objects.get(source=source, number=14)
    assert merged.merge_sha == "c3" * 20 and merged.first_commit_at == dt.datetime(2026, 3, 5, 20, tzinfo=UTC)
    assert fake.paths("/pulls/14/commits") and not fake.paths("/pulls/12/commits")
    assert DeliveryItem.objects.filter(source=source, external_id="#22", item_type="bug").exists()


def test_a_rate_limit_that_resets_soon_is_waited_out(member, fake, source) -> None:
    fake.limits["/pulls"] = [("primary", 1)]  # 403, X-RateLimit-Remaining: 0, reset one second ahead
    fake.limits["/issues"] = [("secondary", 1)]  # 429 with Retry-After: 1
    job = fetch(member, source)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert PullRequest.objects.filter(source=source).count() == 3
    assert DeliveryItem.objects.filter(source=source).count() == 2
    first_pulls = [p for p in fake.paths(f"/repos/{REPO}/pulls?")]
    assert len(first_pulls) == 2  # refused once, then asked again
    assert len([p for p in fake.paths(f"/repos/{REPO}/issues?")]) == 2


def test_a_long_rate_limit_stops_the_fetch_and_keeps_what_was_stored(member, fake, source) -> None:
    fake.limits["/issues"] = [("primary", 3600)]
    job = fetch(member, source)
    assert job.status == JobStatus.FAILED
    assert "rate limit is used up until" in job.error and "Fetch again after" in job.error
    assert job.result["import_id"]
    run = ImportRun.objects.get(pk=job.result["import_id"])
    assert run.status == "failed" and run.errors[-1]["location"] == "issues page 1"
    # Pull requests, releases and deployments came before: they stay.
    assert PullRequest.objects.filter(source=source).count() == 3
    assert Deployment.objects.filter(source=source).count() == 2
    connection = GitHubConnection.objects.get(source=source)
    assert connection.last_fetched_at is None  # the next fetch starts from the same place
    assert "rate limit" in connection.last_error


def test_the_page_cap_is_respected(settings, member, fake, source) -> None:
    settings.TRUENORTH_GITHUB_MAX_PAGES = 3
    job = fetch(member, source)
    assert job.status == JobStatus.FAILED and "Stopped after 3 pages" in job.error
    assert len(fake.requests) == 3
    assert PullRequest.objects.filter(source=source).count() >= 1  # what was read is stored


def test_a_wrong_token_is_a_clear_error(member, fake, source) -> None:
    github_fetch.connect(
        member.membership,
        member.user,
        source.pk,
        repository=REPO,
        api_url=fake.api_url,
        token="ghp_revokedtoken000",
        version=1,
    )
    job = fetch(member, source)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("GitHub refused the token (401 (Bad credentials))")
    assert PullRequest.objects.filter(source=source).count() == 0


def test_a_private_address_is_refused_by_default(settings, member, fake) -> None:
    settings.TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS = False
    m = member.membership
    source = sources.create_source(m, member.user, name="Internal", kind="github")
    for url, message in (
        (fake.api_url, "https://"),
        (f"https://127.0.0.1:{fake.port}/api/v3", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::ffff:10.0.0.1]/api/v3", "private"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            github_fetch.connect(m, member.user, source.pk, repository=REPO, api_url=url, token=TOKEN)
        assert caught.value.field == "api_url" and message in caught.value.message
    # A name is checked when the fetch runs: localhost resolves to loopback, so nothing is sent.
    github_fetch.connect(
        m,
        member.user,
        source.pk,
        repository=REPO,
        api_url=f"https://localhost:{fake.port}/api/v3",
        token=TOKEN,
    )
    job = github_fetch.submit_fetch(m, member.user, source.pk)
    assert job.status == JobStatus.FAILED
    assert (
        "localhost resolves to" in job.error and "TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS is off" in job.error
    )
    assert fake.requests == []


def test_a_next_link_to_another_host_is_not_followed(member, fake, source) -> None:
    fake.next_host = "169.254.169.254"
    job = fetch(member, source)
    assert job.status == JobStatus.FAILED and "next page is on another address" in job.error
    assert fake.paths("/repositories/") == []  # the first page was read, its next link was not followed
    assert PullRequest.objects.filter(source=source).count() == 2  # what the first page gave is stored


def test_redirects_keep_the_token_on_the_same_host_only(member, fake) -> None:
    from truenorth.core import outbound

    def get(path: str) -> outbound.Response:
        return outbound.get(
            f"{fake.api_url}{path}",
            {"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
            allow_private=True,
            setting="TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS",
            max_bytes=1 << 20,
        )

    # A renamed repository: GitHub answers 301 to its new address on the same host.
    fake.redirects["/api/v3/repos/octo-org/old-payments/releases"] = f"/api/v3/repos/{REPO}/releases"
    answer = get("/repos/octo-org/old-payments/releases")
    assert answer.code == 200 and answer.url.endswith(f"/repos/{REPO}/releases")
    assert fake.requests[-1][1] == f"Bearer {TOKEN}"
    # To another host (localhost is not 127.0.0.1 as a host): the token is not sent along.
    fake.redirects["/api/v3/elsewhere"] = f"http://localhost:{fake.port}/api/v3/repos/{REPO}/releases"
    answer = get("/elsewhere")
    assert answer.code == 401 and fake.requests[-1] == (f"/api/v3/repos/{REPO}/releases", "")


def test_a_fetch_already_queued_is_answered_instead_of_a_second_one(member, source) -> None:
    queued = Job.objects.create(
        organisation=source.organisation,
        kind=github_fetch.JOB_KIND,
        created_by=member.user,
        params={"source_id": source.pk},
    )
    assert github_fetch.submit_fetch(member.membership, member.user, source.pk).pk == queued.pk
    assert Job.objects.filter(kind=github_fetch.JOB_KIND).count() == 1


def test_the_file_importer_and_the_fetch_share_the_conversion(member, fake, source) -> None:
    """The same objects saved to a file (`gh api --paginate`) give the same rows as the fetch."""
    import json

    fetch(member, source)
    m = member.membership
    other = sources.create_source(m, member.user, name="From files", kind="github")
    data = github_fake.sample_data()
    for p in data["pulls"]:
        p["commits"] = data["commits"].get(p["number"], [])
    for d in data["deployments"]:
        d["statuses"] = data["statuses"][d["id"]]
    body = json.dumps([*data["pulls"], *data["releases"], *data["deployments"], *data["issues"]])
    run = sources.run_import(other, "github", body.encode(), actor=member.user, file_name="all.json")
    assert run.error_count == 1

    def rows(s):
        return (
            sorted(
                PullRequest.objects.filter(source=s).values_list("number", "first_commit_at", "merge_sha")
            ),
            sorted(
                Deployment.objects.filter(source=s).values_list("external_id", "succeeded", "deployed_at")
            ),
            sorted(Release.objects.filter(source=s).values_list("name", "at")),
            sorted(DeliveryItem.objects.filter(source=s).values_list("external_id", "item_type")),
        )

    assert rows(other) == rows(source)


def test_a_fetch_feeds_the_products_measures_at_once(member, fake, source) -> None:
    from truenorth.measures.models import Measure
    from truenorth.strategy.models import Product

    fetch(member, source)
    assert not Measure.objects.filter(
        catalogue_key__startswith=f"delivery:{source.pk}:"
    ).exists()  # no product
    product = Product.objects.create(organisation=member.membership.organisation, name="Payments")
    sources.update_source(
        member.membership, member.user, source.pk, version=source.version, product_id=product.pk
    )
    now = dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake.data["issues"].append(issue(23, "Refunds time out", now, now, labels=("bug",)))  # something new
    job = fetch(member, source)
    assert job.status == JobStatus.SUCCEEDED, job.error
    fed = Measure.objects.filter(catalogue_key__startswith=f"delivery:{source.pk}:", product=product)
    assert fed.count() == 9
