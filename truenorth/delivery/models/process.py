"""Delivery models: process changes tested as experiments (issue 12, capability 7).

A `ProcessChange` is a change to a team's way of working (a lower WIP limit, pairing on reviews …) made on
a date; its flow and DORA measures are compared over the window of `before_days` ending at the change
and the window of `after_days` starting at it (delivery/process_compare.py). It is recorded as a
hypothesis of its product (`hypothesis`), concluded with a decision like any other. The last comparison
is stored on the change (`comparison`, `computed_at`) so its page is fast; `job` is the background job
computing it when the scope is too large to compute inline.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from truenorth.orgs.models import Organisation

__all__ = ["MAX_WINDOW_DAYS", "MIN_WINDOW_DAYS", "ProcessChange"]

MIN_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 365
DEFAULT_WINDOW_DAYS = 42


class ProcessChange(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="process_changes")
    product = models.ForeignKey("strategy.Product", on_delete=models.CASCADE, related_name="process_changes")
    team = models.ForeignKey(
        "strategy.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="process_changes"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    changed_on = models.DateField()
    before_days = models.PositiveSmallIntegerField(default=DEFAULT_WINDOW_DAYS)
    after_days = models.PositiveSmallIntegerField(default=DEFAULT_WINDOW_DAYS)
    hypothesis = models.ForeignKey(
        "hypotheses.Hypothesis",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="process_changes",
    )
    comparison = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("-changed_on", "-id")
        indexes = [models.Index(fields=("organisation", "product", "changed_on"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(before_days__gte=MIN_WINDOW_DAYS) & Q(before_days__lte=MAX_WINDOW_DAYS),
                name="delivery_process_before_days_range",
            ),
            models.CheckConstraint(
                condition=Q(after_days__gte=MIN_WINDOW_DAYS) & Q(after_days__lte=MAX_WINDOW_DAYS),
                name="delivery_process_after_days_range",
            ),
            models.CheckConstraint(condition=~Q(title=""), name="delivery_process_title_not_blank"),
            models.CheckConstraint(
                condition=Q(changed_on__gte=dt.date(1900, 1, 1)) & Q(changed_on__lte=dt.date(2200, 12, 31)),
                name="delivery_process_changed_on_sane",
            ),
        ]

    def __str__(self) -> str:
        return self.title
