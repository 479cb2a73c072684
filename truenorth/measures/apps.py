from __future__ import annotations

from django.apps import AppConfig


class MeasuresConfig(AppConfig):
    name = "truenorth.measures"
    label = "measures"
