from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    STAKEHOLDER = "stakeholder", "Stakeholder"


# Higher ranks include every right of the lower ones.
ROLE_RANK: dict[str, int] = {
    Role.STAKEHOLDER: 10,
    Role.MEMBER: 20,
    Role.ADMIN: 30,
    Role.OWNER: 40,
}

ROLE_HELP: dict[str, str] = {
    Role.OWNER: "Everything, including deleting the organisation and managing owners.",
    Role.ADMIN: "Manages members, invitations and settings; edits everything.",
    Role.MEMBER: "Reads and edits goals, measures and hypotheses.",
    Role.STAKEHOLDER: "Reads everything and comments; cannot edit.",
}


class Organisation(models.Model):
    """A tenant: everything in TrueNorth belongs to exactly one organisation."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)
    # Members signing in with a password must use two-factor sign-in (accounts/twofactor.py).
    require_two_factor = models.BooleanField(default=False)
    # Replaced after every write to the organisation's data: the key of its kept pages (orgs/pagecache.py).
    cache_version = models.CharField(max_length=16, default="", editable=False)

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one organisation."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("organisation", "user"), name="unique_membership"),
        ]
        ordering = ("organisation__name", "id")

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} as {self.role}"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[minimum]

    @property
    def can_write(self) -> bool:
        return self.has_role(Role.MEMBER)

    @property
    def can_admin(self) -> bool:
        return self.has_role(Role.ADMIN)


class Invitation(models.Model):
    """An e-mailed link that lets its holder join an organisation with a role."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organisation}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()

    @staticmethod
    def generate_token() -> str:
        return secrets.token_urlsafe(32)
