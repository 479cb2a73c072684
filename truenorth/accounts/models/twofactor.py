"""Accounts models: two-factor sign-in (TOTP authenticators, recovery codes, wrong-code counter)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from truenorth.accounts.models.base import User

__all__ = ["RecoveryCode", "TOTPDevice", "TwoFactorFailure"]


class TOTPDevice(models.Model):
    """A user's confirmed authenticator app: its TOTP secret, encrypted, and the last time step used."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    # core.crypto.seal(base32 secret, TOTP purpose); never shown again after enrolment.
    secret_encrypted = models.TextField()
    # The 30-second step of the last accepted code: a code is good once (replay protection).
    last_used_step = models.BigIntegerField(default=0)
    confirmed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"authenticator of {self.user}"


class RecoveryCode(models.Model):
    """A single-use recovery code; only its hash is stored, the code is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("user", "code_hash"), name="unique_recovery_code"),)

    def __str__(self) -> str:
        return f"recovery code of {self.user}"


class TwoFactorFailure(models.Model):
    """A wrong authenticator or recovery code, kept for the throttling window."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="two_factor_failures")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = (models.Index(fields=("user", "at"), name="twofactorfailure_user_at"),)

    def __str__(self) -> str:
        return f"wrong second-step code for {self.user}"
