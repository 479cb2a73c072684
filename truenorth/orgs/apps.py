from __future__ import annotations

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "truenorth.orgs"
    label = "orgs"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from truenorth.core import health
        from truenorth.orgs import pagecache

        connection_created.connect(pagecache.install, dispatch_uid="truenorth-page-cache-writes")
        health.register(pagecache.check)  # `truenorth check`: the page cache's time and memory
