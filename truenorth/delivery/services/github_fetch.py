"""Fetching a GitHub source from the REST API with a token.

A source of kind "github" may have a `GitHubConnection`: the repository (`owner/name`), the API's address
(https://api.github.com, or `https://HOST/api/v3` for GitHub Enterprise Server) and a token, stored
encrypted (`measures.sources.seal`) and never shown back, logged or put in the history ("leave blank to
keep" when editing). Members and above connect, change, disconnect and fetch; a stale `version` is 409.

A fetch (`submit_fetch` → background job "delivery.github_fetch"; the CLI calls `run_fetch` directly)
reads pull requests (`state=all`, newest update first; each merged one's `/pulls/{n}/commits`, so squash
and rebase merges keep their first commit), releases, deployments (each with its `/statuses`) and
issues, turns every object into records with the file importer's own conversion
(`importers.github.object_records`) and stores them with `ingest` in one ImportRun (importer
"github-api"): idempotent, bad objects reported at `pulls page 3 [12]`. After a fetch that completed,
the next one is incremental: issues `since=` the last fetch's start, pull requests until one updated
before it, releases until one created before it, deployments until one created a day before it
(statuses settle). A merged pull request already stored with its first commit is not asked for its
commits again. Limits, rate limits and the network rules: `truenorth/delivery/github_client.py`.

A fetch that stops early (rate limit, page or time cap, refused token) keeps what it stored: the run is
marked failed with the reason, `last_error` says it, and the next fetch starts from the same cursor.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core import outbound
from truenorth.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from truenorth.core.validate import check_version
from truenorth.delivery.github_client import (
    EndpointUnavailable,
    FetchStopped,
    GitHubClient,
    Limits,
)
from truenorth.delivery.importers._common import parse_time
from truenorth.delivery.importers.base import BadRecord, PullRecord, Record
from truenorth.delivery.importers.github import object_records
from truenorth.delivery.models import (
    DEFAULT_GITHUB_API_URL,
    DeliverySource,
    GitHubConnection,
    ImportRun,
    ImportStatus,
    PullRequest,
    SourceKind,
)
from truenorth.delivery.services import feed
from truenorth.delivery.services.ingest import Changes, ingest, start_run
from truenorth.delivery.services.sources import get_source
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.jobs import services as jobs
from truenorth.jobs.models import ACTIVE, Job
from truenorth.measures.sources import seal, unseal
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer

JOB_KIND = "delivery.github_fetch"
IMPORTER = "github-api"
FIELDS = ("repository", "api_url")  # what the history records (never the token)
OVERLAP = dt.timedelta(minutes=5)  # cursors start a little before the last fetch (clock skew)
DEPLOYMENT_SETTLE = dt.timedelta(days=1)  # a deployment's statuses may still change that long
MAX_TOKEN_LENGTH = 500
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: it goes into a header

Progress = Callable[[int, int], None]


# --- settings -------------------------------------------------------------------------------------


def allow_private() -> bool:
    return bool(getattr(settings, "TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS", False))


def limits() -> Limits:
    return Limits(
        max_pages=max(1, int(getattr(settings, "TRUENORTH_GITHUB_MAX_PAGES", 200))),
        timeout=max(1.0, float(getattr(settings, "TRUENORTH_GITHUB_TIMEOUT_SECONDS", 30))),
        max_seconds=max(1.0, float(getattr(settings, "TRUENORTH_GITHUB_FETCH_MAX_SECONDS", 1800))),
        max_wait=max(0.0, float(getattr(settings, "TRUENORTH_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS", 60))),
        allow_private=allow_private(),
    )


# --- checking input -------------------------------------------------------------------------------


def clean_repository(raw: Any) -> str:
    """`owner/name` (a pasted https://github.com/owner/name[.git] is read too)."""
    text = str(raw or "").strip()
    for prefix in ("https://github.com/", "http://github.com/", "github.com/"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    text = text.strip("/")
    if text.endswith(".git"):
        text = text[:-4]
    owner, _, name = text.partition("/")
    if not text:
        raise ValidationFailed("Give the repository as owner/name.", field="repository")
    if not _OWNER.match(owner) or not _NAME.match(name) or name in (".", ".."):
        raise ValidationFailed(
            f"“{str(raw)[:100]}” is not a repository: write owner/name, e.g. octo-org/payments.",
            field="repository",
        )
    return f"{owner}/{name}"


def clean_api_url(raw: Any) -> str:
    """The API's address: https (http only where private networks are allowed), no query, no user;
    an address given as an IP literal must be public unless private networks are allowed."""
    text = str(raw or "").strip().rstrip("/") or DEFAULT_GITHUB_API_URL
    try:
        scheme, host, port, _ = outbound.check_url(text)
    except outbound.UrlRefused as exc:
        raise ValidationFailed(str(exc).replace("receiver's URL", "API address"), field="api_url") from None
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ValidationFailed("The API address has no query or fragment.", field="api_url")
    if scheme != "https" and not allow_private():
        raise ValidationFailed("The API address must start with https://.", field="api_url")
    if not allow_private() and outbound.is_ip_literal(host):  # names are checked before each request
        try:
            outbound.pick_address(
                host, port, allow_private=False, setting="TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS"
            )
        except outbound.UrlRefused as exc:
            raise ValidationFailed(str(exc), field="api_url") from None
    return text


def clean_token(raw: Any) -> str:
    token = str(raw or "").strip()
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.match(token):
        raise ValidationFailed(
            f"A token is up to {MAX_TOKEN_LENGTH} printable characters without spaces.", field="token"
        )
    return token


# --- reading --------------------------------------------------------------------------------------


def _github_source(membership: Membership, source_id: int) -> DeliverySource:
    source = get_source(membership, source_id)
    if source.kind != SourceKind.GITHUB:
        raise ValidationFailed(
            f"“{source.name}” is a {source.get_kind_display()} source; only GitHub sources fetch from GitHub.",
            field="source",
        )
    return source


def connection_of(membership: Membership, source_id: int) -> GitHubConnection | None:
    """The source's connection (None when not connected); another organisation's source is 404."""
    source = get_source(membership, source_id)
    return GitHubConnection.objects.filter(source=source).select_related("source").first()


def describe(source: DeliverySource, connection: GitHubConnection | None) -> dict[str, Any]:
    """The connection for the page and the API: never the token (only whether one is stored)."""
    last = ImportRun.objects.filter(source=source, importer=IMPORTER).order_by("-started_at", "-id").first()
    return {
        "source_id": source.pk,
        "connected": connection is not None,
        "repository": connection.repository if connection else "",
        "api_url": connection.api_url if connection else DEFAULT_GITHUB_API_URL,
        "token_set": bool(connection and connection.token_encrypted),
        "last_fetched_at": connection.last_fetched_at if connection else None,
        "last_error": connection.last_error if connection else "",
        "last_import_id": last.pk if last else None,
        "version": connection.version if connection else 0,
    }


def fetches_of(membership: Membership, source_id: int) -> list[ImportRun]:
    source = get_source(membership, source_id)
    return list(
        ImportRun.objects.filter(source=source, importer=IMPORTER)
        .select_related("created_by")
        .order_by("-started_at", "-id")[:20]
    )


# --- writing --------------------------------------------------------------------------------------


@transaction.atomic
def connect(
    membership: Membership,
    actor: User | None,
    source_id: int,
    *,
    repository: Any,
    api_url: Any = None,
    token: Any = None,
    version: int | None = None,
    create_only: bool = False,
    change_only: bool = False,
) -> GitHubConnection:
    """Connect the source (a token is required the first time) or change its connection (a blank token
    keeps the stored one; `version` is the connection's, a stale one is 409). An unchanged save writes
    nothing. `create_only`: an existing connection is a 409; `change_only`: a missing one is a 404."""
    require_writer(membership)
    source = _github_source(membership, source_id)
    DeliverySource.objects.select_for_update().filter(pk=source.pk).values_list("pk").first()
    repository = clean_repository(repository)
    api_url = clean_api_url(api_url)
    given = str(token or "").strip()
    secret = clean_token(given) if given else ""
    connection = GitHubConnection.objects.filter(source=source).first()
    if connection is not None and create_only:
        raise Conflict("This source is already connected; change its connection instead.", field="source")
    if connection is None and change_only:
        raise NotFound("This source is not connected to the GitHub API.")
    if connection is None:
        if not secret:
            raise ValidationFailed(
                "Give a token (a fine-grained token that can read the repository).", field="token"
            )
        connection = GitHubConnection.objects.create(
            organisation_id=source.organisation_id,
            source=source,
            repository=repository,
            api_url=api_url,
            token_encrypted=seal({"token": secret}),
            created_by=actor,
        )
        changes = diff({}, snapshot(connection, FIELDS))
        changes["token"] = {"old": None, "new": "(set)"}
        record(membership.organisation, connection, actor, HistoryEntry.Action.CREATED, changes)
        return connection
    check_version(connection, version)
    before = snapshot(connection, FIELDS)
    connection.repository = repository
    connection.api_url = api_url
    changes = diff(before, snapshot(connection, FIELDS))
    if secret and secret != _token(connection):
        connection.token_encrypted = seal({"token": secret})
        changes["token"] = {"old": "(hidden)", "new": "(changed)"}
    if changes:
        if "repository" in changes or "api_url" in changes:
            connection.last_fetched_at = None  # another repository: the next fetch reads everything
        connection.version += 1
        connection.save()
        record(membership.organisation, connection, actor, HistoryEntry.Action.UPDATED, changes)
    return connection


@transaction.atomic
def disconnect(
    membership: Membership, actor: User | None, source_id: int, *, version: int | None = None
) -> None:
    """Forget the connection and its token (the data fetched stays)."""
    require_writer(membership)
    source = get_source(membership, source_id)
    connection = GitHubConnection.objects.select_for_update().filter(source=source).first()
    if connection is None:
        raise NotFound("This source is not connected to GitHub.")
    check_version(connection, version)
    record(membership.organisation, connection, actor, HistoryEntry.Action.DELETED, {})
    connection.delete()


def _token(connection: GitHubConnection) -> str:
    data = unseal(connection.token_encrypted)
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise ValidationFailed(
            "The stored token cannot be decrypted (the encryption key changed): connect again with the token.",
            field="token",
        )
    return str(data["token"])


# --- fetching -------------------------------------------------------------------------------------


def _ready(membership: Membership, source_id: int) -> tuple[DeliverySource, GitHubConnection]:
    require_writer(membership)
    source = _github_source(membership, source_id)
    if source.archived_at is not None:
        raise ValidationFailed("This source is archived; restore it to fetch into it.", field="source")
    connection = GitHubConnection.objects.filter(source=source).first()
    if connection is None:
        raise ValidationFailed("Connect the source to GitHub first (repository and token).", field="source")
    return source, connection


def submit_fetch(membership: Membership, actor: User, source_id: int) -> Job:
    """Queue a fetch as a background job; while one for this source is queued or running, that one."""
    source, _ = _ready(membership, source_id)
    active = Job.objects.filter(organisation_id=membership.organisation_id, kind=JOB_KIND, status__in=ACTIVE)
    for job in active:  # at most TRUENORTH_JOBS_PER_ORGANISATION rows
        if job.params.get("source_id") == source.pk:
            return jobs.reload(job)
    return jobs.submit(membership, actor, JOB_KIND, {"source_id": source.pk})


@dataclass
class FetchOutcome:
    run: ImportRun
    stopped: str = ""  # why the fetch stopped early ("" when it completed)
    pages: int = 0

    @property
    def complete(self) -> bool:
        return not self.stopped


@dataclass
class _State:
    stopped: FetchStopped | None = None
    unavailable: bool = False


def _when(value: Any) -> dt.datetime | None:
    try:
        return parse_time(str(value or "")) if value else None
    except ValueError:
        return None


def _before(value: Any, cursor: dt.datetime | None) -> bool:
    moment = _when(value)
    return cursor is not None and moment is not None and moment < cursor


def _records(
    client: GitHubClient, source: DeliverySource, repository: str, since: dt.datetime | None, state: _State
) -> Iterator[Record | BadRecord]:
    base = f"/repos/{repository}"
    stored = {
        number: (merged, first, shas)
        for number, merged, first, shas in PullRequest.objects.filter(
            source=source, merged_at__isnull=False, first_commit_at__isnull=False
        ).values_list("number", "merged_at", "first_commit_at", "commit_shas")
    }
    try:
        yield from _listing(
            client,
            f"{base}/pulls",
            {"state": "all", "sort": "updated", "direction": "desc", "per_page": "100"},
            "pulls",
            "pull",
            state,
            stop=(lambda o: _before(o.get("updated_at"), since)) if since else None,
            expand=lambda obj, where: _pull_records(client, base, obj, where, stored),
        )
        yield from _listing(
            client,
            f"{base}/releases",
            {"per_page": "100"},
            "releases",
            "release",
            state,
            stop=(
                (
                    lambda o: (
                        _before(o.get("created_at"), since)
                        and _before(o.get("published_at") or o.get("created_at"), since)
                    )
                )
                if since
                else None
            ),
        )
        settle = since - DEPLOYMENT_SETTLE if since else None
        yield from _listing(
            client,
            f"{base}/deployments",
            {"per_page": "100"},
            "deployments",
            "deployment",
            state,
            stop=(lambda o: _before(o.get("created_at"), settle)) if settle else None,
            expand=lambda obj, where: _deployment_records(client, base, obj, where),
        )
        issues = {"state": "all", "sort": "updated", "direction": "asc", "per_page": "100"}
        if since is not None:
            issues["since"] = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        yield from _listing(client, f"{base}/issues", issues, "issues", "issue", state)
    except FetchStopped as stop:
        state.stopped = stop


Expand = Callable[[dict[str, Any], str], Iterator[Record | BadRecord]]


def _listing(
    client: GitHubClient,
    path: str,
    params: dict[str, str],
    name: str,
    kind: str,
    state: _State,
    *,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    expand: Expand | None = None,
) -> Iterator[Record | BadRecord]:
    try:
        for page in client.pages(path, params, name):
            for index, obj in enumerate(page.items):
                where = f"{name} page {page.number} [{index}]"
                if isinstance(obj, dict) and stop is not None and stop(obj):
                    return
                if isinstance(obj, dict) and expand is not None:
                    yield from expand(obj, where)
                else:
                    yield from object_records(obj, where, kind)
    except EndpointUnavailable as error:
        state.unavailable = True
        yield BadRecord(error.location or name, error.message)


def _pull_records(
    client: GitHubClient,
    base: str,
    obj: dict[str, Any],
    where: str,
    stored: dict[int, tuple[dt.datetime | None, dt.datetime | None, Any]],
) -> Iterator[Record | BadRecord]:
    number = obj.get("number")
    merged = _when(obj.get("merged_at"))
    if not isinstance(number, int) or merged is None:
        yield from object_records(obj, where, "pull")
        return
    known = stored.get(number)
    if known is not None and known[0] == merged:  # merged before: its commits do not change
        for rec in object_records(obj, where, "pull"):
            if isinstance(rec, PullRecord):
                rec = dataclasses.replace(rec, first_commit_at=known[1], commit_shas=tuple(known[2] or ()))
            yield rec
        return
    commits: list[Any] = []
    try:
        for page in client.pages(
            f"{base}/pulls/{number}/commits", {"per_page": "100"}, f"pull #{number} commits"
        ):
            commits.extend(page.items)
    except EndpointUnavailable as error:
        yield BadRecord(error.location, error.message)
    yield from object_records({**obj, "commits": commits}, where, "pull")


def _deployment_records(
    client: GitHubClient, base: str, obj: dict[str, Any], where: str
) -> Iterator[Record | BadRecord]:
    ident = obj.get("id")
    statuses: list[Any] = []
    if isinstance(ident, int):
        try:
            page = next(
                iter(
                    client.pages(
                        f"{base}/deployments/{ident}/statuses",
                        {"per_page": "100"},
                        f"deployment {ident} statuses",
                    )
                ),
                None,
            )
            statuses = page.items if page is not None else []
        except EndpointUnavailable as error:
            yield BadRecord(error.location, error.message)
    yield from object_records({**obj, "statuses": statuses}, where, "deployment")


def run_fetch(
    source: DeliverySource,
    *,
    actor: User | None,
    job: Job | None = None,
    progress: Progress | None = None,
    client_options: dict[str, Any] | None = None,
) -> FetchOutcome:
    """Fetch the source's repository into one ImportRun (the job runner and the CLI call this). The
    caller has checked the role; the connection is read here. `client_options` (tests): resolver,
    sleep, clock for the client."""
    connection = GitHubConnection.objects.filter(source=source).first()
    if connection is None:
        raise ValidationFailed("Connect the source to GitHub first (repository and token).", field="source")
    started = timezone.now()
    since = connection.last_fetched_at - OVERLAP if connection.last_fetched_at else None
    client = GitHubClient(
        connection.api_url, _token(connection), limits(), on_page=progress, **(client_options or {})
    )
    run = start_run(
        source,
        IMPORTER,
        actor=actor,
        file_name=f"{connection.api_url}/repos/{connection.repository}"[-255:],
        job_id=job.pk if job is not None else None,
    )
    state = _State()
    changes = Changes()
    ingest(source, _records(client, source, connection.repository, since, state), run=run, changes=changes)
    outcome = FetchOutcome(run, pages=client.pages_fetched)
    updates: dict[str, Any] = {}
    if state.stopped is not None:
        where = state.stopped.location or "fetch"
        outcome.stopped = state.stopped.message
        run.errors = [*run.errors[:199], {"location": where, "message": state.stopped.message}]
        run.error_count += 1
        run.status = ImportStatus.FAILED
        run.save(update_fields=["errors", "error_count", "status"])
        updates["last_error"] = state.stopped.message[:1000]
    else:
        updates["last_error"] = ""
        if not state.unavailable:
            updates["last_fetched_at"] = started
    GitHubConnection.objects.filter(pk=connection.pk).update(**updates)
    if state.stopped is None:
        try:  # like an import: new or changed rows feed the product's measures at once
            feed.remember(run, feed.after_import(run, actor=actor, changes=changes))
        except DomainError:
            pass  # nobody may write the measures: the fetch stands, the daily feed tries again
    return outcome


def summary(outcome: FetchOutcome) -> str:
    from truenorth.delivery.services.sources import run_summary

    pages = f"{outcome.pages} page{'s' if outcome.pages != 1 else ''}"
    return f"{run_summary(outcome.run)} ({pages} from GitHub)"


@jobs.register(JOB_KIND)
def run_fetch_job(job: Job, progress: jobs.Progress) -> dict[str, Any]:
    """The job: fetch as the person who asked (still a writer of the organisation)."""
    from django.urls import reverse

    from truenorth.core.errors import DomainError

    membership, actor = jobs.acting_membership(job)
    try:
        source, _ = _ready(membership, int(job.params["source_id"]))
        progress(0, 0)
        outcome = run_fetch(source, actor=actor, job=job, progress=progress)
    except DomainError as error:
        if isinstance(error, jobs.JobFailed):
            raise
        raise jobs.JobFailed(error.message) from None
    slug = job.organisation.slug
    result = {
        "summary": f"{source.name}: {summary(outcome)}.",
        "link": reverse("delivery:source_github", kwargs={"org_slug": slug, "source_id": source.pk}),
        "link_text": "Back to the GitHub connection",
        "import_id": outcome.run.pk,
        "created": outcome.run.created,
        "unchanged": outcome.run.unchanged,
        "error_count": outcome.run.error_count,
        "pages": outcome.pages,
    }
    if outcome.stopped:
        raise jobs.JobFailed(outcome.stopped, result=result)
    return result


__all__ = [
    "IMPORTER",
    "JOB_KIND",
    "FetchOutcome",
    "clean_api_url",
    "clean_repository",
    "connect",
    "connection_of",
    "describe",
    "disconnect",
    "fetches_of",
    "run_fetch",
    "submit_fetch",
    "summary",
]
