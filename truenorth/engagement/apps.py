from __future__ import annotations

from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "truenorth.engagement"
    label = "engagement"
