"""Daily: feed every organisation's live delivery sources into their Value measures (services/feed.py):
the weeks not fed yet, and the fed weeks of recent imports that could not be fed when they finished
(each import feeds right away otherwise)."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from truenorth.delivery.services import feed


@db_periodic_task(crontab(minute="20", hour="3"))
@lock_task("truenorth-delivery-feed")
def feed_delivery_measures() -> dict[str, int]:
    results = feed.feed_all(now=timezone.now())
    return {"sources": len(results), "stored": sum(r.stored for r in results)}
