from __future__ import annotations

from django.apps import AppConfig


class HomeConfig(AppConfig):
    """The top floor's pages: where a signed-in person lands, and the organisation dashboard that reads
    every pillar (Vision, Value, Validation, notifications). No app imports it."""

    name = "truenorth.home"
    label = "home"
