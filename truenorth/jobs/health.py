"""The background jobs' line in `truenorth check`: jobs stuck in the queue.

Registered with truenorth.core.health from JobsConfig.ready().
"""

from __future__ import annotations

from truenorth.core.health import CheckResult
from truenorth.jobs.services import STUCK_AFTER, stuck_jobs


def stuck() -> list[CheckResult]:
    """Background jobs queued or running for over an hour: the worker is not running, or was killed
    (`truenorth worker` fails the jobs it finds running when it starts)."""
    try:
        jobs = stuck_jobs()
    except Exception:  # no database or no tables yet: the database checks say so
        return []
    hours = int(STUCK_AFTER.total_seconds() // 3600)
    return [
        CheckResult(
            f"job #{j.pk} ({j.kind}, {j.organisation.slug})",
            "warning",
            f"{j.status} since {j.created_at:%Y-%m-%d %H:%M} UTC (over {hours} h): "
            "is `truenorth worker` running?",
        )
        for j in jobs
    ] or [CheckResult("background jobs", "ok", "none stuck")]
