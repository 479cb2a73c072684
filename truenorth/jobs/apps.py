from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "truenorth.jobs"
    label = "jobs"

    def ready(self) -> None:
        from truenorth.core import health
        from truenorth.jobs.health import stuck

        health.register(stuck)  # `truenorth check`: jobs stuck in the queue
