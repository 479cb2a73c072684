"""Accounts models: single sign-on identities (issue 13)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from truenorth.accounts.models.base import User

__all__ = ["SSOIdentity"]


class SSOIdentity(models.Model):
    """A person's account at an OpenID Connect identity provider (issuer and subject), linked to one user."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    # The provider's verified e-mail address at the last sign-in (the user's own address may differ).
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("issuer", "subject"), name="unique_sso_identity"),)
        ordering = ("issuer", "subject")

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
