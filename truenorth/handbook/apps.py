from __future__ import annotations

from django.apps import AppConfig


class HandbookConfig(AppConfig):
    name = "truenorth.handbook"
    label = "handbook"
    verbose_name = "Handbook"
