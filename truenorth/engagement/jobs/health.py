"""Engagement background work: health — every organisation's alignment health check saved once a week
(when its last saved assessment is a week old or more), so the page always has a trend to show."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from truenorth.engagement.services import health


@db_periodic_task(crontab(minute="41", hour="4"))
@lock_task("engagement-health-weekly")
def save_weekly_health_checks() -> int:
    """Daily at 04:41: save an assessment for each organisation whose last one is a week old or more."""
    return health.save_weekly()
