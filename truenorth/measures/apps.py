from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


def _seed_new_organisation(
    sender: type, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """Every new organisation starts with the EBM example measures in its catalogue."""
    if created and not raw:
        from truenorth.measures.services import seed_catalogue

        seed_catalogue(instance)


class MeasuresConfig(AppConfig):
    name = "truenorth.measures"
    label = "measures"

    def ready(self) -> None:
        from truenorth.core import health
        from truenorth.measures.health import refreshes
        from truenorth.measures.models import Observation
        from truenorth.measures.rollups import rollups_health, saved
        from truenorth.orgs.models import Organisation

        post_save.connect(_seed_new_organisation, sender=Organisation, dispatch_uid="measures-seed-catalogue")
        health.register(refreshes)  # `truenorth check`: failed data sources and refreshes
        # An observation saved one by one outside rollups.write_observations refreshes its day too.
        post_save.connect(saved, sender=Observation, dispatch_uid="measures-rollups")
        health.register(rollups_health)  # the roll-ups' time zone is the instance's
        from truenorth.measures.engines_health import engines_check

        health.register(engines_check)  # which engines this server can run, sources it cannot
        from truenorth.measures.vision_adapter import MeasuresForVision
        from truenorth.strategy import value_port

        value_port.register(MeasuresForVision())  # what Vision may ask of measures, without importing them
