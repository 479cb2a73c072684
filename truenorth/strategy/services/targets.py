"""Target measures and their observations: a goal's measurable targets (baseline → target), each
either observed by hand or tracking a measure of the Value pillar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import number as _number
from truenorth.core.validate import observed_time as _observed_time
from truenorth.core.validate import text as _text
from truenorth.core.validate import whole as _whole
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy import value_port
from truenorth.strategy.models import TargetMeasure, TargetObservation
from truenorth.strategy.services._common import TARGET_FIELDS, _goal_snapshot, _locked_goal, _save_goal

if TYPE_CHECKING:
    from truenorth.strategy.value_port import TrackedMeasure


@dataclass
class TargetSpec:
    name: str
    baseline: float
    target: float
    unit: str = ""
    direction: str = TargetMeasure.Direction.INCREASE
    # A Value measure the target tracks (progress, check-in values and staleness then come from it).
    measure_id: int | None = None


def trackable_measures(membership: Membership, product_id: int | None) -> QuerySet[Any]:
    """The live measures a target of a goal in this product (None: organisation level) may track:
    the organisation's measures of that product, and its organisation-wide ones."""
    return value_port.port().trackable_measures(membership.organisation_id, product_id)


def _tracked_measure(membership: Membership, measure_id: Any, field: str) -> TrackedMeasure | None:
    """The measure a target may track: of the same organisation (another's is "no such measure", never
    revealed) and live. The UI offers the goal's product's and the organisation-wide measures first;
    any product's measure of the organisation may be tracked (an imported tree keeps its links)."""
    if measure_id in (None, ""):
        return None
    pk = _whole(measure_id, field, "a measure id")
    measure = value_port.port().measure_of(membership.organisation_id, pk)
    if measure is None:
        raise ValidationFailed("No such measure in this organisation.", field=field)
    if measure.archived_at is not None:
        raise ValidationFailed(f"“{measure.name}” is archived: restore it to track it.", field=field)
    return measure


def _with_measure_defaults(raw: Mapping[str, Any], measure: TrackedMeasure | None) -> Mapping[str, Any]:
    """A target that tracks a measure may leave its name and unit empty: they come from the measure."""
    if measure is None:
        return raw
    filled = dict(raw)
    if not str(filled.get("name") or "").strip():
        filled["name"] = measure.name
    if not str(filled.get("unit") or "").strip():
        filled["unit"] = measure.unit
    return filled


def _clean_target(spec: TargetSpec | Mapping[str, Any], index: int | None = None) -> TargetSpec:
    raw = spec if isinstance(spec, Mapping) else spec.__dict__
    prefix = f"targets.{index}." if index is not None else ""
    name = _text(raw.get("name"), f"{prefix}name", required=True, max_length=120)
    direction = _choice(
        str(raw.get("direction") or TargetMeasure.Direction.INCREASE),
        TargetMeasure.Direction.values,
        f"{prefix}direction",
    )
    baseline = _number(raw.get("baseline"), f"{prefix}baseline")
    target = _number(raw.get("target"), f"{prefix}target")
    if direction == TargetMeasure.Direction.INCREASE and target < baseline:
        raise ValidationFailed(
            "Higher is better, so the target must not be below the baseline.", field=f"{prefix}target"
        )
    if direction == TargetMeasure.Direction.DECREASE and target > baseline:
        raise ValidationFailed(
            "Lower is better, so the target must not be above the baseline.", field=f"{prefix}target"
        )
    return TargetSpec(
        name=name,
        baseline=baseline,
        target=target,
        unit=_text(raw.get("unit"), f"{prefix}unit", max_length=30),
        direction=direction,
        measure_id=raw.get("measure_id"),
    )


def _resolved_target(
    membership: Membership, spec: TargetSpec | Mapping[str, Any], index: int | None = None
) -> tuple[TargetSpec, TrackedMeasure | None]:
    """Clean a target spec and resolve the measure it tracks (checked against the organisation)."""
    raw = spec if isinstance(spec, Mapping) else spec.__dict__
    prefix = f"targets.{index}." if index is not None else ""
    measure = _tracked_measure(membership, raw.get("measure_id"), f"{prefix}measure_id")
    clean = _clean_target(_with_measure_defaults(raw, measure), index)
    clean.measure_id = measure.pk if measure is not None else None
    return clean, measure


