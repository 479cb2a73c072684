from __future__ import annotations

from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "truenorth.history"
    label = "history"
