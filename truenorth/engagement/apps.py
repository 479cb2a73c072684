from __future__ import annotations

from django.apps import AppConfig


class EngagementConfig(AppConfig):
    """The Engagement pillar: stakeholders, alignment pulses, product briefs, reminders, digests,
    webhooks, the activity feed and the alignment health check. It sits above the pillars it reads
    (through their services). In-app notifications are in the ground-floor app truenorth/notifications."""

    name = "truenorth.engagement"
    label = "engagement"

    def ready(self) -> None:
        from truenorth.engagement import panels, receivers  # noqa: F401  (receivers: signals of webhooks)
        from truenorth.strategy import panels as vision_panels

        vision_panels.register_goal_panel(panels.goal_panel)
        vision_panels.register_product_panel(panels.product_panel)
