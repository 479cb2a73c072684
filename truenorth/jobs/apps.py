from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "truenorth.jobs"
    label = "jobs"

    def ready(self) -> None:
        from truenorth.core import health
        from truenorth.jobs.health import stuck

        health.register(stuck)  # `truenorth check`: jobs stuck in the queue
        _page_cache_boundaries()


def _page_cache_boundaries() -> None:
    """Every huey task (periodic refreshes, mail, webhooks, pulses) is a write boundary of the kept
    pages (orgs/pagecache.py): what it wrote renews every organisation's pages when it ends."""
    from typing import Any

    from huey.contrib.djhuey import HUEY

    from truenorth.orgs import pagecache

    @HUEY.pre_execute(name="truenorth-page-cache-enter")
    def _enter(task: Any) -> None:
        pagecache.enter()

    @HUEY.post_execute(name="truenorth-page-cache-leave")
    def _leave(task: Any, task_value: Any, exc: Any) -> None:
        pagecache.leave(pagecache.every_organisation)
