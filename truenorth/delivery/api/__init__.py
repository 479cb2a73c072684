"""API: Delivery evidence — sources and imports (`sources`), flow, DORA and forecasts (`metrics`), goals'
forecasts against their target dates (`goal_forecasts`)."""

from __future__ import annotations

from ninja import Router

from truenorth.delivery.api import github, goal_forecasts, metrics, process, sources

router = Router()
for part in (sources, metrics, goal_forecasts, github, process):
    router.add_router("", part.router)

__all__ = ["router"]
