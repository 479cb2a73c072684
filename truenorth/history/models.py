from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete a history entry."""


class HistoryQuerySet(models.QuerySet["HistoryEntry"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("History entries are never updated.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("History entries are never deleted.")


class HistoryEntry(models.Model):
    """One change to one object: who, when, what, with old and new values. Append-only."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"
        ARCHIVED = "archived", "Archived"

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.PROTECT, related_name="history", db_index=True
    )
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=Action.choices)
    # {"field": {"old": ..., "new": ...}}
    changes = models.JSONField(default=dict)
    # No database constraint: deleting a user must not rewrite history; actor_name keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(max_length=254, blank=True)
    at = models.DateTimeField(default=timezone.now)

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=("organisation", "object_type", "object_id", "-at"))]
        verbose_name_plural = "history entries"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_type} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("History entries are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("History entries are never deleted.")
