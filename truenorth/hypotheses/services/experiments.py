"""Experiments: designing how a hypothesis is tested (kind, variations, metrics, planned size).

A concluded hypothesis's experiments are a record: they cannot change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses.models import Experiment, ExperimentMetric, Variation
from truenorth.hypotheses.services.hypotheses import S, _measure, _number, get_hypothesis
from truenorth.measures.models import Measure
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer

EXPERIMENT_FIELDS = (
    "name",
    "kind",
    "minimum_detectable_effect",
    "alpha",
    "power",
    "planned_sample_size",
    "start_date",
    "stop_date",
    "state",
)


@dataclass(frozen=True)
class VariationSpec:
    name: str
    allocation: float


@dataclass(frozen=True)
class MetricSpec:
    role: str
    name: str
    measure_id: int | None = None


def experiments_of(membership: Membership) -> QuerySet[Experiment]:
    return Experiment.objects.filter(hypothesis__organisation_id=membership.organisation_id).select_related(
        "hypothesis", "hypothesis__product"
    )


def get_experiment(membership: Membership, experiment_id: int) -> Experiment:
    found = (
        experiments_of(membership)
        .prefetch_related("variations", "metrics__measure")
        .filter(pk=experiment_id)
        .first()
    )
    if found is None:
        raise NotFound("No such experiment.")
    return found


def _variations(kind: str, raw: Iterable[VariationSpec | Mapping[str, Any]]) -> list[VariationSpec]:
    out: list[VariationSpec] = []
    for i, item in enumerate(raw):
        data = item if isinstance(item, Mapping) else {"name": item.name, "allocation": item.allocation}
        name = _text(data.get("name"), f"variations.{i}.name", required=True, max_length=80)
        share = _number(data.get("allocation"), f"variations.{i}.allocation", minimum=0)
        if share is None or not 0 < share <= 1:
            raise ValidationFailed(
                "Must be a share above 0 and at most 1.", field=f"variations.{i}.allocation"
            )
        if any(v.name == name for v in out):
            raise ValidationFailed(f"Two variations are called '{name}'.", field=f"variations.{i}.name")
        out.append(VariationSpec(name, share))
    if kind == Experiment.Kind.AB and len(out) < 2:
        raise ValidationFailed("An A/B test needs a control and at least one variant.", field="variations")
    if out and abs(sum(v.allocation for v in out) - 1) > 1e-6:
        total = sum(v.allocation for v in out)
        raise ValidationFailed(
            f"Planned allocations must add up to 1 (they add up to {total:g}).", "variations"
        )
    return out


def _metrics(
    membership: Membership, raw: Iterable[MetricSpec | Mapping[str, Any]]
) -> list[tuple[MetricSpec, Measure | None]]:
    out: list[tuple[MetricSpec, Measure | None]] = []
    for i, item in enumerate(raw):
        data: Mapping[str, Any] = (
            item
            if isinstance(item, Mapping)
            else {"role": item.role, "name": item.name, "measure_id": item.measure_id}
        )
        role = _choice(data.get("role"), ExperimentMetric.Role.values, f"metrics.{i}.role")
        measure = _measure(membership, data.get("measure_id"), f"metrics.{i}.measure")
        name = _text(
            data.get("name") or (measure.name if measure else ""),
            f"metrics.{i}.name",
            required=True,
            max_length=120,
        )
        out.append((MetricSpec(role, name, measure.pk if measure else None), measure))
    primaries = sum(1 for spec, _ in out if spec.role == ExperimentMetric.Role.PRIMARY)
    if out and primaries != 1:
        raise ValidationFailed(f"Name exactly one primary metric (got {primaries}).", field="metrics")
    return out


def _apply_design(experiment: Experiment, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        if name == "name":
            experiment.name = _text(value, "name", required=True, max_length=200)
        elif name == "kind":
            experiment.kind = _choice(value, Experiment.Kind.values, "kind")
        elif name == "state":
            experiment.state = _choice(value, Experiment.State.values, "state")
        elif name == "minimum_detectable_effect":
            mde = _number(value, name)
            if mde is not None and mde <= 0:
                raise ValidationFailed("Must be above 0 (e.g. 0.05 for a 5 % lift).", field=name)
            experiment.minimum_detectable_effect = mde
        elif name == "alpha":
            alpha = _number(value, name)
            if alpha is None or not 0 < alpha < 0.5:
                raise ValidationFailed("Must be between 0 and 0.5 (e.g. 0.05).", field=name)
            experiment.alpha = alpha
        elif name == "power":
            power = _number(value, name)
            if power is None or not 0 < power < 1:
                raise ValidationFailed("Must be between 0 and 1 (e.g. 0.8).", field=name)
            experiment.power = power
        elif name == "planned_sample_size":
            size = _number(value, name, minimum=1)
            if size is not None and size != int(size):
                raise ValidationFailed("Must be a whole number.", field=name)
            experiment.planned_sample_size = None if size is None else int(size)
        elif name in ("start_date", "stop_date"):
            setattr(experiment, name, _date(value, name))
        else:
            raise ValidationFailed(f"Unknown field '{name}'.", field=name)
    if experiment.start_date and experiment.stop_date and experiment.stop_date < experiment.start_date:
        raise ValidationFailed("The stop date is before the start date.", field="stop_date")


def _replace_children(
    experiment: Experiment,
    variations: list[VariationSpec] | None,
    metrics: list[tuple[MetricSpec, Measure | None]] | None,
) -> None:
    # Unchanged children are kept as they are (an edit form posts them all, every time).
    if variations is not None and [(v.name, v.allocation) for v in variations] == list(
        experiment.variations.order_by("position").values_list("name", "allocation")
    ):
        variations = None
    if metrics is not None and [(spec.role, spec.name, m.pk if m else None) for spec, m in metrics] == list(
        experiment.metrics.order_by("position").values_list("role", "name", "measure_id")
    ):
        metrics = None
    if variations is not None:
        experiment.variations.all().delete()
        Variation.objects.bulk_create(
            Variation(experiment=experiment, name=v.name, allocation=v.allocation, position=i)
            for i, v in enumerate(variations)
        )
    if metrics is not None:
        experiment.metrics.all().delete()
        ExperimentMetric.objects.bulk_create(
            ExperimentMetric(
                experiment=experiment, role=spec.role, name=spec.name, measure=measure, position=i
            )
            for i, (spec, measure) in enumerate(metrics)
        )


def create_experiment(
    membership: Membership,
    actor: User,
    hypothesis_id: int,
    *,
    name: str,
    kind: str = Experiment.Kind.AB,
    variations: Iterable[VariationSpec | Mapping[str, Any]] = (),
    metrics: Iterable[MetricSpec | Mapping[str, Any]] = (),
    **design: Any,
) -> Experiment:
    """Design a test of a hypothesis (not of a concluded one)."""
    require_writer(membership)
    hypothesis = get_hypothesis(membership, hypothesis_id)
    if hypothesis.state == S.CONCLUDED:
        raise Conflict("The hypothesis is concluded; write a new hypothesis to test again.", field="state")
    experiment = Experiment(hypothesis=hypothesis)
    _apply_design(experiment, {"name": name, "kind": kind, **design})
    specs = _variations(experiment.kind, variations)
    metric_specs = _metrics(membership, metrics)
    with transaction.atomic():
        experiment.save()
        _replace_children(experiment, specs, metric_specs)
        record(
            membership.organisation,
            experiment,
            actor,
            HistoryEntry.Action.CREATED,
            diff({}, {**snapshot(experiment, EXPERIMENT_FIELDS), **_children_snapshot(experiment)}),
        )
    return get_experiment(membership, experiment.pk)


def _children_snapshot(experiment: Experiment) -> dict[str, Any]:
    return {
        "variations": [
            f"{v.name}: {v.allocation:g}" for v in experiment.variations.order_by("position", "id")
        ],
        "metrics": [f"{m.role}: {m.name}" for m in experiment.metrics.order_by("position", "id")],
    }


def update_experiment(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    version: int | None = None,
    variations: Iterable[VariationSpec | Mapping[str, Any]] | None = None,
    metrics: Iterable[MetricSpec | Mapping[str, Any]] | None = None,
    **design: Any,
) -> Experiment:
    """Change an experiment's design; variations and metrics, when given, replace the old ones."""
    require_writer(membership)
    with transaction.atomic():
        experiment = (
            Experiment.objects.select_for_update()
            .filter(pk=experiment_id, hypothesis__organisation_id=membership.organisation_id)
            .select_related("hypothesis")
            .first()
        )
        if experiment is None:
            raise NotFound("No such experiment.")
        _check_version(experiment, version)
        if experiment.hypothesis.state == S.CONCLUDED:
            raise Conflict("The hypothesis is concluded: its experiment is a record now.", field="state")
        before = {**snapshot(experiment, EXPERIMENT_FIELDS), **_children_snapshot(experiment)}
        _apply_design(experiment, design)
        current_variations = [
            {"name": v.name, "allocation": v.allocation} for v in experiment.variations.all()
        ]
        specs = _variations(experiment.kind, current_variations if variations is None else variations)
        metric_specs = None if metrics is None else _metrics(membership, metrics)
        experiment.save()
        _replace_children(experiment, specs if variations is not None else None, metric_specs)
        after = {**snapshot(experiment, EXPERIMENT_FIELDS), **_children_snapshot(experiment)}
        if after != before:
            Experiment.objects.filter(pk=experiment.pk).update(version=experiment.version + 1)
            record(
                membership.organisation, experiment, actor, HistoryEntry.Action.UPDATED, diff(before, after)
            )
    return get_experiment(membership, experiment_id)
