"""Validation: hypotheses, experiments, result snapshots, decisions, prioritisation and the learning log.

Every rule of the pillar lives here; web views, the API and the CLI call these functions.
Reads take the caller's Membership (nothing outside its organisation is ever found); writes also take
the acting User, check the role and record history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import optional_number
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses import scoring
from truenorth.hypotheses.models import (
    Decision,
    Experiment,
    ExperimentMetric,
    Hypothesis,
    HypothesisState,
    ResultSnapshot,
    Variation,
)
from truenorth.measures.models import Measure
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Goal, Product
from truenorth.strategy.services import member_by_email, require_writer

__all__ = ["member_by_email", "require_writer"]

MAX_TEXT = 5000
SCORE_FIELDS = (
    "impact",
    "confidence",
    "ease",
    "reach",
    "effort",
    "cost_of_delay",
    "duration_weeks",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
)
ONE_TO_TEN = ("impact", "confidence", "ease")
TEXT_FIELDS = ("title", "capability", "who", "outcome", "metric_name")
HYPOTHESIS_FIELDS = (
    "title",
    "capability",
    "who",
    "outcome",
    "goal",
    "owner",
    "measure",
    "metric_name",
    "baseline",
    "target",
    "by_date",
    "state",
    "position",
    *SCORE_FIELDS,
)
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
S = HypothesisState
# The board's moves; concluding needs an outcome, a decision and a learning note (see `conclude`).
TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    S.DRAFT: (S.READY,),
    S.READY: (S.DRAFT, S.TESTING),
    S.TESTING: (S.READY,),
    S.CONCLUDED: (),
}
UNMEASURED = "How will we measure its success? Name a measure or metric, its baseline and its target."


# --- validators -----------------------------------------------------------------------------------



def _number(value: Any, field: str, *, minimum: float | None = None) -> float | None:
    number = optional_number(value, field)
    if number is None:
        return None
    if abs(number) > 1e15:
        raise ValidationFailed("Must be a finite number.", field=field)
    if minimum is not None and number < minimum:
        raise ValidationFailed(f"Must be at least {minimum:g}.", field=field)
    return number


def _score_input(value: Any, field: str) -> float | int | None:
    number = _number(value, field, minimum=0)
    if number is None:
        return None
    if field in ONE_TO_TEN:
        if number != int(number) or not 1 <= number <= 10:
            raise ValidationFailed("Must be a whole number from 1 to 10.", field=field)
        return int(number)
    return number





def _owner(membership: Membership, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    found = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if found is None or not found.can_write:
        raise ValidationFailed("Not a member of this organisation who can own work.", field="owner")
    return found.user


def _goal(membership: Membership, product: Product, goal_id: int | None) -> Goal | None:
    if goal_id is None:
        return None
    goal = Goal.objects.filter(pk=goal_id, organisation_id=membership.organisation_id).first()
    if goal is None:
        raise ValidationFailed("No such goal in this organisation.", field="goal")
    if goal.product_id not in (None, product.pk):
        raise ValidationFailed("The goal belongs to another product.", field="goal")
    return goal


def _measure(membership: Membership, measure_id: int | None, field: str = "measure") -> Measure | None:
    if measure_id is None:
        return None
    measure = Measure.objects.filter(pk=measure_id, organisation_id=membership.organisation_id).first()
    if measure is None:
        raise ValidationFailed("No such measure in this organisation.", field=field)
    return measure


# --- hypotheses -----------------------------------------------------------------------------------


def hypotheses_of(membership: Membership) -> QuerySet[Hypothesis]:
    return Hypothesis.objects.filter(organisation_id=membership.organisation_id).select_related(
        "product", "goal", "owner", "measure"
    )


def get_hypothesis(membership: Membership, hypothesis_id: int) -> Hypothesis:
    found = hypotheses_of(membership).filter(pk=hypothesis_id).first()
    if found is None:
        raise NotFound("No such hypothesis.")
    return found


def _product(membership: Membership, product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id, organisation_id=membership.organisation_id).first()
    if product is None:
        raise NotFound("No such product.")
    return product


def _apply_fields(membership: Membership, hypothesis: Hypothesis, fields: Mapping[str, Any]) -> None:
    """Validate and set the editable fields given (state and position have their own functions)."""
    for name, value in fields.items():
        if name in TEXT_FIELDS:
            limit = 200 if name in ("title", "who") else 120 if name == "metric_name" else MAX_TEXT
            setattr(hypothesis, name, _text(value, name, required=name == "title", max_length=limit))
        elif name in SCORE_FIELDS:
            setattr(hypothesis, name, _score_input(value, name))
        elif name in ("baseline", "target"):
            setattr(hypothesis, name, _number(value, name))
        elif name == "by_date":
            hypothesis.by_date = _date(value, name)
        elif name == "goal_id":
            hypothesis.goal = _goal(membership, hypothesis.product, value)
        elif name == "owner_id":
            hypothesis.owner = _owner(membership, value)
        elif name == "measure_id":
            hypothesis.measure = _measure(membership, value)
        else:
            raise ValidationFailed(f"Unknown field '{name}'.", field=name)


def create_hypothesis(
    membership: Membership, actor: User, product_id: int, *, title: str, **fields: Any
) -> Hypothesis:
    """A new hypothesis in draft, at the end of its product's draft column."""
    require_writer(membership)
    product = _product(membership, product_id)
    hypothesis = Hypothesis(organisation_id=membership.organisation_id, product=product)
    _apply_fields(membership, hypothesis, {"title": title, **fields})
    with transaction.atomic():
        last = Hypothesis.objects.filter(product=product, state=S.DRAFT).order_by("-position").first()
        hypothesis.position = last.position + 1 if last else 0
        hypothesis.save()
        record(
            membership.organisation,
            hypothesis,
            actor,
            HistoryEntry.Action.CREATED,
            diff({}, snapshot(hypothesis, HYPOTHESIS_FIELDS)),
        )
    return hypothesis


