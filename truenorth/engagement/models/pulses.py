"""Engagement models: alignment pulses.

A `Pulse` is a recurring short survey of one product's members and stakeholders. Each time it runs it
opens a `PulseRound` (the official goal statement is copied into the round when it opens), sends one
`PulseInvitation` per person (a single-use link; only the sha256 of its token is stored) and collects
`PulseResponse`s. For anonymity a response is linked neither to its invitation nor to a person: the
invitation's `used_at` is set (once, in the same transaction) and the answer is stored on its own.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from truenorth.orgs.models import Organisation

__all__: list[str] = ["Pulse", "PulseInvitation", "PulseResponse", "PulseRound"]


def default_min_group_size() -> int:
    return int(settings.TRUENORTH_PULSE_MIN_GROUP_SIZE)


class Pulse(models.Model):
    """A recurring alignment survey of one product (cadence_days 0: one round only)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="pulses")
    product = models.ForeignKey("strategy.Product", on_delete=models.CASCADE, related_name="pulses")
    title = models.CharField(max_length=200)
    cadence_days = models.PositiveSmallIntegerField(default=0)
    open_days = models.PositiveSmallIntegerField(default=7)
    next_run_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    # Audience: every member of the organisation, or the chosen ones; plus the product's stakeholders
    # who have an e-mail address.
    all_members = models.BooleanField(default=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    include_stakeholders = models.BooleanField(default=True)
    min_group_size = models.PositiveSmallIntegerField(default=default_min_group_size)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("title", "id")
        indexes = [models.Index(fields=("active", "next_run_at"), name="engagement_pulse_due")]
        constraints = [
            models.CheckConstraint(condition=Q(open_days__gte=1), name="pulse_open_days_positive"),
            models.CheckConstraint(condition=Q(min_group_size__gte=1), name="pulse_min_group_positive"),
        ]

    def __str__(self) -> str:
        return self.title


class PulseRound(models.Model):
    """One run of a pulse: the goal statement it asked about, when it opened and closes."""

    pulse = models.ForeignKey(Pulse, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    goal_statement = models.TextField(blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    closes_at = models.DateTimeField()
    # Set when the round is closed (by the periodic task once closes_at passed, or early by hand).
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("pulse", "number")
        constraints = [
            models.UniqueConstraint(fields=("pulse", "number"), name="unique_pulse_round_number"),
        ]

    def __str__(self) -> str:
        return f"{self.pulse} #{self.number}"


class PulseInvitation(models.Model):
    """One person's single-use link to a round (only the token's sha256 is stored)."""

    round = models.ForeignKey(PulseRound, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stakeholder = models.ForeignKey(
        "engagement.Stakeholder", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("round", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("round", "user"), condition=Q(user__isnull=False), name="unique_pulse_invite_user"
            ),
            models.UniqueConstraint(
                fields=("round", "email"), condition=~Q(email=""), name="unique_pulse_invite_email"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.round}: {self.email or self.user_id}"


class PulseResponse(models.Model):
    """One anonymous answer to a round (no link to the invitation or the person)."""

    round = models.ForeignKey(PulseRound, on_delete=models.CASCADE, related_name="responses")
    group = models.CharField(max_length=120, blank=True)
    own_words = models.TextField()
    clarity = models.PositiveSmallIntegerField()
    commitment = models.PositiveSmallIntegerField()
    contribution = models.TextField(blank=True)
    contribution_goal = models.ForeignKey(
        "strategy.Goal", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    similarity = models.FloatField(default=0.0)
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("round", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(clarity__gte=1) & Q(clarity__lte=5), name="pulse_response_clarity_1_5"
            ),
            models.CheckConstraint(
                condition=Q(commitment__gte=1) & Q(commitment__lte=5), name="pulse_response_commitment_1_5"
            ),
            models.CheckConstraint(
                condition=Q(similarity__gte=0) & Q(similarity__lte=1), name="pulse_response_similarity_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.round}: response {self.pk}"
