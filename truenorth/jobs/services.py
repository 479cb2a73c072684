"""Background jobs: submit work for an organisation, run it on the worker, let the client follow it.

- A runner is a function `(job, progress) -> dict` registered for a kind with `@register("kind")`, in
  an app's `jobs.py` module (found by `discover()`). It reads its inputs from `job.params` (and
  `payload_of(job)` for an uploaded file), reports `progress(done, total)` as it goes, and returns the
  result (JSON). Keys the job page shows: `summary` (one line) and `link` (a web path to the outcome).
  It raises a DomainError (or `JobFailed`, which can carry a partial result) to fail with that message;
  any other exception fails the job with "Internal error; it has been logged." (and is logged).
- `submit(membership, actor, kind, params, payload=...)` creates the job and queues one huey task
  (`tasks.run_job`). At most `settings.TRUENORTH_JOBS_PER_ORGANISATION` jobs of one organisation are
  queued or running at a time; another is refused with TooManyRequests (429). In immediate mode
  (tests, TRUENORTH_JOBS_IMMEDIATE) the job has run when `submit` returns.
- Jobs are organisation-scoped like everything else: `get_job` answers NotFound for another
  organisation's job.
- A job left `running` by a killed worker is failed by `fail_interrupted()` (the worker calls it when
  it starts; `truenorth check` reports jobs stuck for longer than STUCK_AFTER).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from huey.contrib.djhuey import HUEY

from truenorth.accounts.models import User
from truenorth.core.errors import DomainError, NotFound, TooManyRequests
from truenorth.jobs.models import ACTIVE, Job, JobStatus
from truenorth.orgs import pagecache
from truenorth.orgs.models import Membership, Organisation
from truenorth.orgs.services import membership_for

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Runner = Callable[[Job, Progress], dict[str, Any]]

INTERNAL_ERROR = "Internal error; it has been logged."
INTERRUPTED = "The worker stopped while this job was running; submit it again."
STUCK_AFTER = dt.timedelta(hours=1)
MAX_ERROR_LENGTH = 4000

_RUNNERS: dict[str, Runner] = {}
_discovered = False


class JobFailed(DomainError):
    """A runner's failure with a message for the person, and optionally what was done before it."""

    status = 422

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


def register(kind: str) -> Callable[[Runner], Runner]:
    """Decorator: `fn` runs the jobs of this kind."""

    def decorator(fn: Runner) -> Runner:
        _RUNNERS[kind] = fn
        return fn

    return decorator


def discover() -> None:
    """Import every installed app's `jobs` module, so their runners are registered."""
    global _discovered
    if not _discovered:
        autodiscover_modules("jobs")
        _discovered = True


def runner_for(kind: str) -> Runner:
    if kind not in _RUNNERS:
        discover()
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise LookupError(f"No job runner is registered for {kind!r}.") from None


# --- submitting and reading ------------------------------------------------------------------------


def submit(
    membership: Membership,
    actor: User | None,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    payload: bytes | None = None,
) -> Job:
    """Create a job for the membership's organisation and queue it; returns it (refreshed: in immediate
    mode it has already run). Raises TooManyRequests when the organisation has too many active jobs."""
    runner_for(kind)  # a programming error, not the client's: fail before creating anything
    organisation = membership.organisation
    limit = settings.TRUENORTH_JOBS_PER_ORGANISATION
    with transaction.atomic():
        # Serialise submissions per organisation (SQLite serialises write transactions anyway).
        Organisation.objects.select_for_update().filter(pk=organisation.pk).values_list("pk").first()
        active = Job.objects.filter(organisation=organisation, status__in=ACTIVE).count()
        if active >= limit:
            raise TooManyRequests(
                f"This organisation already has {active} job{'s' if active != 1 else ''} queued or "
                f"running (at most {limit} at a time); wait for one to finish and try again."
            )
        job = Job.objects.create(
            organisation=organisation,
            kind=kind,
            created_by=actor,
            params=params or {},
            payload=payload,
        )
    if HUEY.immediate:
        _enqueue(job)
    else:  # inside a caller's transaction, the worker must not look for the job before it is committed
        transaction.on_commit(lambda: _enqueue(job))
    return reload(job)


def _enqueue(job: Job) -> None:
    from truenorth.jobs.tasks import run_job

    try:
        run_job(job.pk)
    except Exception:  # the queue itself failed (e.g. Redis down): the job must not stay queued
        logger.exception("Could not queue job %s", job.pk)
        _finish(job.pk, JobStatus.FAILED, error="The job could not be queued; try again later.")


