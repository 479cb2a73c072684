from __future__ import annotations

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Delivery evidence: work item flow, deployments, commits and incidents imported from the delivery
    systems teams use; flow and DORA measures computed from them; throughput forecasts. It sits above
    Validation (process changes are tested as hypotheses) and below Engagement (the brief shows
    forecasts)."""

    name = "truenorth.delivery"
    label = "delivery"

    def ready(self) -> None:
        from truenorth.delivery import panels
        from truenorth.hypotheses import panels as validation_panels
        from truenorth.strategy import panels as vision_panels

        vision_panels.register_goal_panel(panels.goal_panel)  # the goal's forecast against its target date
        validation_panels.register_hypothesis_panel(panels.hypothesis_panel)  # the process change it records