def _locked(membership: Membership, hypothesis_id: int, version: int | None) -> Hypothesis:
    found = (
        Hypothesis.objects.select_for_update()
        .filter(pk=hypothesis_id, organisation_id=membership.organisation_id)
        .select_related("product")
        .first()
    )
    if found is None:
        raise NotFound("No such hypothesis.")
    _check_version(found, version)
    return found


def _save(membership: Membership, actor: User, hypothesis: Hypothesis, before: dict[str, Any]) -> None:
    after = snapshot(hypothesis, HYPOTHESIS_FIELDS)
    if after == before:
        return
    hypothesis.version += 1
    hypothesis.updated_at = timezone.now()
    hypothesis.save()
    record(membership.organisation, hypothesis, actor, HistoryEntry.Action.UPDATED, diff(before, after))


def update_hypothesis(
    membership: Membership, actor: User, hypothesis_id: int, *, version: int | None = None, **fields: Any
) -> Hypothesis:
    """Change the statement, the success signal or the estimates; a stale version is a Conflict."""
    require_writer(membership)
    with transaction.atomic():
        hypothesis = _locked(membership, hypothesis_id, version)
        if hypothesis.state == S.CONCLUDED:
            raise Conflict(
                "A concluded hypothesis is a record of what we learned: it cannot change.", "state"
            )
        before = snapshot(hypothesis, HYPOTHESIS_FIELDS)
        _apply_fields(membership, hypothesis, fields)
        if hypothesis.state != S.DRAFT and not hypothesis.is_measurable:
            raise ValidationFailed(
                "A hypothesis past draft needs its success signal: " + UNMEASURED, field="metric_name"
            )
        _save(membership, actor, hypothesis, before)
    return get_hypothesis(membership, hypothesis.pk)


def move_hypothesis(
    membership: Membership,
    actor: User,
    hypothesis_id: int,
    state: str,
    *,
    version: int | None = None,
    position: int | None = None,
) -> Hypothesis:
    """Move a card on the board: to another column if the lifecycle allows it, and/or within a column."""
    require_writer(membership)
    state = _choice(state, S.values, "state")
    with transaction.atomic():
        hypothesis = _locked(membership, hypothesis_id, version)
        before = snapshot(hypothesis, HYPOTHESIS_FIELDS)
        if state != hypothesis.state:
            _check_transition(hypothesis, state)
            hypothesis.state = state
        column = list(
            Hypothesis.objects.filter(product_id=hypothesis.product_id, state=state)
            .exclude(pk=hypothesis.pk)
            .order_by("position", "id")
            .values_list("id", flat=True)
        )
        index = len(column) if position is None else max(0, min(position, len(column)))
        column.insert(index, hypothesis.pk)
        for i, pk in enumerate(column):
            if pk != hypothesis.pk:
                Hypothesis.objects.filter(pk=pk).exclude(position=i).update(position=i)
        hypothesis.position = index
        _save(membership, actor, hypothesis, before)
    return get_hypothesis(membership, hypothesis.pk)