def reload(job: Job) -> Job:
    return Job.objects.select_related("organisation", "created_by").get(pk=job.pk)


def jobs_of(membership: Membership) -> QuerySet[Job]:
    """The organisation's jobs, newest first."""
    return (
        Job.objects.filter(organisation_id=membership.organisation_id)
        .select_related("organisation", "created_by")
        .order_by("-created_at", "-id")
    )


def get_job(membership: Membership, job_id: int) -> Job:
    job = jobs_of(membership).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def payload_of(job: Job) -> bytes | None:
    """The uploaded file of a job (kept out of ordinary queries)."""
    value = Job.objects.filter(pk=job.pk).values_list("payload", flat=True).first()
    return bytes(value) if value is not None else None


def describe(job: Job) -> dict[str, Any]:
    """The job as the API and the page show it."""
    slug = job.organisation.slug
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "params": job.params,
        "result": job.result,
        "error": job.error,
        "created_by": job.created_by.email if job.created_by else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "url": reverse("api:get_job", kwargs={"slug": slug, "job_id": job.pk}),
        "page": reverse("jobs:job", kwargs={"org_slug": slug, "job_id": job.pk}),
    }


def acting_membership(job: Job) -> tuple[Membership, User]:
    """For a runner: the person who submitted the job and their membership now (they may have left
    the organisation or been removed since; then the job fails)."""
    if job.created_by is None:
        raise JobFailed("The person who asked for this job no longer exists.")
    try:
        return membership_for(job.created_by, job.organisation.slug), job.created_by
    except NotFound:
        raise JobFailed("The person who asked for this job is no longer a member here.") from None


# --- running (on the worker) -----------------------------------------------------------------------


def execute(job_id: int) -> None:
    """Run a queued job (the huey task calls this). Never raises: the outcome is recorded on the job.
    What it writes renews its organisation's kept pages (orgs/pagecache.py) when it ends."""
    org_id = Job.objects.filter(pk=job_id).values_list("organisation_id", flat=True).first()
    with pagecache.boundary(lambda: Q(pk=org_id)):
        _execute(job_id)


def _execute(job_id: int) -> None:
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:  # already run, failed as interrupted, or deleted with its organisation
        return
    job = Job.objects.select_related("organisation", "created_by").get(pk=job_id)

    def progress(done: int, total: int) -> None:
        Job.objects.filter(pk=job_id).update(progress_done=max(0, done), progress_total=max(0, total))

    try:
        result = runner_for(job.kind)(job, progress)
    except JobFailed as exc:
        _finish(job_id, JobStatus.FAILED, error=exc.message, result=exc.result)
    except DomainError as exc:
        _finish(job_id, JobStatus.FAILED, error=exc.message)
    except Exception:
        logger.exception("Job %s (%s) failed", job_id, job.kind)
        _finish(job_id, JobStatus.FAILED, error=INTERNAL_ERROR)
    else:
        _finish(job_id, JobStatus.SUCCEEDED, result=result if isinstance(result, dict) else {})


def _finish(job_id: int, status: str, *, error: str = "", result: dict[str, Any] | None = None) -> None:
    fields: dict[str, Any] = {
        "status": status,
        "error": error[:MAX_ERROR_LENGTH],
        "finished_at": timezone.now(),
    }
    if result is not None:
        fields["result"] = result
    if status == JobStatus.SUCCEEDED:
        fields["payload"] = None  # the upload is not needed any more
    Job.objects.filter(pk=job_id).update(**fields)


def fail_interrupted(*, older_than: dt.timedelta | None = None) -> int:
    """Mark running jobs failed (all of them, or those started longer ago than `older_than`): their
    worker was killed. Returns how many."""
    qs = Job.objects.filter(status=JobStatus.RUNNING)
    if older_than is not None:
        qs = qs.filter(started_at__lt=timezone.now() - older_than)
    return qs.update(status=JobStatus.FAILED, error=INTERRUPTED, finished_at=timezone.now())


def stuck_jobs(now: dt.datetime | None = None) -> list[Job]:
    """Jobs queued or running for longer than STUCK_AFTER (is the worker running?), for `truenorth check`."""
    since = (now or timezone.now()) - STUCK_AFTER
    return list(
        Job.objects.filter(status__in=ACTIVE, created_at__lt=since)
        .select_related("organisation")
        .order_by("created_at")[:50]
    )
