"""The GitHub connection's faces: the API (GET/PUT/DELETE .../github, POST .../github/fetch), the web page
and `truenorth delivery fetch`; other organisations get 404, the token never comes back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from truenorth import cli
from truenorth.delivery.models import GitHubConnection, ImportRun, PullRequest
from truenorth.delivery.services import github_fetch, sources
from truenorth.delivery.tests.github_fake import REPO, TOKEN, FakeGitHub
from truenorth.history.models import HistoryEntry
from truenorth.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings) -> Iterator[FakeGitHub]:
    settings.TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS = True
    server = FakeGitHub()
    yield server
    server.close()


@pytest.fixture
def source(member):
    return sources.create_source(member.membership, member.user, name="Payments GitHub", kind="github")


def api_url(source, slug: str = "alpha") -> str:
    return f"/api/v1/orgs/{slug}/delivery/sources/{source.pk}/github"


def page_url(source, slug: str = "alpha") -> str:
    return f"/o/{slug}/delivery/sources/{source.pk}/github/"


def put(client, url: str, body: dict) -> Any:
    return client.put(url, data=json.dumps(body), content_type="application/json")


def post(client, url: str, body: dict) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_connect_change_fetch_and_disconnect_through_the_api(member, fake, source) -> None:
    client = member.api()
    answer = client.get(api_url(source))
    assert answer.status_code == 200 and answer.json()["connected"] is False

    answer = put(client, api_url(source), {"repository": REPO, "token": TOKEN, "version": 1})
    assert answer.status_code == 404  # PUT changes a connection; POST makes one
    answer = post(client, api_url(source), {"repository": REPO, "api_url": fake.api_url, "token": TOKEN})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["connected"] and body["token_set"] and body["repository"] == REPO and body["version"] == 1
    assert body["page"] == page_url(source)
    again = post(client, api_url(source), {"repository": REPO, "api_url": fake.api_url, "token": TOKEN})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "source"

    # Changing without the version, or with a stale one, is refused; without a token keeps the token.
    answer = put(client, api_url(source), {"repository": "octo-org/ledger", "api_url": fake.api_url})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "version"
    answer = put(
        client, api_url(source), {"repository": "octo-org/ledger", "api_url": fake.api_url, "version": 7}
    )
    assert answer.status_code == 409
    answer = put(client, api_url(source), {"repository": REPO, "api_url": fake.api_url, "version": 1})
    assert answer.status_code == 200 and answer.json()["version"] == 1  # unchanged: nothing written

    answer = client.post(f"{api_url(source)}/fetch")
    assert answer.status_code == 202, answer.content
    job = answer.json()
    assert job["status"] == "succeeded" and answer["Location"] == job["url"]
    assert PullRequest.objects.filter(source=source).count() == 3
    answer = client.get(f"/api/v1/orgs/alpha/delivery/imports/{job['result']['import_id']}")
    assert answer.status_code == 200 and answer.json()["importer"] == "github-api"
    assert client.get(api_url(source)).json()["last_fetched_at"] is not None

    answer = client.delete(f"{api_url(source)}?version=1")
    assert answer.status_code == 204
    assert not GitHubConnection.objects.filter(source=source).exists()
    assert PullRequest.objects.filter(source=source).count() == 3  # the data stays
    answer = client.post(f"{api_url(source)}/fetch")
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "source"


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"repository": "not a repo", "token": TOKEN}, "repository", "owner/name"),
        ({"repository": "octo-org/..", "token": TOKEN}, "repository", "owner/name"),
        (
            {"repository": REPO, "api_url": "http://github.example.com/api/v3", "token": TOKEN},
            "api_url",
            "https://",
        ),
        ({"repository": REPO, "api_url": "ftp://github.example.com", "token": TOKEN}, "api_url", "https://"),
        (
            {"repository": REPO, "api_url": "https://user:pw@github.example.com", "token": TOKEN},
            "api_url",
            "password",
        ),
        ({"repository": REPO, "api_url": "https://10.0.0.7/api/v3", "token": TOKEN}, "api_url", "private"),
        ({"repository": REPO}, "token", "Give a token"),
        ({"repository": REPO, "token": "two words"}, "token", "without spaces"),
    ],
)
def test_bad_input_names_the_field(member, source, body, field, fragment) -> None:
    answer = post(member.api(), api_url(source), body)
    assert answer.status_code == 422, answer.content
    error = answer.json()
    assert error["errors"][0]["field"] == field and fragment in error["detail"]
    assert not GitHubConnection.objects.exists()


def test_a_source_of_another_kind_cannot_connect(member) -> None:
    jira = sources.create_source(member.membership, member.user, name="Tickets", kind="jira")
    answer = post(member.api(), api_url(jira), {"repository": REPO, "token": TOKEN})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "source"


def test_another_organisation_gets_404_everywhere(member, outsider, fake, source) -> None:
    github_fetch.connect(
        member.membership, member.user, source.pk, repository=REPO, api_url=fake.api_url, token=TOKEN
    )
    for slug in ("alpha", "bravo-secret"):
        client = outsider.api()
        assert client.get(api_url(source, slug)).status_code == 404
        assert (
            put(
                client, api_url(source, slug), {"repository": "evil/repo", "token": "x", "version": 1}
            ).status_code
            == 404
        )
        assert (
            post(client, api_url(source, slug), {"repository": "evil/repo", "token": "x"}).status_code == 404
        )
        assert client.delete(f"{api_url(source, slug)}?version=1").status_code == 404
        assert client.post(f"{api_url(source, slug)}/fetch").status_code == 404
        web = outsider.client
        assert web.get(page_url(source, slug)).status_code == 404
        assert web.post(page_url(source, slug), {"repository": "evil/repo", "version": 1}).status_code == 404
        assert web.post(f"{page_url(source, slug)}fetch/").status_code == 404
        assert web.post(f"{page_url(source, slug)}disconnect/", {"version": 1}).status_code == 404
    connection = GitHubConnection.objects.get(source=source)
    assert connection.repository == REPO and connection.version == 1
    assert not Job.objects.exists() and fake.requests == []


def test_readers_cannot_connect_or_fetch(member, stakeholder, fake, source) -> None:
    github_fetch.connect(
        member.membership, member.user, source.pk, repository=REPO, api_url=fake.api_url, token=TOKEN
    )
    client = stakeholder.api()
    assert client.get(api_url(source)).status_code == 200
    assert put(client, api_url(source), {"repository": "a/b", "version": 1}).status_code == 403
    assert client.post(f"{api_url(source)}/fetch").status_code == 403
    page = stakeholder.client.get(page_url(source))
    assert page.status_code == 200 and b"Fetch now" not in page.content


def test_the_token_never_comes_back(member, fake, source) -> None:
    client = member.api()
    assert (
        post(
            client, api_url(source), {"repository": REPO, "api_url": fake.api_url, "token": TOKEN}
        ).status_code
        == 201
    )
    put(
        client,
        api_url(source),
        {"repository": REPO, "api_url": fake.api_url, "token": TOKEN + "2", "version": 1},
    )
    put(client, api_url(source), {"repository": REPO, "api_url": fake.api_url, "token": TOKEN, "version": 2})
    client.post(f"{api_url(source)}/fetch")
    # A failing fetch too: its error message must not quote the token either.
    fake.limits["/pulls"] = [("primary", 3600)]
    client.post(f"{api_url(source)}/fetch")
    # A form sent back with an error does not echo the token.
    bad_form = member.client.post(
        page_url(source), {"repository": "not a repo", "api_url": fake.api_url, "token": TOKEN, "version": 3}
    )
    assert bad_form.status_code == 422

    seen = [
        client.get(api_url(source)).content.decode(),
        member.client.get(page_url(source)).content.decode(),
        member.client.get(f"/o/alpha/delivery/sources/{source.pk}/").content.decode(),
        bad_form.content.decode(),
        client.get(f"/api/v1/orgs/alpha/delivery/sources/{source.pk}/imports").content.decode(),
        client.get("/api/v1/orgs/alpha/jobs").content.decode(),
        json.dumps(list(HistoryEntry.objects.values("changes", "object_repr")), default=str),
        json.dumps(list(Job.objects.values("params", "result", "error")), default=str),
        json.dumps(list(ImportRun.objects.values("file_name", "errors")), default=str),
        GitHubConnection.objects.get(source=source).token_encrypted,
    ]
    assert Job.objects.filter(status=JobStatus.FAILED).count() == 1
    for text in seen:
        assert TOKEN not in text and TOKEN[:20] not in text
    history = HistoryEntry.objects.filter(object_type="delivery.githubconnection").order_by("at", "id")
    changes = [e.changes for e in history]
    assert changes[0]["token"] == {"old": None, "new": "(set)"}
    assert changes[1]["token"] == {"old": "(hidden)", "new": "(changed)"}


def test_the_page_connects_fetches_and_saves_nothing_when_unchanged(member, fake, source) -> None:
    web = member.client
    page = web.get(page_url(source))
    assert page.status_code == 200 and b"Connect" in page.content
    answer = web.post(page_url(source), {"repository": REPO, "api_url": fake.api_url, "token": TOKEN})
    assert answer.status_code == 302
    connection = GitHubConnection.objects.get(source=source)
    entries = HistoryEntry.objects.count()
    # The edit form as shown, sent back unchanged (token left blank): nothing changes.
    answer = web.post(
        page_url(source), {"repository": REPO, "api_url": fake.api_url, "token": "", "version": 1}
    )
    assert answer.status_code == 302
    connection.refresh_from_db()
    assert connection.version == 1 and HistoryEntry.objects.count() == entries
    answer = web.post(
        page_url(source), {"repository": "octo-org/ledger", "api_url": fake.api_url, "version": 9}
    )
    assert answer.status_code == 422 and "changed by someone else" in answer.content.decode()

    answer = web.post(f"{page_url(source)}fetch/")
    job = Job.objects.get(kind=github_fetch.JOB_KIND)
    assert answer.status_code == 302 and answer["Location"] == f"/o/alpha/jobs/{job.pk}/"
    assert job.status == JobStatus.SUCCEEDED
    page = web.get(page_url(source)).content.decode()
    assert "github-fetches" in page and "3 pull requests" in page
    assert f'href="{page_url(source)}"' in web.get(f"/o/alpha/delivery/sources/{source.pk}/").content.decode()


@pytest.fixture
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def run(capsys, persona, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--org", "alpha", "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("_no_identity_from_environment")
def test_the_command_connects_and_fetches(capsys, monkeypatch, member, fake, source) -> None:
    code, _, err = run(capsys, member, "delivery", "fetch", "Payments GitHub")
    assert (
        code == 2 and err.startswith("error: ") and "Connect the source" in err and len(err.splitlines()) == 1
    )
    code, _, err = run(
        capsys, member, "delivery", "fetch", "Payments GitHub", "--repository", REPO, "--token-env", "GH_NOPE"
    )
    assert code == 2 and "GH_NOPE is empty or not set" in err

    monkeypatch.setenv("GH_TOKEN", TOKEN)
    code, out, err = run(
        capsys, member, "delivery", "fetch", "payments github",
        "--repository", REPO, "--token-env", "GH_TOKEN", "--api-url", fake.api_url,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("Payments GitHub: ") and "3 pull requests" in out and "issues page 1 [0]" in out
    assert TOKEN not in out + err
    code, out, err = run(capsys, member, "delivery", "fetch", "Payments GitHub", "--json")
    assert code == 0, err
    assert json.loads(out)["created"] == {} and json.loads(out)["stopped"] == ""

    fake.limits["/pulls"] = [("primary", 3600)]
    code, out, err = run(capsys, member, "delivery", "fetch", "Payments GitHub")
    assert code == 2 and "rate limit is used up" in err and out.startswith("Payments GitHub: ")
