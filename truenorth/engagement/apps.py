from __future__ import annotations

from django.apps import AppConfig


class EngagementConfig(AppConfig):
    """The Engagement pillar: stakeholders, alignment pulses, product briefs, reminders, digests,
    webhooks, the activity feed and the alignment health check. It sits above the pillars it reads
    (through their services). In-app notifications are in the ground-floor app truenorth/notifications."""

    name = "truenorth.engagement"
    label = "engagement"

    def ready(self) -> None:
        from truenorth.engagement import receivers  # noqa: F401  (signal receivers: webhooks, digests)
