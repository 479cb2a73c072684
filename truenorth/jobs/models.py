"""Background jobs: work a person asked for (a refresh, an evidence run, an import) that the worker runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobManager(models.Manager["Job"]):
    """Jobs without their (possibly large) uploaded payload; `services.payload_of(job)` reads it."""

    def get_queryset(self) -> models.QuerySet[Job]:
        return super().get_queryset().defer("payload")


class Job(models.Model):
    """One piece of work for one organisation, run by the background worker; the client follows it."""

    Status = JobStatus

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    params = models.JSONField(default=dict)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    payload = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    objects = JobManager()

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "status"], name="job_org_status"),
            models.Index(fields=["organisation", "-created_at"], name="job_org_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE
