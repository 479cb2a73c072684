"""Delivery models: branches (active branches, an Ability-to-Innovate measure) and the deployment an
incident names as its cause.

- `Branch`: a branch of a source's repository as the last import listing it saw it (head commit and
  that commit's time). An import that lists the branches (the git importer) updates them; a branch gone
  from the repository is marked `deleted_at` rather than removed, so how many branches were active at
  any past date stays computable.
- `IncidentCause`: the deployment an imported incident names (its external id in the same source),
  kept so that the incident is linked (`Incident.deployment`) as soon as that deployment is known, in
  the same import or a later one.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from truenorth.delivery.models.base import DeliverySource, Incident

__all__ = ["Branch", "IncidentCause"]


class Branch(models.Model):
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="branches")
    name = models.CharField(max_length=200)  # "main", or "origin/main" for a remote-tracking branch
    remote = models.BooleanField(default=False)  # a remote-tracking branch (refs/remotes/<remote>/…)
    head_sha = models.CharField(max_length=64, blank=True)
    last_commit_at = models.DateTimeField()  # the head commit's committer date
    first_seen_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)  # the last import that listed it
    deleted_at = models.DateTimeField(null=True, blank=True)  # gone from the repository since then

    class Meta:
        ordering = ("name", "id")
        constraints = [models.UniqueConstraint(fields=("source", "name"), name="unique_branch")]
        indexes = [models.Index(fields=("source", "last_commit_at"))]

    def __str__(self) -> str:
        return self.name


class IncidentCause(models.Model):
    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="cause")
    source = models.ForeignKey(DeliverySource, on_delete=models.CASCADE, related_name="+")
    deployment_external_id = models.CharField(max_length=100)

    class Meta:
        indexes = [models.Index(fields=("source", "deployment_external_id"))]

    def __str__(self) -> str:
        return f"{self.incident_id} caused by {self.deployment_external_id}"
