from __future__ import annotations

from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "truenorth.search"
    label = "search"

    def ready(self) -> None:
        from truenorth.search import signals

        signals.connect()
