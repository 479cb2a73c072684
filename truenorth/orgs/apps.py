from __future__ import annotations

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "truenorth.orgs"
    label = "orgs"
