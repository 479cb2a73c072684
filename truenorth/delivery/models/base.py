"""Delivery evidence: what the importers bring in (one source = one delivery system of one team or
product), kept idempotent by natural keys so that importing the same file twice changes nothing.

- `DeliverySource`: where the data comes from (git, github, jira, azure, events) and how its workflow
  states map onto started / done / waiting.
- `ImportRun`: one import of one file or one fetch, with its counts and the bad records (location and
  message), linked to the background job that ran it.
- `DeliveryItem` + `StateTransition`: work items and their state changes (flow metrics).
- `Commit`, `PullRequest`, `Release`, `Deployment`, `Incident`: DORA inputs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation

__all__ = [
    "Commit",
    "DeliveryItem",
    "DeliverySource",
    "Deployment",
    "ImportRun",
    "ImportStatus",
    "Incident",
    "PullRequest",
    "Release",
    "SourceKind",
    "StateTransition",
]


class SourceKind(models.TextChoices):
    GIT = "git", "Git repository"
    GITHUB = "github", "GitHub"
    JIRA = "jira", "Jira"
    AZURE = "azure", "Azure DevOps"
    EVENTS = "events", "Generic events (CSV/JSON)"


class DeliverySource(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="delivery_sources")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=SourceKind.choices)
    product = models.ForeignKey(
        "strategy.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="delivery_sources"
    )
    team = models.ForeignKey(
        "strategy.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="delivery_sources"
    )
    # {"started": ["In Progress", ...], "done": ["Done", ...], "waiting": ["Blocked", "In Review"]}:
    # state names as the source spells them (compared case-insensitively).
    state_mapping = models.JSONField(default=dict, blank=True)
    # The environment whose deployments count as production (DORA), e.g. "production".
    production_environment = models.CharField(max_length=60, default="production")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=("organisation", "name"), name="unique_delivery_source_name")
        ]

    def __str__(self) -> str:
        return self.name


class ImportStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportRun(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="imports")
    importer = models.CharField(max_length=40)  # e.g. "git", "jira-csv", "jira-changelog", "events-csv"
    file_name = models.CharField(max_length=255, blank=True)
    digest = models.CharField(max_length=64, blank=True)  # sha256 of the input, when it is a file
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.RUNNING)
    created = models.JSONField(default=dict)  # {"items": 10, "transitions": 52, ...}: new rows by kind
    unchanged = models.PositiveIntegerField(default=0)  # records already known (idempotency)
    errors = models.JSONField(default=list)  # [{"location": "line 12", "message": "..."}], capped
    error_count = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField(null=True, blank=True)  # the time span the imported records cover
    window_end = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at", "-id")

    def __str__(self) -> str:
        return f"{self.importer} import into {self.source_id} ({self.status})"


class DeliveryItem(models.Model):
    """A work item as the delivery system knows it (a Jira issue, a GitHub issue, an Azure work item)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=100)
    title = models.CharField(max_length=300, blank=True)
    item_type = models.CharField(max_length=40, blank=True)  # story, bug, task, incident, …
    labels = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    # The Vision work item this ticket became (line of sight), when it could be matched.
    work_item = models.ForeignKey(
        "strategy.WorkItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "external_id"), name="unique_delivery_item")]
        indexes = [models.Index(fields=("organisation", "source"))]

    def __str__(self) -> str:
        return self.external_id


class StateTransition(models.Model):
    item = models.ForeignKey(DeliveryItem, on_delete=models.CASCADE, related_name="transitions")
    at = models.DateTimeField()
    from_state = models.CharField(max_length=60, blank=True)
    to_state = models.CharField(max_length=60)

    class Meta:
        ordering = ("at", "id")
        constraints = [
            models.UniqueConstraint(fields=("item", "at", "to_state"), name="unique_state_transition")
        ]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state} at {self.at:%Y-%m-%d %H:%M}"


class Commit(models.Model):
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="commits")
    sha = models.CharField(max_length=64)
    authored_at = models.DateTimeField()
    committed_at = models.DateTimeField()
    is_merge = models.BooleanField(default=False)
    branch = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "sha"), name="unique_commit")]
        indexes = [models.Index(fields=("source", "committed_at"))]

    def __str__(self) -> str:
        return self.sha[:12]


class PullRequest(models.Model):
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="pull_requests")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    first_commit_at = models.DateTimeField(null=True, blank=True)  # lead time starts here (squash/rebase)
    merged_at = models.DateTimeField(null=True, blank=True)
    merge_sha = models.CharField(max_length=64, blank=True)
    commit_shas = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "number"), name="unique_pull_request")]

    def __str__(self) -> str:
        return f"#{self.number}"


class Release(models.Model):
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="releases")
    name = models.CharField(max_length=200)
    at = models.DateTimeField()
    sha = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "name"), name="unique_release")]

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One deployment; several rows of one pipeline run share `run_id` and count as one deployment."""

    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="deployments")
    external_id = models.CharField(max_length=100)
    run_id = models.CharField(max_length=100, blank=True)
    service = models.CharField(max_length=120, blank=True)
    environment = models.CharField(max_length=60, blank=True)
    deployed_at = models.DateTimeField()
    succeeded = models.BooleanField(default=True)
    commit_shas = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "external_id"), name="unique_deployment")]
        indexes = [models.Index(fields=("source", "deployed_at"))]

    def __str__(self) -> str:
        return f"{self.service or 'deployment'} {self.external_id}"


class Incident(models.Model):
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="incidents")
    external_id = models.CharField(max_length=100)
    service = models.CharField(max_length=120, blank=True)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    deployment = models.ForeignKey(
        Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=("source", "external_id"), name="unique_incident")]

    def __str__(self) -> str:
        return self.external_id
