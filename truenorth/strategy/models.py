from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation


# Choices live at module level so each has a distinct name in the OpenAPI schema.
class GoalLevel(models.TextChoices):
    STRATEGIC = "strategic", "Strategic goal"
    INTERMEDIATE = "intermediate", "Intermediate goal"
    TACTICAL = "tactical", "Immediate tactical goal"
    SPRINT = "sprint", "Sprint goal"


class GoalStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACTIVE = "active", "Active"
    ACHIEVED = "achieved", "Achieved"
    MISSED = "missed", "Missed"
    ABANDONED = "abandoned", "Abandoned"


class LinkKind(models.TextChoices):
    ALIGNS = "aligns", "Aligns to (counts toward)"
    RELATES = "relates", "Related to"


class Direction(models.TextChoices):
    INCREASE = "increase", "Higher is better"
    DECREASE = "decrease", "Lower is better"


class CheckInStatus(models.TextChoices):
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    OFF_TRACK = "off_track", "Off track"


class ProposalState(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class EndorsementKind(models.TextChoices):
    ENDORSE = "endorse", "Endorses"
    CONCERN = "concern", "Concern"


class WorkItemStatus(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class Team(models.Model):
    """A team of people in an organisation that works on one or more products."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ("name", "id")
        constraints = [models.UniqueConstraint(fields=("organisation", "name"), name="unique_team_name")]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A product: its vision, its product goal, its owner and the teams that build it."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=120)
    vision = models.TextField(blank=True)
    product_goal = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    teams = models.ManyToManyField(Team, blank=True, related_name="products")
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return self.name


class Goal(models.Model):
    """An outcome to reach: strategic, intermediate, tactical or sprint; owned, dated and measured."""

    Level = GoalLevel

    Status = GoalStatus

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="goals")
    # None: an organisation-level goal that several products serve.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, null=True, blank=True, related_name="goals"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    level = models.CharField(max_length=20, choices=Level.choices, default=Level.STRATEGIC)
    title = models.CharField(max_length=200)
    outcome = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_goals"
    )
    target_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED)
    weight = models.FloatField(default=1.0)
    position = models.PositiveIntegerField(default=0)
    checkin_cadence_days = models.PositiveSmallIntegerField(default=7)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("position", "id")
        indexes = [
            models.Index(fields=("organisation", "product", "parent")),
            models.Index(fields=("organisation", "owner")),
        ]

    def __str__(self) -> str:
        return self.title


class GoalLink(models.Model):
    """A goal aligned to (counts toward) or related to (no roll-up) a goal elsewhere in the organisation."""

    Kind = LinkKind

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="links_in")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("source", "target", "kind"), name="unique_goal_link"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.target}"


class ActiveTargetManager(models.Manager["TargetMeasure"]):
    """The default manager (so `goal.targets` too): archived target measures are left out everywhere."""

    def get_queryset(self) -> models.QuerySet[TargetMeasure]:
        return super().get_queryset().filter(archived_at__isnull=True)


class TargetMeasure(models.Model):
    """What moving the goal means in numbers: a measure from its baseline to a target, in a direction.

    Never deleted: removing one from a goal archives it (`archived_at`), so its observations are kept.
    `objects` (and `goal.targets`) hold the active ones; `all_objects` the archived ones too."""

    Direction = Direction

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="targets")
    # The Value pillar's measure this target tracks (its observations then come from the measure);
    # None: a named measure local to the goal, observed through TargetObservation.
    measure = models.ForeignKey(
        "measures.Measure", on_delete=models.SET_NULL, null=True, blank=True, related_name="goal_targets"
    )
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=30, blank=True)
    baseline = models.FloatField()
    target = models.FloatField()
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.INCREASE)
    position = models.PositiveIntegerField(default=0)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = ActiveTargetManager()
    all_objects = models.Manager()  # noqa: DJ012 - a second manager, not a field

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return f"{self.name}: {self.baseline:g} → {self.target:g} {self.unit}".strip()


class TargetObservation(models.Model):
    """A value of a target measure at a time (until the measures pillar supplies them). Append-only: the
    database refuses UPDATE, DELETE and (PostgreSQL) TRUNCATE (migration 0003)."""

    target_measure = models.ForeignKey(TargetMeasure, on_delete=models.PROTECT, related_name="observations")
    value = models.FloatField()
    observed_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=500, blank=True)
    # PROTECT: setting it to NULL would rewrite evidence (deactivate people instead of deleting them).
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-observed_at", "-id")
        indexes = [models.Index(fields=("target_measure", "-observed_at"))]

    def __str__(self) -> str:
        return f"{self.value:g} at {self.observed_at:%Y-%m-%d}"


class CheckIn(models.Model):
    """The owner's regular word on an active goal: status, confidence and a short narrative."""

    Status = CheckInStatus

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="checkins")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    confidence = models.PositiveSmallIntegerField()
    narrative = models.TextField(blank=True)
    observation = models.ForeignKey(
        TargetObservation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The value recorded on the Value measure a linked target tracks (PROTECT: evidence is never rewritten).
    measure_observation = models.ForeignKey(
        "measures.Observation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The client's key for this check-in (the form sends one): a repeated request is answered with it.
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("goal", "-created_at"))]
        constraints = [
            models.UniqueConstraint(
                fields=("goal", "idempotency_key"),
                condition=~models.Q(idempotency_key=""),
                name="unique_checkin_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} ({self.confidence}/10) on {self.goal}"


class Comment(models.Model):
    """A remark on a goal by anyone in the organisation; @mentions notify people."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return self.body[:60]


class ChangeProposal(models.Model):
    """A suggested change to a goal's wording, target or date, which its owner accepts or rejects."""

    State = ProposalState

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="proposals")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # {"title": "...", "outcome": "...", "target_date": "YYYY-MM-DD", "targets": {"<id>": {"target": 12.0}}}
    changes = models.JSONField()
    reason = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    goal_version = models.PositiveIntegerField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"Proposal on {self.goal} ({self.state})"


class Endorsement(models.Model):
    """Someone says they understand and support a goal, or raises a concern about it."""

    Kind = EndorsementKind

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="endorsements")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # One standing endorsement per person and goal; concerns may be many.
            models.UniqueConstraint(
                fields=("goal", "user"),
                condition=models.Q(kind="endorse", resolved_at__isnull=True),
                name="one_endorsement_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} {self.goal}"


class WorkItem(models.Model):
    """A piece of work (story, epic, ticket) that importers fill; linked to a goal for line of sight."""

    Status = WorkItemStatus

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="work_items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="work_items")
    title = models.CharField(max_length=300)
    external_key = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TODO)
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="work_items"
    )
    goal = models.ForeignKey(
        Goal, on_delete=models.SET_NULL, null=True, blank=True, related_name="work_items"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("product", "external_key"),
                condition=~models.Q(external_key=""),
                name="unique_work_item_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_key} {self.title}".strip()