def _check_transition(hypothesis: Hypothesis, state: str) -> None:
    current = hypothesis.state
    if state == S.CONCLUDED and current == S.TESTING:
        raise ValidationFailed(
            "Conclude it with an outcome, a decision and a learning note (the Conclude form).", field="state"
        )
    if state not in TRANSITIONS[current]:
        if current == S.CONCLUDED:
            message = "A concluded hypothesis stays concluded; write a new hypothesis to test again."
        else:
            allowed = ", ".join(TRANSITIONS[current]) or "nowhere"
            message = f"A {current} hypothesis cannot move to {state}; it can move to: {allowed}."
        raise ValidationFailed(message, field="state")
    if state == S.READY and not hypothesis.is_measurable:
        raise ValidationFailed("Not ready: " + UNMEASURED, field="state")
    if state == S.TESTING and not hypothesis.experiments.exists():
        raise ValidationFailed(
            "Not ready for testing: design an experiment for it first (how will we test it?).", field="state"
        )


# --- experiments ----------------------------------------------------------------------------------


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


# --- result snapshots -----------------------------------------------------------------------------


def store_snapshot(
    experiment: Experiment,
    *,
    method: str,
    inputs: Mapping[str, Any],
    results: Mapping[str, Any],
    query: str = "",
    computed_at: dt.datetime | None = None,
    author: User | None = None,
) -> ResultSnapshot:
    """Append the results of one computation by TrueNorth (results.compute_results only: a computed
    snapshot is the headline result, so nothing a user sends may reach this)."""
    return ResultSnapshot.objects.create(
        experiment=experiment,
        kind=ResultSnapshot.Kind.COMPUTED,
        method=_text(method, "method", required=True, max_length=120),
        inputs=dict(inputs),
        results=dict(results),
        query=query,
        computed_at=computed_at or timezone.now(),
        author=author,
        author_name=author.email if author else "system",
    )


def import_snapshot(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    source: str,
    method: str,
    results: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    query: str = "",
    note: str = "",
) -> ResultSnapshot:
    """Attach results computed by an outside tool (`source`, e.g. "Optimizely"). They are stored as an
    import labelled with the tool and who attached them, recorded in history, and never become the
    headline result nor the one "conclude" links: only TrueNorth's own computation does."""
    require_writer(membership)
    experiment = get_experiment(membership, experiment_id)
    with transaction.atomic():
        made = ResultSnapshot.objects.create(
            experiment=experiment,
            kind=ResultSnapshot.Kind.IMPORTED,
            method=_text(method, "method", required=True, max_length=120),
            source_name=_text(source, "source", required=True, max_length=120),
            note=_text(note, "note"),
            inputs=dict(inputs or {}),
            results=dict(results),
            query=_text(query, "query", max_length=100_000),
            author=actor,
            author_name=actor.email,
        )
        record(
            membership.organisation,
            made,
            actor,
            HistoryEntry.Action.CREATED,
            diff({}, {"kind": made.kind, "source": made.source_name, "method": made.method, "note": made.note}),
        )
    return made


def snapshots_of(membership: Membership, experiment_id: int) -> QuerySet[ResultSnapshot]:
    """Every snapshot of an experiment (computed and imported), newest first."""
    return ResultSnapshot.objects.filter(
        experiment_id=experiment_id, experiment__hypothesis__organisation_id=membership.organisation_id
    )


def headline_snapshot(membership: Membership, experiment_id: int) -> ResultSnapshot | None:
    """The experiment's headline result: its latest snapshot computed by TrueNorth (never an import)."""
    return (
        snapshots_of(membership, experiment_id)
        .filter(kind=ResultSnapshot.Kind.COMPUTED)
        .select_related("experiment")
        .order_by("-computed_at", "-id")
        .first()
    )


def get_snapshot(membership: Membership, snapshot_id: int) -> ResultSnapshot:
    found = (
        ResultSnapshot.objects.filter(
            pk=snapshot_id, experiment__hypothesis__organisation_id=membership.organisation_id
        )
        .select_related("experiment")
        .first()
    )
    if found is None:
        raise NotFound("No such result snapshot.")
    return found


# --- concluding -----------------------------------------------------------------------------------