def _target_text(t: TargetSpec | TargetMeasure, measure: TrackedMeasure | None = None) -> str:
    unit = f" {t.unit}" if t.unit else ""
    arrow = "↑" if t.direction == TargetMeasure.Direction.INCREASE else "↓"
    tracks = f", tracks measure “{measure.name}”" if measure is not None else ""
    return f"{t.name}: {t.baseline:g} → {t.target:g}{unit} ({arrow}{tracks})"


def _get_target(membership: Membership, target_id: int) -> TargetMeasure:
    try:
        return TargetMeasure.objects.select_related("goal").get(
            pk=target_id, goal__organisation_id=membership.organisation_id
        )
    except TargetMeasure.DoesNotExist:
        raise NotFound("No such target measure.") from None


@transaction.atomic
def add_target(
    membership: Membership,
    actor: User,
    goal_id: int,
    spec: TargetSpec | Mapping[str, Any],
    *,
    version: int | None = None,
) -> TargetMeasure:
    require_writer(membership)
    goal = _locked_goal(membership, goal_id, version)
    clean, measure = _resolved_target(membership, spec)
    position = goal.targets.count()
    target = TargetMeasure.objects.create(goal=goal, position=position, **clean.__dict__)
    _save_goal(
        membership,
        actor,
        goal,
        _goal_snapshot(goal),
        {"targets": {"old": None, "new": _target_text(target, measure)}},
    )
    return target


@transaction.atomic
def update_target(
    membership: Membership,
    actor: User,
    target_id: int,
    spec: Mapping[str, Any],
    *,
    version: int | None = None,
) -> TargetMeasure:
    require_writer(membership)
    target = _get_target(membership, target_id)
    goal = _locked_goal(membership, target.goal_id, version)
    old_text = _target_text(target, target.measure)
    merged = {f: getattr(target, f) for f in TARGET_FIELDS} | {k: v for k, v in spec.items() if v is not None}
    # `measure_id` given as None (or "") unlinks the target; left out, the link stays as it is.
    merged["measure_id"] = spec["measure_id"] if "measure_id" in spec else target.measure_id
    clean, measure = _resolved_target(membership, merged)
    for key, value in clean.__dict__.items():
        setattr(target, key, value)
    target.save()
    new_text = _target_text(target, measure)
    if new_text != old_text:
        _save_goal(
            membership, actor, goal, _goal_snapshot(goal), {"targets": {"old": old_text, "new": new_text}}
        )
    return target


@transaction.atomic
def remove_target(membership: Membership, actor: User, target_id: int, *, version: int | None = None) -> None:
    """Take a target measure off its goal by archiving it: it leaves the goal's targets and progress,
    but it and its observations are kept (evidence is append-only), and the goal's history says so."""
    require_writer(membership)
    target = _get_target(membership, target_id)
    goal = _locked_goal(membership, target.goal_id, version)
    text = _target_text(target)
    kept = target.observations.count()
    target.archived_at = timezone.now()
    target.save(update_fields=["archived_at"])
    archived = f"archived: {text} ({kept} observed value{'s' if kept != 1 else ''} kept)"
    record(
        membership.organisation,
        target,
        actor,
        HistoryEntry.Action.ARCHIVED,
        {"archived_at": {"old": None, "new": timezone.localtime(target.archived_at).isoformat()}},
    )
    _save_goal(membership, actor, goal, _goal_snapshot(goal), {"targets": {"old": text, "new": archived}})


def record_observation(
    membership: Membership,
    actor: User,
    target_id: int,
    value: Any,
    *,
    observed_at: dt.datetime | None = None,
    note: str = "",
) -> TargetObservation:
    require_writer(membership)
    target = _get_target(membership, target_id)
    if target.measure_id is not None:
        raise ValidationFailed(
            f"“{target.name}” takes its values from a measure of the Value pillar: record the value "
            "on that measure.",
            field="target",
        )
    number = _number(value, "value")
    when = _observed_time(observed_at or timezone.now(), "observed_at", now=timezone.now())
    observation = TargetObservation.objects.create(
        target_measure=target,
        value=number,
        observed_at=when,
        note=_text(note, "note", max_length=500),
        recorded_by=actor,
    )
    record(
        membership.organisation,
        target.goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"observation": {"old": None, "new": f"{target.name} = {number:g} at {when:%Y-%m-%d}"}},
    )
    return observation
