"""Engagement models: health — saved alignment health checks (append-only), for the trend."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__: list[str] = ["HealthAssessment", "HealthAssessmentError"]


class HealthAssessmentError(RuntimeError):
    """Raised when code tries to change or delete a saved assessment."""


class HealthAssessmentQuerySet(models.QuerySet["HealthAssessment"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise HealthAssessmentError("Health assessments are never updated.")

    def delete(self) -> NoReturn:
        raise HealthAssessmentError("Health assessments are never deleted.")


class HealthAssessment(models.Model):
    """One alignment health check as it was computed: the scores, the facts they came from and the next
    steps proposed. Never changed or deleted once saved (the model and queryset refuse it; the page
    compares the current check with the last one). Deleting the organisation takes them along."""

    organisation = models.ForeignKey("orgs.Organisation", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # None: the weekly assessment saved by the worker.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # {"overall": 72, "vision": 80, "value": 50, "validation": None, "engagement": 90}
    scores = models.JSONField(default=dict)
    facts = models.JSONField(default=dict)
    next_steps = models.JSONField(default=list)

    objects = HealthAssessmentQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("organisation", "-created_at"))]

    def __str__(self) -> str:
        return f"Health check of {self.created_at:%Y-%m-%d %H:%M}: {self.scores.get('overall')}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise HealthAssessmentError("Health assessments are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise HealthAssessmentError("Health assessments are never deleted.")
