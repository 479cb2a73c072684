"""Validation: hypotheses, their experiments, immutable result snapshots and the decisions taken."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation


# Choices live at module level so each has a distinct name in the OpenAPI schema.
class HypothesisState(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready"
    TESTING = "testing", "Testing"
    CONCLUDED = "concluded", "Concluded"


class ExperimentKind(models.TextChoices):
    AB = "ab", "Randomised A/B(n) test"
    BEFORE_AFTER = "before_after", "Before/after comparison (observational)"
    QUALITATIVE = "qualitative", "Qualitative (interviews, usability tests)"


class ExperimentState(models.TextChoices):
    PLANNED = "planned", "Planned"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class MetricRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    SECONDARY = "secondary", "Secondary"
    GUARDRAIL = "guardrail", "Guardrail"


class DecisionOutcome(models.TextChoices):
    VALIDATED = "validated", "Validated"
    INVALIDATED = "invalidated", "Invalidated"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class SnapshotKind(models.TextChoices):
    COMPUTED = "computed", "Computed by TrueNorth"
    IMPORTED = "imported", "Imported from an outside tool"


class DecisionChoice(models.TextChoices):
    PERSEVERE = "persevere", "Persevere"
    PIVOT = "pivot", "Pivot"
    STOP = "stop", "Stop"


class Hypothesis(models.Model):
    """We believe [capability] for [who] will result in [outcome]; we will know when [measure] moves."""

    State = HypothesisState

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="hypotheses")
    product = models.ForeignKey("strategy.Product", on_delete=models.CASCADE, related_name="hypotheses")
    # Line of sight: the goal this hypothesis serves.
    goal = models.ForeignKey(
        "strategy.Goal", on_delete=models.SET_NULL, null=True, blank=True, related_name="hypotheses"
    )
    title = models.CharField(max_length=200)
    capability = models.TextField(blank=True)
    who = models.CharField(max_length=200, blank=True)
    outcome = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # "We will know we have succeeded when [measure] moves from [baseline] to [target] by [date]."
    measure = models.ForeignKey(
        "measures.Measure", on_delete=models.SET_NULL, null=True, blank=True, related_name="hypotheses"
    )
    metric_name = models.CharField(max_length=120, blank=True, help_text="When no measure is linked.")
    baseline = models.FloatField(null=True, blank=True)
    target = models.FloatField(null=True, blank=True)
    by_date = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    # Prioritisation inputs (DOMAIN.md §4); None: not estimated yet.
    impact = models.PositiveSmallIntegerField(null=True, blank=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    ease = models.PositiveSmallIntegerField(null=True, blank=True)
    reach = models.FloatField(null=True, blank=True)
    effort = models.FloatField(null=True, blank=True)
    cost_of_delay = models.FloatField(null=True, blank=True, help_text="Value lost per week of delay.")
    duration_weeks = models.FloatField(null=True, blank=True)
    business_value = models.FloatField(null=True, blank=True)
    time_criticality = models.FloatField(null=True, blank=True)
    risk_reduction = models.FloatField(null=True, blank=True)
    job_size = models.FloatField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("position", "id")
        verbose_name_plural = "hypotheses"
        indexes = [models.Index(fields=("organisation", "product", "state"))]

    def __str__(self) -> str:
        return self.title

    @property
    def metric_label(self) -> str:
        return self.measure.name if self.measure_id and self.measure else self.metric_name

    @property
    def is_measurable(self) -> bool:
        """A success signal we can check: a measure or named metric, a baseline and a target."""
        has_metric = self.measure_id is not None or bool(self.metric_name.strip())
        return has_metric and self.baseline is not None and self.target is not None


class Experiment(models.Model):
    """How a hypothesis is tested: kind, variations, metrics, design (MDE, alpha, power, sample) and dates."""

    Kind = ExperimentKind
    State = ExperimentState

    hypothesis = models.ForeignKey(Hypothesis, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.AB)
    minimum_detectable_effect = models.FloatField(
        null=True, blank=True, help_text="Relative, e.g. 0.05 for a 5 % lift."
    )
    alpha = models.FloatField(default=0.05)
    power = models.FloatField(default=0.8)
    planned_sample_size = models.PositiveIntegerField(null=True, blank=True)
    start_date = models.DateField(null=True, blank=True)
    stop_date = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PLANNED)
    # Evidence settings (results.py): where the raw events live, the experiment's key in the
    # assignments table, and the metric definitions (truenorth.evidence.metrics format) whose names
    # match the experiment's metrics.
    data_source = models.ForeignKey(
        "measures.DataSource", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    evidence_key = models.CharField(max_length=200, blank=True)
    metric_definitions = models.JSONField(default=list, blank=True)
    # Where the assignment and event tables and their columns are (truenorth.evidence.mapping shape);
    # empty = today's names (assignments/events, first_exposure_at/at…).
    evidence_mapping = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return self.name


class Variation(models.Model):
    """One arm of an experiment (the first is the control) with its planned share of units."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variations")
    name = models.CharField(max_length=80)
    allocation = models.FloatField(help_text="Planned share of units, 0..1.")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")
        constraints = [
            models.UniqueConstraint(fields=("experiment", "name"), name="unique_variation_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ExperimentMetric(models.Model):
    """A metric an experiment watches: the primary one, secondary ones, and guardrails that must not fall."""

    Role = MetricRole

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metrics")
    role = models.CharField(max_length=20, choices=Role.choices)
    name = models.CharField(max_length=120)
    measure = models.ForeignKey(
        "measures.Measure", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete a result snapshot."""


class SnapshotQuerySet(models.QuerySet["ResultSnapshot"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Result snapshots are never updated.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Result snapshots are never deleted.")


class ResultSnapshot(models.Model):
    """The results of an experiment as computed once, with the method, inputs and query used. Immutable
    (the database refuses UPDATE, DELETE and, on PostgreSQL, TRUNCATE: migration 0003).

    `computed` ones are written by TrueNorth's own computation (results.compute_results) only: they are
    the headline and what "conclude" links. `imported` ones come from an outside tool, with who
    attached them, the tool's name and a note; they are shown labelled and never as the headline."""

    Kind = SnapshotKind

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="snapshots")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.COMPUTED)
    computed_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=120)
    inputs = models.JSONField(default=dict)
    query = models.TextField(blank=True)
    results = models.JSONField(default=dict)
    # Who computed (or attached) it; PROTECT because setting it to NULL would rewrite the snapshot.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    author_name = models.CharField(max_length=254, blank=True)
    # For imported ones: the outside tool they come from, and the author's note.
    source_name = models.CharField(max_length=120, blank=True)
    note = models.TextField(blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ("-computed_at", "-id")
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"{self.method} at {self.computed_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("Result snapshots are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Result snapshots are never deleted.")

    @property
    def is_imported(self) -> bool:
        return self.kind == SnapshotKind.IMPORTED

    @property
    def label(self) -> str:
        """How the snapshot is presented: computed, or "Imported from <source> by <author>"."""
        if self.is_imported:
            return f"Imported from {self.source_name} by {self.author_name or 'unknown'}"
        return "Computed by TrueNorth"


class Decision(models.Model):
    """What was concluded from a hypothesis's test, what we do next, and what we learned."""

    Outcome = DecisionOutcome
    Choice = DecisionChoice

    hypothesis = models.ForeignKey(Hypothesis, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    decision = models.CharField(max_length=20, choices=Choice.choices)
    observed = models.TextField(blank=True, help_text="We observed …")
    learning = models.TextField(help_text="We learned …")
    next_step = models.TextField(blank=True, help_text="Therefore we will …")
    snapshot = models.ForeignKey(
        ResultSnapshot, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-decided_at", "-id")

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.get_decision_display()}"
