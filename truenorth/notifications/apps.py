from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """In-app notifications: a ground-floor app every pillar may send through (`services.notify`)."""

    name = "truenorth.notifications"
    label = "notifications"