def conclude(
    membership: Membership,
    actor: User,
    hypothesis_id: int,
    *,
    outcome: str,
    decision: str,
    learning: str,
    observed: str = "",
    next_step: str = "",
    version: int | None = None,
) -> Decision:
    """Conclude a tested hypothesis: outcome, decision and learning note, linked to the latest results."""
    require_writer(membership)
    outcome = _choice(outcome, Decision.Outcome.values, "outcome")
    decision = _choice(decision, Decision.Choice.values, "decision")
    learning = _text(learning, "learning", required=True)
    observed = _text(observed, "observed")
    next_step = _text(next_step, "next_step")
    with transaction.atomic():
        hypothesis = _locked(membership, hypothesis_id, version)
        if hypothesis.state != S.TESTING:
            raise ValidationFailed(
                f"Only a hypothesis being tested can be concluded (this one is {hypothesis.state}).",
                field="state",
            )
        # Only results TrueNorth computed are linked; imports from outside tools never are.
        latest = (
            ResultSnapshot.objects.filter(experiment__hypothesis=hypothesis, kind=ResultSnapshot.Kind.COMPUTED)
            .order_by("-computed_at", "-id")
            .first()
        )
        has_ab = hypothesis.experiments.filter(kind=Experiment.Kind.AB).exists()
        if has_ab and latest is None and outcome != Decision.Outcome.INCONCLUSIVE:
            raise ValidationFailed(
                "An A/B test is concluded on its results: compute them first (or call it inconclusive).",
                field="outcome",
            )
        before = snapshot(hypothesis, HYPOTHESIS_FIELDS)
        made = Decision.objects.create(
            hypothesis=hypothesis,
            outcome=outcome,
            decision=decision,
            learning=learning,
            observed=observed,
            next_step=next_step,
            snapshot=latest,
            decided_by=actor,
        )
        record(
            membership.organisation,
            made,
            actor,
            HistoryEntry.Action.CREATED,
            diff({}, snapshot(made, ("outcome", "decision", "learning", "snapshot"))),
        )
        hypothesis.state = S.CONCLUDED
        hypothesis.position = Hypothesis.objects.filter(
            product_id=hypothesis.product_id, state=S.CONCLUDED
        ).count()
        _save(membership, actor, hypothesis, before)
        _stop_running_experiments(membership, actor, hypothesis)
    return made


def _stop_running_experiments(membership: Membership, actor: User, hypothesis: Hypothesis) -> None:
    """A concluded hypothesis tests nothing any more: its running experiments stop today (in history)."""
    today = timezone.localdate()
    for experiment in hypothesis.experiments.select_for_update().filter(state=Experiment.State.RUNNING):
        before = snapshot(experiment, EXPERIMENT_FIELDS)
        experiment.state = Experiment.State.STOPPED
        if experiment.stop_date is None or experiment.stop_date > today:
            experiment.stop_date = max(today, experiment.start_date or today)
        experiment.version += 1
        experiment.save(update_fields=["state", "stop_date", "version"])
        record(
            membership.organisation,
            experiment,
            actor,
            HistoryEntry.Action.UPDATED,
            diff(before, snapshot(experiment, EXPERIMENT_FIELDS)),
        )


def decision_of(hypothesis: Hypothesis) -> Decision | None:
    return hypothesis.decisions.select_related("snapshot", "decided_by").first()


def get_decision(membership: Membership, decision_id: int) -> Decision:
    found = (
        Decision.objects.filter(pk=decision_id, hypothesis__organisation_id=membership.organisation_id)
        .select_related("hypothesis", "snapshot", "decided_by")
        .first()
    )
    if found is None:
        raise NotFound("No such decision.")
    return found


# --- board, ranking, lint, learning log -----------------------------------------------------------


def board(
    membership: Membership,
    product_id: int,
    *,
    goal_id: int | None = None,
    owner_id: int | None = None,
    q: str = "",
) -> dict[str, list[Hypothesis]]:
    """The product's hypotheses by lifecycle column, in their positions (one query)."""
    _product(membership, product_id)
    qs = hypotheses_of(membership).filter(product_id=product_id)
    if goal_id is not None:
        qs = qs.filter(goal_id=goal_id)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(capability__icontains=q) | Q(outcome__icontains=q))
    columns: dict[str, list[Hypothesis]] = {state: [] for state in S.values}
    for hypothesis in qs.order_by("position", "id"):
        columns[hypothesis.state].append(hypothesis)
    return columns


def inputs_of(hypothesis: Hypothesis) -> scoring.Inputs:
    return scoring.Inputs(**{name: getattr(hypothesis, name) for name in SCORE_FIELDS})


