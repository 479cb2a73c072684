"""Record and read the append-only history that every tracked model uses.

Usage from any domain service::

    before = snapshot(goal, GOAL_FIELDS)
    ... change goal, save ...
    after = snapshot(goal, GOAL_FIELDS)
    record(goal.organisation, goal, actor, HistoryEntry.Action.UPDATED, diff(before, after))
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models

from truenorth.accounts.models import User
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Organisation

JSONValue = Any


def _jsonable(value: Any) -> JSONValue:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, JSONValue]:
    """The JSON-able values of the named fields of obj (foreign keys by their text)."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def diff(before: dict[str, JSONValue], after: dict[str, JSONValue]) -> dict[str, dict[str, Any]]:
    """Field-by-field changes between two snapshots, as {"field": {"old": …, "new": …}}."""
    changed: dict[str, dict[str, Any]] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            changed[key] = {"old": old, "new": new}
    return changed


def object_type_of(obj: models.Model) -> str:
    return obj._meta.label_lower


def record(
    organisation: Organisation,
    obj: models.Model,
    actor: User | None,
    action: str,
    changes: dict[str, dict[str, Any]] | None = None,
) -> HistoryEntry | None:
    """Append one history entry; an update that changed nothing records nothing."""
    if action == HistoryEntry.Action.UPDATED and not changes:
        return None
    return HistoryEntry.objects.create(
        organisation=organisation,
        object_type=object_type_of(obj),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action=action,
        changes=changes or {},
        actor=actor,
        actor_name=actor.email if actor else "system",
    )


def entries_for(organisation: Organisation, obj: models.Model | None = None) -> models.QuerySet[HistoryEntry]:
    """History of one object, or of the whole organisation when obj is None (newest first)."""
    qs = HistoryEntry.objects.filter(organisation=organisation)
    if obj is not None:
        qs = qs.filter(object_type=object_type_of(obj), object_id=str(obj.pk))
    return qs.order_by("-at", "-id")
