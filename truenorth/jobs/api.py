"""API: an organisation's background jobs (refreshes, evidence runs, imports) — follow one until it ends.

Operations that start a job answer `accepted(response, job)`: 202, the job below, and a `Location`
header to GET it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.schemas import ERRORS, READ_ERRORS, ErrorOut, ObjectId
from truenorth.jobs import services
from truenorth.jobs.models import Job, JobStatus
from truenorth.orgs.services import membership_for

router = Router(tags=["jobs"])

# For operations that submit a job: 429 when the organisation already runs as many as it may.
SUBMIT_ERRORS = {**ERRORS, 429: ErrorOut}


class ProgressOut(Schema):
    done: int
    total: int = Field(description="0 while the total is not known yet.")


class JobOut(Schema):
    id: int
    kind: str = Field(description="e.g. measure.refresh, experiment.results")
    status: JobStatus = Field(description="queued, running, succeeded or failed")
    progress: ProgressOut
    params: dict[str, Any]
    result: dict[str, Any] = Field(description="When it succeeded: what it did (`summary`, `link`, …).")
    error: str = Field(description="When it failed: why.")
    created_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    url: str = Field(description="This job in the API.")
    page: str = Field(description="This job's web page.")


class JobFilter(Schema):
    status: JobStatus | None = None
    kind: str | None = Field(None, max_length=60)
    limit: int = Field(50, ge=1, le=200)


def accepted(response: HttpResponse, job: Job) -> Status[dict[str, Any]]:
    """202 Accepted with the job, and its address in `Location`."""
    described = services.describe(job)
    response["Location"] = described["url"]
    return Status(202, described)


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
