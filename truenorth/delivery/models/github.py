"""Delivery models: a delivery source's connection to the GitHub REST API (fetching with a token)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.delivery.models.base import DeliverySource
from truenorth.orgs.models import Organisation

__all__ = ["DEFAULT_GITHUB_API_URL", "GitHubConnection"]

DEFAULT_GITHUB_API_URL = "https://api.github.com"


class GitHubConnection(models.Model):
    """Where a GitHub source fetches from (repository, API address) and with which token (encrypted)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    source = models.OneToOneField(DeliverySource, on_delete=models.CASCADE, related_name="github")
    repository = models.CharField(max_length=201)  # "owner/name"
    api_url = models.CharField(max_length=300, default=DEFAULT_GITHUB_API_URL)
    # The token as a Fernet token (measures.sources.seal); never shown, logged or put in the history.
    token_encrypted = models.TextField()
    # Start of the last fetch that completed: the next one asks only for what changed since then.
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)  # why the last fetch stopped, if it did
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"GitHub {self.repository}"
