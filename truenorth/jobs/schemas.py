"""The jobs API's schemas, and what an operation that starts a job answers (`accepted`).

Other apps' APIs import these from here (never from `jobs.api`): an operation that starts a job
answers `accepted(response, job)`: 202, the job (`JobOut`), and a `Location` header to GET it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpResponse
from ninja import Schema, Status
from pydantic import Field

from truenorth.core.schemas import ERRORS, ErrorOut
from truenorth.jobs import services
from truenorth.jobs.models import Job, JobStatus

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
