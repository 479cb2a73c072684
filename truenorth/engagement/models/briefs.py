"""Engagement models: briefs — read-only share links of a product's brief, and the PDFs made for members."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation

__all__: list[str] = ["BriefDocument", "ShareLink"]


class ShareLink(models.Model):
    """A read-only link to one product's brief for people outside the tool: no sign-in, expiring,
    revocable. Only the SHA-256 of its token is stored; the raw link is shown once, when created."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("strategy.Product", on_delete=models.CASCADE, related_name="share_links")
    label = models.CharField(max_length=120)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("organisation", "product"), name="engagement_share_product")]

    def __str__(self) -> str:
        return self.label

    def is_live(self, now: object = None) -> bool:
        moment = now or timezone.now()
        return self.revoked_at is None and self.expires_at > moment  # type: ignore[operator]


class BriefDocument(models.Model):
    """A brief's PDF, made by a background job for the member who asked; kept for a limited time
    (services.briefs.DOCUMENT_DAYS) and downloaded by that member only."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("strategy.Product", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    pdf = models.BinaryField()
    size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("expires_at",), name="engagement_briefdoc_expires")]

    def __str__(self) -> str:
        return f"Brief PDF {self.pk} ({self.size} bytes)"
