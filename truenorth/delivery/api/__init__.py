"""API: Delivery evidence — sources and imports (`sources`), flow, DORA and forecasts (`metrics`)."""

from __future__ import annotations

from ninja import Router

from truenorth.delivery.api import github, metrics, process, sources

router = Router()
for part in (sources, metrics, github, process):
    router.add_router("", part.router)

__all__ = ["router"]
