"""The Validation API's schemas (JSON in and out) and the builders of its outputs.

The API (hypotheses/api/) and the CLI (`--json`) both answer with these builders, so a hypothesis,
an experiment, a snapshot or a decision has one JSON shape; each builder sits beside the Schema it fills.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from truenorth.core.schemas import ObjectId, StrictSchema
from truenorth.hypotheses import scoring, services
from truenorth.hypotheses.models import (
    Decision,
    DecisionChoice,
    DecisionOutcome,
    Experiment,
    ExperimentKind,
    ExperimentState,
    Hypothesis,
    HypothesisState,
    MetricRole,
    ResultSnapshot,
    SnapshotKind,
)
from truenorth.orgs.models import Membership

VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
Score1to10 = Field(None, ge=1, le=10)
Estimate = Field(None, ge=0, le=1e15, allow_inf_nan=False)


# --- outputs --------------------------------------------------------------------------------------


class UserRefOut(Schema):
    id: int
    email: str
    name: str


class HypothesisOut(Schema):
    id: int
    product: int
    goal: int | None
    title: str
    capability: str
    who: str
    outcome: str
    owner: UserRefOut | None
    measure: int | None
    metric_name: str
    baseline: float | None
    target: float | None
    by_date: dt.date | None
    state: str
    measurable: bool = Field(description="Has a measure or metric, a baseline and a target.")
    impact: int | None
    confidence: int | None
    ease: int | None
    reach: float | None
    effort: float | None
    cost_of_delay: float | None
    duration_weeks: float | None
    business_value: float | None
    time_criticality: float | None
    risk_reduction: float | None
    job_size: float | None
    scores: dict[str, float | None] = Field(description="ice, rice, wsjf, cd3 (None: not estimated).")
    position: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class VariationOut(Schema):
    name: str
    allocation: float


class MetricOut(Schema):
    role: str
    name: str
    measure: int | None


class ExperimentOut(Schema):
    id: int
    hypothesis: int
    name: str
    kind: str
    state: str
    variations: list[VariationOut]
    metrics: list[MetricOut]
    minimum_detectable_effect: float | None
    alpha: float
    power: float
    planned_sample_size: int | None
    start_date: dt.date | None
    stop_date: dt.date | None
    version: int
    created_at: dt.datetime


class SnapshotOut(Schema):
    id: int
    experiment: int
    kind: SnapshotKind = Field(
        description="computed: by TrueNorth (the headline); imported: from an outside tool."
    )
    label: str = Field(description='"Computed by TrueNorth" or "Imported from <source> by <author>".')
    author: str | None
    source: str = Field(description="The outside tool an imported snapshot comes from ('' when computed).")
    note: str
    computed_at: dt.datetime
    method: str
    inputs: dict[str, Any]
    query: str
    results: dict[str, Any]


class DecisionOut(Schema):
    id: int
    hypothesis: int
    hypothesis_title: str
    outcome: str
    decision: str
    observed: str
    learning: str
    next_step: str
    snapshot: int | None
    decided_by: str | None
    decided_at: dt.datetime


class HypothesisDetailOut(HypothesisOut):
    experiments: list[ExperimentOut]
    decision: DecisionOut | None


class RankedOut(Schema):
    rank: int
    score: float | None
    hypothesis: HypothesisOut


class HypothesisFindingOut(Schema):
    hypothesis: int
    title: str
    rule: str
    severity: str
    message: str


def hypothesis_out(h: Hypothesis) -> dict[str, Any]:
    """A hypothesis as `HypothesisOut` (the API's and `truenorth hypotheses list --json`)."""
    inputs = services.inputs_of(h)
    return {
        **{
            name: getattr(h, name)
            for name in (
                "id",
                "title",
                "capability",
                "who",
                "outcome",
                "metric_name",
                "baseline",
                "target",
                "by_date",
                "state",
                "position",
                "version",
                "created_at",
                "updated_at",
                *services.SCORE_FIELDS,
            )
        },
        "product": h.product_id,
        "goal": h.goal_id,
        "measure": h.measure_id,
        "owner": {"id": h.owner.pk, "email": h.owner.email, "name": h.owner.name} if h.owner else None,
        "measurable": h.is_measurable,
        "scores": {m: scoring.score(m, inputs) for m in scoring.METHODS},
    }


def experiment_out(e: Experiment) -> dict[str, Any]:
    """An experiment's design as `ExperimentOut`."""
    return {
        **{
            name: getattr(e, name)
            for name in (
                "id",
                "name",
                "kind",
                "state",
                "minimum_detectable_effect",
                "alpha",
                "power",
                "planned_sample_size",
                "start_date",
                "stop_date",
                "version",
                "created_at",
            )
        },
        "hypothesis": e.hypothesis_id,
        "variations": [{"name": v.name, "allocation": v.allocation} for v in e.variations.all()],
        "metrics": [{"role": m.role, "name": m.name, "measure": m.measure_id} for m in e.metrics.all()],
    }


def snapshot_out(s: ResultSnapshot) -> dict[str, Any]:
    """A result snapshot as `SnapshotOut`."""
    return {
        "id": s.pk,
        "experiment": s.experiment_id,
        "kind": s.kind,
        "label": s.label,
        "author": s.author_name or None,
        "source": s.source_name,
        "note": s.note,
        "computed_at": s.computed_at,
        "method": s.method,
        "inputs": s.inputs,
        "query": s.query,
        "results": s.results,
    }


def decision_out(d: Decision) -> dict[str, Any]:
    """A decision as `DecisionOut` (the API's and `truenorth learnings --json`)."""
    return {
        "id": d.pk,
        "hypothesis": d.hypothesis_id,
        "hypothesis_title": d.hypothesis.title,
        "outcome": d.outcome,
        "decision": d.decision,
        "observed": d.observed,
        "learning": d.learning,
        "next_step": d.next_step,
        "snapshot": d.snapshot_id,
        "decided_by": d.decided_by.email if d.decided_by else None,
        "decided_at": d.decided_at,
    }


def hypothesis_detail_out(m: Membership, hypothesis_id: int) -> dict[str, Any]:
    """A hypothesis with its experiments and decision as `HypothesisDetailOut`; NotFound outside `m`."""
    h = services.get_hypothesis(m, hypothesis_id)
    experiments = h.experiments.prefetch_related("variations", "metrics").order_by("created_at", "id")
    decision = services.decision_of(h)
    return {
        **hypothesis_out(h),
        "experiments": [experiment_out(e) for e in experiments],
        "decision": decision_out(decision) if decision else None,
    }


# --- inputs ---------------------------------------------------------------------------------------


class HypothesisFields(StrictSchema):
    goal: ObjectId | None = Field(None, description="The goal it serves (line of sight).")
    capability: str = Field("", max_length=services.MAX_TEXT)
    who: str = Field("", max_length=200)
    outcome: str = Field("", max_length=services.MAX_TEXT)
    owner: ObjectId | None = Field(None, description="User id of a member.")
    owner_email: str | None = Field(None, max_length=254, description="Or the owner's e-mail.")
    measure: ObjectId | None = Field(None, description="A Value-pillar measure it expects to move.")
    metric_name: str = Field("", max_length=120, description="Or a metric by name.")
    baseline: float | None = Field(None, allow_inf_nan=False)
    target: float | None = Field(None, allow_inf_nan=False)
    by_date: dt.date | None = None
    impact: int | None = Score1to10
    confidence: int | None = Score1to10
    ease: int | None = Score1to10
    reach: float | None = Estimate
    effort: float | None = Estimate
    cost_of_delay: float | None = Estimate
    duration_weeks: float | None = Estimate
    business_value: float | None = Estimate
    time_criticality: float | None = Estimate
    risk_reduction: float | None = Estimate
    job_size: float | None = Estimate


class HypothesisIn(HypothesisFields):
    title: str = Field(min_length=1, max_length=200)


class HypothesisPatch(HypothesisFields):
    version: int = Field(description=VERSION_HELP)
    title: str | None = Field(None, min_length=1, max_length=200)


class HypothesisMoveIn(StrictSchema):
    state: HypothesisState
    position: int | None = Field(None, ge=0, le=100_000, description="Index in the column; default: last.")
    version: int = Field(description=VERSION_HELP)


class HypothesisConcludeIn(StrictSchema):
    outcome: DecisionOutcome
    decision: DecisionChoice
    learning: str = Field(min_length=1, max_length=services.MAX_TEXT, description="We learned …")
    observed: str = Field("", max_length=services.MAX_TEXT, description="We observed …")
    next_step: str = Field("", max_length=services.MAX_TEXT, description="Therefore we will …")
    version: int = Field(description=VERSION_HELP)


class VariationIn(StrictSchema):
    name: str = Field(min_length=1, max_length=80)
    allocation: float = Field(gt=0, le=1, allow_inf_nan=False, description="Planned share of units.")


class MetricIn(StrictSchema):
    role: MetricRole
    name: str = Field("", max_length=120, description="Defaults to the measure's name.")
    measure: ObjectId | None = None


class ExperimentFields(StrictSchema):
    kind: ExperimentKind | None = None
    state: ExperimentState | None = None
    variations: list[VariationIn] | None = Field(None, max_length=26, description="The first is the control.")
    metrics: list[MetricIn] | None = Field(None, max_length=100)
    minimum_detectable_effect: float | None = Field(None, gt=0, allow_inf_nan=False)
    # Ranges are checked by the services (422 naming the field) after the access check.
    alpha: float | None = Field(None, allow_inf_nan=False, description="Significance level, 0 to 0.5.")
    power: float | None = Field(None, allow_inf_nan=False, description="0 to 1, e.g. 0.8.")
    planned_sample_size: int | None = Field(None, ge=1, le=2**31 - 1)
    start_date: dt.date | None = None
    stop_date: dt.date | None = None


class ExperimentIn(ExperimentFields):
    name: str = Field(min_length=1, max_length=200)


class ExperimentPatch(ExperimentFields):
    name: str | None = Field(None, min_length=1, max_length=200)
    version: int = Field(description=VERSION_HELP)


class SnapshotIn(StrictSchema):
    source: str = Field(min_length=1, max_length=120, description="The outside tool the results come from.")
    method: str = Field(
        min_length=1, max_length=120, description="The method, as the outside tool states it."
    )
    note: str = Field("", max_length=services.MAX_TEXT, description="What these results are and where from.")
    inputs: dict[str, Any] = Field(default_factory=dict)
    query: str = Field("", max_length=100_000)
    results: dict[str, Any] = Field(default_factory=dict)


class BoardFilters(Schema):
    state: HypothesisState | None = None
    goal: ObjectId | None = None
    owner: ObjectId | None = None
    q: str = Field("", max_length=200)


class LearningFilters(Schema):
    product: ObjectId | None = None
    q: str = Field("", max_length=200)


# --- power calculator and plans -------------------------------------------------------------------


class PowerIn(StrictSchema):
    metric_kind: Literal["proportion", "mean"] = "proportion"
    baseline_rate: float | None = Field(None, description="Proportions: the control's rate, 0..1.")
    baseline_mean: float | None = Field(None, description="Means: the control's mean (for a relative MDE).")
    baseline_sd: float | None = Field(None, description="Means: the per-unit standard deviation.")
    mde: float = Field(
        description="Minimum detectable effect: relative (0.05 = 5 % lift) unless relative=false."
    )
    relative: bool = True
    alpha: float = Field(0.05, description="Significance level, in (0, 0.5].")
    power: float = Field(0.8, description="Power, in (0, 1).")
    variations: int = Field(2, description="Number of variations, the control included.")
    allocation: list[float] | None = Field(None, max_length=20, description="Shares; default: equal.")
    daily_traffic: float | None = Field(None, description="Units entering per day, all variations together.")


class ApplyPlanIn(PowerIn):
    version: int = Field(
        description="Required: the experiment version you read; a stale one is refused with 409."
    )


class PlanOut(Schema):
    metric_kind: str
    mde: float
    relative: bool
    alpha: float
    power: float
    variations: int
    allocation: list[float]
    per_variation: list[int] = Field(description="Units each variation needs.")
    total: int = Field(description="Units across all variations.")
    baseline_rate: float | None
    baseline_mean: float | None
    baseline_sd: float | None
    daily_traffic: float | None
    days: int | None = Field(description="Days to collect the total at the daily traffic, when given.")


class AppliedPlanOut(Schema):
    plan: PlanOut
    experiment_id: int
    planned_sample_size: int | None
    version: int


# --- computed results -----------------------------------------------------------------------------


class ComputeIn(StrictSchema):
    method: str = "frequentist"
    correction: Literal["holm", "bh", "none"] = Field(
        default="holm", description="Multiple-comparison correction (the snapshot records it)."
    )
    family: Literal["role", "all"] = Field(
        default="role",
        description="Correct within each metric role (primary, secondary, guardrail: the default, so the "
        "primary decision is not diluted) or across all metrics.",
    )


class EvidenceIn(StrictSchema):
    data_source: ObjectId | None = None
    experiment_key: str
    metric_definitions: list[dict[str, Any]] = Field(
        description="Metric definitions; an empty list discovers a count and a conversion per event name. "
        "Each: name, aggregation (count, sum, mean, proportion, ratio, quantile), events, where, "
        "window_days and delay_hours (the conversion window after exposure), exposure_start/exposure_end "
        "(only units first exposed in [start, end), UTC ISO dates), quantile (the level of a quantile "
        "metric, e.g. 0.9), denominator, covariate_days. Errors name the metric and the field."
    )
    mapping: dict[str, Any] | None = Field(
        default=None,
        description="Where the tables and columns are: {assignments: {table, unit, variation, exposed_at, "
        "experiment}, events: {table, unit, name, value, at}}; a table is a [schema.]table or a .parquet/"
        ".csv file in the organisation's DuckDB directory. Missing keys keep today's names; null keeps "
        "the saved mapping.",
    )
    version: int = Field(
        description="Required: the experiment version you read; a stale one is refused with 409."
    )


class ResultSummaryOut(Schema):
    id: int
    computed_at: Any
    method: str
    kind: str = Field(description="computed (by TrueNorth) or imported (from an outside tool).")
    label: str


class ResultsOut(Schema):
    latest: dict[str, Any] | None = Field(
        description="The headline: the latest results computed by TrueNorth (imports never are)."
    )
    snapshots: list[ResultSummaryOut]


def result_out(s: ResultSnapshot) -> dict[str, Any]:
    """The headline result in full (`ResultsOut.latest`)."""
    return {
        "id": s.pk,
        "experiment": s.experiment_id,
        "kind": s.kind,
        "label": s.label,
        "computed_at": s.computed_at,
        "method": s.method,
        "inputs": s.inputs,
        "query": s.query,
        "results": s.results,
    }
