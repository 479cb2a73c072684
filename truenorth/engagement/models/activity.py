"""Engagement models: activity — the per-person token that authenticates the organisation's Atom feed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__: list[str] = ["FeedToken"]


class FeedToken(models.Model):
    """A person's secret for reading one organisation's activity as an Atom feed without signing in.

    Only the SHA-256 of the token is stored (the token is shown once). One active token per person and
    organisation (a database constraint); regenerating revokes the old one. A token only works while its
    person is still a member of the organisation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey("orgs.Organisation", on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("user", "organisation"),
                condition=models.Q(revoked_at__isnull=True),
                name="one_active_feed_token",
            ),
        ]

    def __str__(self) -> str:
        return f"Feed token of {self.user} ({'revoked' if self.revoked_at else 'active'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
