"""API: an organisation's background jobs (refreshes, evidence runs, imports) — follow one until it ends.

Operations that start a job answer `accepted(response, job)` (truenorth/jobs/schemas.py, with the job
schemas): 202, the job, and a `Location` header to GET it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from truenorth.accounts.models import User
from truenorth.core.schemas import READ_ERRORS, ObjectId
from truenorth.jobs import services
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobFilter, JobOut, ProgressOut, accepted  # noqa: F401
from truenorth.orgs.services import membership_for

router = Router(tags=["jobs"])


@router.get(
    "/{slug}/jobs",
    response={200: list[JobOut], **READ_ERRORS},
    summary="The organisation's recent background jobs, newest first",
)
def list_jobs(request: HttpRequest, slug: str, filters: Query[JobFilter]) -> list[dict[str, Any]]:
    assert isinstance(request.user, User)
    qs = services.jobs_of(membership_for(request.user, slug))
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    return [services.describe(j) for j in qs[: filters.limit]]


@router.get(
    "/{slug}/jobs/{job_id}",
    response={200: JobOut, **READ_ERRORS},
    summary="A background job: its status, progress, and result or error",
    url_name="get_job",
)
def get_job(request: HttpRequest, slug: str, job_id: ObjectId) -> dict[str, Any]:
    assert isinstance(request.user, User)
    return services.describe(services.get_job(membership_for(request.user, slug), job_id))
