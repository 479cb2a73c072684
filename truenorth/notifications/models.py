from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation


class Notification(models.Model):
    """An in-app notice for one person (mentions, proposals on their goals, decisions)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Created by the engagement app (engagement/migrations/0001); moved here without touching the table.
        db_table = "engagement_notification"
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("user", "read_at"))]

    def __str__(self) -> str:
        return self.text
