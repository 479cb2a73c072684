"""Background jobs (huey, configured by settings.HUEY; `truenorth worker` consumes them).

- `refresh_due_measures`: every REFRESH_EVERY_MINUTES minutes, refresh the SQL and computed measures
  that are due (refresh.due_measures). A lock keeps two runs from overlapping.
- `submit_refresh(membership, actor, measure)`: refresh one measure now as a job (truenorth/jobs) that
  the person follows (the "Refresh now" button, the API); `run_refresh` is its runner. In immediate mode
  (TRUENORTH_JOBS_IMMEDIATE, tests) it runs inline.
- `submit_preview(...)`: run a query being edited (the measure page's "Preview") as a job that keeps
  its first rows for the page, sealed (encrypted: a job's result is visible to every member through the
  jobs API); `run_preview` is its runner.
- `imports.run_import_job`: the runner of observation file imports (IMPORT_KIND), registered by
  importing measures/imports.py here.
- `refresh_measure_job(measure_id, actor_id=None)`: a bare huey task refreshing one measure (no job to
  follow); `enqueue_refresh` queues it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.urls import reverse
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, lock_task

from truenorth.accounts.models import User
from truenorth.core.errors import DomainError, ValidationFailed
from truenorth.jobs.models import Job
from truenorth.jobs.services import JobFailed, Progress, acting_membership, register, submit
from truenorth.measures import imports, services
from truenorth.measures.models import Measure
from truenorth.measures.refresh import check_refreshable, refresh_due, refresh_measure
from truenorth.measures.sources import check_query, preview_query, seal
from truenorth.orgs.models import Membership

logger = logging.getLogger(__name__)

REFRESH_EVERY_MINUTES = 5


@db_periodic_task(crontab(minute=f"*/{REFRESH_EVERY_MINUTES}"))
@lock_task("truenorth-refresh-due")
def refresh_due_measures() -> dict[str, int]:
    results = refresh_due()
    failed = [r for r in results if not r.ok]
    for result in failed:
        logger.warning(
            "Refreshing measure %s (%s) failed: %s", result.measure.pk, result.measure, result.error
        )
    return {"refreshed": len(results), "failed": len(failed), "created": sum(r.created for r in results)}


@db_task()
def refresh_measure_job(measure_id: int, actor_id: int | None = None) -> dict[str, Any]:
    from truenorth.accounts.models import User
    from truenorth.measures.models import Measure

    measure = Measure.objects.select_related("organisation", "data_source", "product").filter(pk=measure_id)
    target = measure.first()
    if target is None:
        return {"ok": False, "error": "The measure no longer exists."}
    actor = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    try:
        result = refresh_measure(target, actor=actor)
    except DomainError as exc:  # e.g. the person lost their role, the measure was archived
        return {"ok": False, "error": exc.message}
    return {"ok": result.ok, "created": result.created, "error": result.error, "summary": result.summary()}


def enqueue_refresh(measure_id: int, actor_id: int | None = None) -> Any:
    """Queue a refresh of one measure; returns huey's result handle (`handle.get()` is the summary dict
    once the worker has run it; at once in immediate mode)."""
    return refresh_measure_job(measure_id, actor_id)


REFRESH_KIND = "measure.refresh"
# File imports run as jobs too; their runner lives with them (importing it here registers it).
IMPORT_KIND = imports.IMPORT_KIND


def submit_refresh(membership: Membership, actor: User, measure: Measure) -> Job:
    """Refresh a SQL or computed measure as a background job (members and above). Refuses at once what
    cannot be refreshed (422) and, past the organisation's job limit, 429."""
    services.require_writer(membership)
    check_refreshable(measure)
    return submit(membership, actor, REFRESH_KIND, {"measure_id": measure.pk})


@register(REFRESH_KIND)
def run_refresh(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: refresh the measure as the person who asked (who must still be a writer there)."""
    membership, actor = acting_membership(job)
    measure = services.get_measure(membership, int(job.params["measure_id"]))
    progress(0, 1)
    result = refresh_measure(measure, actor=actor)
    progress(1, 1)
    outcome = {
        "measure": measure.pk,
        "ok": result.ok,
        "created": result.created,
        "skipped": result.skipped,
        "notes": result.notes,
        "summary": f"“{measure.name}”: {result.summary()}",
        "link": reverse("measures:measure", args=(job.organisation.slug, measure.pk)),
        "link_text": f"Back to “{measure.name}”",
    }
    if not result.ok:
        raise JobFailed(result.error, result=outcome)
    return outcome


PREVIEW_KIND = "measure.preview"


def submit_preview(
    membership: Membership, actor: User, measure: Measure, data_source_id: int | None, query: str
) -> Job:
    """Run a query being edited on a measure's page as a background job and keep its first rows
    (sources.PREVIEW_ROWS) for the page (admins only: it runs on the data source). Refuses at once (403,
    422) what may not or cannot run, and past the organisation's job limit (429)."""
    services.require_query_author(membership)
    source = services.data_source_of(membership, data_source_id)
    if source is None:
        raise ValidationFailed("Choose the data source to run the query on.", field="data_source")
    check_query(source, query)
    params = {"measure_id": measure.pk, "data_source_id": source.pk, "query": query}
    return submit(membership, actor, PREVIEW_KIND, params)


@register(PREVIEW_KIND)
def run_preview(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: run the query (as the admin who asked, who must still be one) and keep its first rows."""
    membership, _ = acting_membership(job)
    services.require_query_author(membership)
    measure = services.get_measure(membership, int(job.params["measure_id"]))
    source = services.data_source_of(membership, int(job.params["data_source_id"]))
    if source is None:
        raise JobFailed("The data source no longer exists.")
    progress(0, 1)
    preview = preview_query(source, str(job.params["query"]))
    progress(1, 1)
    url = reverse("measures:measure", args=(job.organisation.slug, measure.pk))
    # The rows are the source's data: sealed, so only the measure page (for admins) shows them.
    table = seal({"columns": preview.pop("columns"), "rows": preview.pop("rows")})
    return {
        **preview,
        "table": table,
        "measure": measure.pk,
        "link": f"{url}?preview={job.pk}#query",
        "link_text": f"See the rows on “{measure.name}”",
    }


def queue_description() -> str:
    """Which queue the jobs use, for `truenorth worker` and `truenorth check`."""
    storage = HUEY.storage.__class__.__name__
    if HUEY.immediate:
        return "immediate mode (jobs run inline; no worker needed)"
    if "Redis" in storage:
        return "Redis (TRUENORTH_REDIS_URL)"
    filename = getattr(HUEY.storage, "filename", "")
    return f"SQLite queue {filename}" if filename else storage
