from __future__ import annotations

from django.apps import AppConfig


class StrategyConfig(AppConfig):
    name = "truenorth.strategy"
    label = "strategy"
