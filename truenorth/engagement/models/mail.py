"""Engagement models: mail — the outbox of e-mails (reminders, digests, pulse invitations, briefs),
each person's notification settings per organisation, and what they follow."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Goal, Product

__all__: list[str] = [
    "EmailKind",
    "EmailStatus",
    "Follow",
    "NotificationSettings",
    "OutgoingEmail",
]


class EmailKind(models.TextChoices):
    REMINDER = "reminder", "Check-in reminder"
    DIGEST = "digest", "Weekly digest"
    PULSE = "pulse", "Alignment pulse"
    BRIEF = "brief", "Product brief"
    OTHER = "other", "Other"


class EmailStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutgoingEmail(models.Model):
    """One e-mail the instance sends (or tried to): recorded first, then sent by the background worker,
    retried with backoff, never silently dropped. `dedupe_key` is unique per organisation."""

    Kind = EmailKind
    Status = EmailStatus

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to = models.CharField(max_length=254)
    kind = models.CharField(max_length=20, choices=EmailKind.choices, default=EmailKind.OTHER)
    subject = models.CharField(max_length=300)
    text = models.TextField()
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=EmailStatus.choices, default=EmailStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("organisation", "dedupe_key"), name="engagement_email_dedupe"),
        ]
        indexes = [
            models.Index(fields=("status", "next_attempt_at")),
            models.Index(fields=("organisation", "user", "kind", "sent_at")),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to}"


class NotificationSettings(models.Model):
    """What e-mail one person wants from one organisation (defaults apply until they save)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    checkin_reminders = models.BooleanField(default=True)
    weekly_digest = models.BooleanField(default=True)
    digest_weekday = models.PositiveSmallIntegerField(default=0)  # 0 = Monday … 6 = Sunday
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "organisation"), name="engagement_notification_settings_unique"),
            models.CheckConstraint(
                condition=Q(digest_weekday__gte=0) & Q(digest_weekday__lte=6),
                name="engagement_notification_settings_weekday",
            ),
        ]

    def __str__(self) -> str:
        return f"Notification settings of {self.user_id} in {self.organisation_id}"


class Follow(models.Model):
    """A person follows a product or a goal (exactly one) for their digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(
                condition=(Q(product__isnull=False) & Q(goal__isnull=True))
                | (Q(product__isnull=True) & Q(goal__isnull=False)),
                name="engagement_follow_one_target",
            ),
            models.UniqueConstraint(
                fields=("user", "organisation", "product"),
                condition=Q(product__isnull=False),
                name="engagement_follow_product_unique",
            ),
            models.UniqueConstraint(
                fields=("user", "organisation", "goal"),
                condition=Q(goal__isnull=False),
                name="engagement_follow_goal_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Follow {self.product_id or self.goal_id}"
