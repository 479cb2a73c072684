from __future__ import annotations

from django.apps import AppConfig


class EngagementConfig(AppConfig):
    """The Engagement pillar (to come: briefs, health checks); it sits above the pillars it reads.
    In-app notifications are not here but in the ground-floor app truenorth.notifications."""

    name = "truenorth.engagement"
    label = "engagement"
