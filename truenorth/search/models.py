"""The search index: one row per searchable object, kept up to date by `signals.py`.

The full-text index itself is the database's: on SQLite an FTS5 table (`search_entry_fts`, external
content over this table, kept in step by triggers); on PostgreSQL a generated `document` tsvector
column with a GIN index. Both are created by migration 0001 (`index_sql.py`)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation


class SearchKind(models.TextChoices):
    GOAL = "goal", "Goal"
    MEASURE = "measure", "Measure"
    HYPOTHESIS = "hypothesis", "Hypothesis"
    EXPERIMENT = "experiment", "Experiment"
    WORK_ITEM = "work_item", "Work item"
    LEARNING = "learning", "Learning"


class SearchEntry(models.Model):
    Kind = SearchKind

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    object_id = models.PositiveBigIntegerField()
    # The object the link needs besides this one: a learning's hypothesis, a work item's product.
    parent_id = models.PositiveBigIntegerField(null=True, blank=True)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    # Archived objects stay indexed (so restoring them is one update) but are not found.
    archived = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("kind", "object_id"), name="unique_search_entry"),
        ]
        indexes = [models.Index(fields=("organisation", "kind"))]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}: {self.title}"
