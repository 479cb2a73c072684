from __future__ import annotations

from django.apps import AppConfig


class HypothesesConfig(AppConfig):
    name = "truenorth.hypotheses"
    label = "hypotheses"
