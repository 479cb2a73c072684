"""Engagement models: stakeholders (the people whose support a product needs) and the log of
interactions with them. The rules (quadrants, gaps, contact intervals) live in engagement/quadrants.py
and engagement/services/stakeholders.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from truenorth.orgs.models import Organisation

__all__: list[str] = [
    "ENGAGEMENT_ORDER",
    "Department",
    "EngagementLevel",
    "EngagementLogEntry",
    "InteractionKind",
    "Stakeholder",
]


class Department(models.TextChoices):
    LEADERSHIP = "leadership", "Leadership"
    PRODUCT = "product", "Product"
    ENGINEERING = "engineering", "Engineering"
    DESIGN = "design", "Design"
    SALES = "sales", "Sales"
    MARKETING = "marketing", "Marketing"
    SUPPORT = "support", "Support"
    LEGAL = "legal", "Legal"
    SECURITY = "security", "Security"
    FINANCE = "finance", "Finance"
    OPERATIONS = "operations", "Operations"
    CUSTOMERS = "customers", "Customers"
    PARTNERS = "partners", "Partners"
    OTHER = "other", "Other"


class EngagementLevel(models.TextChoices):
    """Ordered: unaware < resistant < neutral < supportive < leading (ENGAGEMENT_ORDER gives the step)."""

    UNAWARE = "unaware", "Unaware"
    RESISTANT = "resistant", "Resistant"
    NEUTRAL = "neutral", "Neutral"
    SUPPORTIVE = "supportive", "Supportive"
    LEADING = "leading", "Leading"


ENGAGEMENT_ORDER: tuple[str, ...] = tuple(level.value for level in EngagementLevel)


class InteractionKind(models.TextChoices):
    MEETING = "meeting", "Meeting"
    REVIEW = "review", "Review"
    DEMO = "demo", "Demo"
    MESSAGE = "message", "Message"
    CALL = "call", "Call"
    WORKSHOP = "workshop", "Workshop"
    OTHER = "other", "Other"


class Stakeholder(models.Model):
    """A person whose influence on, and interest in, our products we track (inside or outside the
    organisation). `email` is stored lower-case and is unique per organisation when given."""

    Department = Department
    Engagement = EngagementLevel

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="stakeholders")
    name = models.CharField(max_length=200)
    email = models.CharField(max_length=254, blank=True, default="")
    title = models.CharField(max_length=200, blank=True, default="")
    company = models.CharField(max_length=200, blank=True, default="")  # their own organisation, if outside
    department = models.CharField(max_length=20, choices=Department.choices, default=Department.OTHER)
    influence = models.PositiveSmallIntegerField(default=3)
    interest = models.PositiveSmallIntegerField(default=3)
    current_engagement = models.CharField(
        max_length=20, choices=EngagementLevel.choices, default=EngagementLevel.NEUTRAL
    )
    desired_engagement = models.CharField(
        max_length=20, choices=EngagementLevel.choices, default=EngagementLevel.SUPPORTIVE
    )
    relationship_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    goals = models.ManyToManyField("strategy.Goal", blank=True, related_name="stakeholders")
    products = models.ManyToManyField("strategy.Product", blank=True, related_name="stakeholders")
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                "organisation",
                Lower("email"),
                condition=~models.Q(email=""),
                name="engagement_stakeholder_email_unique",
                violation_error_message="A stakeholder with this e-mail address already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(influence__gte=1, influence__lte=5),
                name="engagement_stakeholder_influence_1_5",
            ),
            models.CheckConstraint(
                condition=models.Q(interest__gte=1, interest__lte=5),
                name="engagement_stakeholder_interest_1_5",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EngagementLogEntry(models.Model):
    """One interaction with one or more stakeholders (a meeting, a demo, a message…)."""

    Kind = InteractionKind

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="engagement_log")
    occurred_on = models.DateField()
    kind = models.CharField(max_length=20, choices=InteractionKind.choices, default=InteractionKind.MEETING)
    summary = models.CharField(max_length=300)
    notes = models.TextField(blank=True, default="")
    stakeholders = models.ManyToManyField(Stakeholder, related_name="log_entries")
    goals = models.ManyToManyField("strategy.Goal", blank=True, related_name="engagement_log_entries")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-occurred_on", "-id")
        indexes = [models.Index(fields=["organisation", "occurred_on"], name="engagement_log_org_day")]

    def __str__(self) -> str:
        return f"{self.occurred_on.isoformat()} {self.get_kind_display()}: {self.summary}"
