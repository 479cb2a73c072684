"""Background jobs (huey, configured by settings.HUEY; `truenorth worker` consumes them).

- `refresh_due_measures`: every REFRESH_EVERY_MINUTES minutes, refresh the SQL and computed measures
  that are due (refresh.due_measures). A lock keeps two runs from overlapping.
- `refresh_measure_job(measure_id, actor_id=None)`: refresh one measure now (the "Refresh" button, the
  API). Use `enqueue_refresh` to queue it; in immediate mode (TRUENORTH_JOBS_IMMEDIATE, tests) it runs
  inline.
"""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, lock_task

from truenorth.core.errors import DomainError
from truenorth.measures.refresh import refresh_due, refresh_measure

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


def queue_description() -> str:
    """Which queue the jobs use, for `truenorth worker` and `truenorth check`."""
    storage = HUEY.storage.__class__.__name__
    if HUEY.immediate:
        return "immediate mode (jobs run inline; no worker needed)"
    if "Redis" in storage:
        return "Redis (TRUENORTH_REDIS_URL)"
    filename = getattr(HUEY.storage, "filename", "")
    return f"SQLite queue {filename}" if filename else storage
