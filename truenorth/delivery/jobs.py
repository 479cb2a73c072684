"""Background jobs of the delivery app (autodiscovered by truenorth.jobs): "delivery.import" stores an
uploaded file (the job's payload) or reads a repository path (checked again here: a symbolic link may
have changed since the request) into a source, then (run_import) feeds the source's Value measures; the
result says how many values were fed and corrected. The metrics job
("delivery.metrics") registers in services/metrics.py, imported here so the worker knows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.urls import reverse

from truenorth.core.errors import DomainError
from truenorth.delivery import tasks_feed as _tasks_feed  # noqa: F401  (the daily feed of Value measures)
from truenorth.delivery.services import feed, sources
from truenorth.delivery.services import github_fetch as _github_fetch  # noqa: F401  (its job, if any)
from truenorth.delivery.services import metrics as _metrics  # noqa: F401  (registers delivery.metrics)
from truenorth.delivery.services import process as _process  # noqa: F401  (its job, if any)
from truenorth.jobs import services as jobs
from truenorth.jobs.models import Job
from truenorth.orgs.services import require_writer


@jobs.register(sources.JOB_KIND)
def run_import_job(job: Job, progress: jobs.Progress) -> dict[str, Any]:
    membership, actor = jobs.acting_membership(job)
    params = job.params
    try:
        require_writer(membership)
        source = sources.get_source(membership, int(params["source_id"]))
        importer = sources.check_importer(source, params.get("importer"))
        data: bytes | Path
        if importer in sources.PATH_IMPORTERS:
            data = sources.allowed_repository(params.get("path"), membership.organisation_id)
        else:
            payload = jobs.payload_of(job)
            if payload is None:
                raise jobs.JobFailed("The uploaded file is no longer stored; upload it again.")
            data = payload
        progress(0, 0)
        run = sources.run_import(
            source,
            importer,
            data,
            actor=actor,
            file_name=str(params.get("file_name") or ""),
            job=job,
            progress=progress,
        )
    except jobs.JobFailed:
        raise
    except DomainError as error:
        raise jobs.JobFailed(error.message) from None
    slug = job.organisation.slug
    fed = feed.fed_by(run)
    summary = f"{source.name}: {sources.run_summary(run)}."
    if fed is not None and fed.stored:
        corrected = f" ({fed.corrected} corrected)" if fed.corrected else ""
        plural = "" if fed.stored == 1 else "s"
        summary += f" Fed {fed.stored} value{plural}{corrected} into the product's measures."
    return {
        "summary": summary,
        "link": reverse("delivery:source", kwargs={"org_slug": slug, "source_id": source.pk}),
        "link_text": "Back to the source",
        "import_id": run.pk,
        "created": run.created,
        "unchanged": run.unchanged,
        "error_count": run.error_count,
        "fed": 0 if fed is None else fed.stored,
        "corrected": 0 if fed is None else fed.corrected,
    }
