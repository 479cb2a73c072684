from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "truenorth.ops"
    label = "ops"

    def ready(self) -> None:
        from truenorth.core import health
        from truenorth.ops import ratelimit
        from truenorth.ops.backup import backup_checks

        health.register(backup_checks)  # `truenorth check`: last backup, PostgreSQL client tools
        health.register(ratelimit.check)  # the shared cache reachable, the API rate limits