def ranked(
    membership: Membership, product_id: int, method: str, *, include_concluded: bool = False
) -> list[tuple[Hypothesis, float | None]]:
    """The product's open hypotheses by the chosen score (ice, rice, wsjf, cd3), highest first."""
    chosen = _choice(method, scoring.METHODS, "method")
    _product(membership, product_id)
    qs = hypotheses_of(membership).filter(product_id=product_id).order_by("position", "id")
    if not include_concluded:
        qs = qs.exclude(state=S.CONCLUDED)
    method_key: scoring.Method = chosen  # type: ignore[assignment]
    return list(scoring.rank(((h, inputs_of(h)) for h in qs), method_key))


@dataclass(frozen=True)
class Finding:
    hypothesis: Hypothesis
    rule: str
    severity: str
    message: str


def lint(
    membership: Membership, *, product_id: int | None = None, goal_id: int | None = None
) -> list[Finding]:
    """Open hypotheses without a measurable success signal: "How will we measure its success?"."""
    qs = hypotheses_of(membership).exclude(state=S.CONCLUDED).order_by("product__name", "position", "id")
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    if goal_id is not None:
        qs = qs.filter(goal_id=goal_id)
    return [Finding(h, "unmeasured-hypothesis", "warning", UNMEASURED) for h in qs if not h.is_measurable]


def learnings(membership: Membership, product_id: int | None = None, q: str = "") -> QuerySet[Decision]:
    """The learning log: decisions, newest first, searched over titles, outcomes and learning notes."""
    qs = Decision.objects.filter(hypothesis__organisation_id=membership.organisation_id).select_related(
        "hypothesis", "hypothesis__product", "hypothesis__goal", "decided_by", "snapshot"
    )
    if product_id is not None:
        _product(membership, product_id)
        qs = qs.filter(hypothesis__product_id=product_id)
    for word in (q or "").split()[:10]:
        qs = qs.filter(
            Q(hypothesis__title__icontains=word)
            | Q(hypothesis__outcome__icontains=word)
            | Q(hypothesis__capability__icontains=word)
            | Q(learning__icontains=word)
            | Q(observed__icontains=word)
            | Q(next_step__icontains=word)
        )
    return qs.order_by("-decided_at", "-id")


def decisions_for_goal(membership: Membership, goal_id: int) -> list[Decision]:
    return list(
        Decision.objects.filter(
            hypothesis__organisation_id=membership.organisation_id, hypothesis__goal_id=goal_id
        )
        .select_related("hypothesis", "decided_by")
        .order_by("-decided_at", "-id")[:50]
    )


def annotations_for_measure(membership: Membership, measure_id: int) -> list[tuple[dt.date, str]]:
    """Decisions on hypotheses that expected to move this measure, as (date, label) chart markers."""
    rows = (
        Decision.objects.filter(hypothesis__organisation_id=membership.organisation_id)
        .filter(
            Q(hypothesis__measure_id=measure_id) | Q(hypothesis__experiments__metrics__measure_id=measure_id)
        )
        .select_related("hypothesis")
        .distinct()
        .order_by("decided_at", "id")[:100]
    )
    return [
        (
            timezone.localtime(d.decided_at).date(),
            f"{d.get_outcome_display()}, {d.get_decision_display().lower()}: {d.hypothesis.title}"[:120],
        )
        for d in rows
    ]


def goal_context(membership: Membership, goal_id: int) -> dict[str, Any]:
    """What the goal page shows of this pillar: the hypotheses serving the goal and their decisions.

    One query: each hypothesis carries its decision (there is at most one) as annotations."""
    decision = Decision.objects.filter(hypothesis=OuterRef("pk")).order_by("-decided_at", "-id")
    rows = list(
        Hypothesis.objects.filter(organisation_id=membership.organisation_id, goal_id=goal_id)
        .annotate(
            decision_outcome=Subquery(decision.values("outcome")[:1]),
            decision_choice=Subquery(decision.values("decision")[:1]),
            decision_learning=Subquery(decision.values("learning")[:1]),
            decision_at=Subquery(decision.values("decided_at")[:1]),
        )
        .order_by("position", "id")[:100]
    )
    outcomes, choices = dict(Decision.Outcome.choices), dict(Decision.Choice.choices)
    decisions = [
        {
            "hypothesis": h,
            "outcome": outcomes.get(h.decision_outcome, h.decision_outcome),
            "decision": choices.get(h.decision_choice, h.decision_choice),
            "learning": h.decision_learning,
            "decided_at": h.decision_at,
        }
        for h in rows
        if h.decision_outcome
    ]
    decisions.sort(key=lambda d: d["decided_at"], reverse=True)
    return {"goal_hypotheses": rows, "goal_decisions": decisions}
