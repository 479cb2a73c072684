"""API: Validation — hypotheses (board, ranking, lint), experiments, result snapshots, decisions and the
learning log. Every rule lives in hypotheses.services; this module translates JSON in and out only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.hypotheses import scoring, services
from truenorth.hypotheses.api_planning import router as planning_router
from truenorth.hypotheses.api_results import router as results_router
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
from truenorth.orgs.services import membership_for
from truenorth.strategy.services import get_product

router = Router(tags=["validation"])

MAX_LIST = 1000
VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
Score1to10 = Field(None, ge=1, le=10)
Estimate = Field(None, ge=0, le=1e15, allow_inf_nan=False)


# --- output schemas -------------------------------------------------------------------------------


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
    kind: SnapshotKind = Field(description="computed: by TrueNorth (the headline); imported: from an outside tool.")
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


# --- input schemas --------------------------------------------------------------------------------


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
    method: str = Field(min_length=1, max_length=120, description="The method, as the outside tool states it.")
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


# --- helpers --------------------------------------------------------------------------------------


def _scope(request: HttpRequest, slug: str) -> tuple[Membership, User]:
    assert isinstance(request.user, User)
    return membership_for(request.user, slug), request.user


def _hypothesis(h: Hypothesis) -> dict[str, Any]:
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


def _experiment(e: Experiment) -> dict[str, Any]:
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


def _snapshot(s: ResultSnapshot) -> dict[str, Any]:
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


def _decision(d: Decision) -> dict[str, Any]:
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


def _detail(m: Membership, hypothesis_id: int) -> dict[str, Any]:
    h = services.get_hypothesis(m, hypothesis_id)
    experiments = h.experiments.prefetch_related("variations", "metrics").order_by("created_at", "id")
    decision = services.decision_of(h)
    return {
        **_hypothesis(h),
        "experiments": [_experiment(e) for e in experiments],
        "decision": _decision(decision) if decision else None,
    }


def _fields(m: Membership, payload: HypothesisFields, given: set[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in given - {"version", "owner", "owner_email", "goal", "measure"}:
        value = getattr(payload, name)
        if value is None and name == "title":
            raise ValidationFailed("Must not be null.", field=name)
        fields[name] = value
    for name in ("goal", "measure", "owner"):
        if name in given:
            fields[f"{name}_id"] = getattr(payload, name)
    if payload.owner_email:
        fields["owner_id"] = services.member_by_email(m, payload.owner_email).pk
    return fields


def _design(payload: ExperimentFields, given: set[str]) -> dict[str, Any]:
    design: dict[str, Any] = {}
    for name in given - {"version", "variations", "metrics"}:
        value = getattr(payload, name)
        if value is None and name in ("name", "kind", "state", "alpha", "power"):
            raise ValidationFailed("Must not be null.", field=name)
        design[name] = value
    if payload.variations is not None:
        design["variations"] = [v.model_dump() for v in payload.variations]
    if payload.metrics is not None:
        design["metrics"] = [
            {"role": x.role, "name": x.name, "measure_id": x.measure} for x in payload.metrics
        ]
    return design


# --- hypotheses -----------------------------------------------------------------------------------


@router.get(
    "/{slug}/products/{product_id}/hypotheses",
    response={200: list[HypothesisOut], **READ_ERRORS},
    summary="List a product's hypotheses (the board), filtered by state, goal, owner and text",
)
def list_hypotheses(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[BoardFilters]
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    columns = services.board(m, product_id, goal_id=filters.goal, owner_id=filters.owner, q=filters.q)
    states = [filters.state] if filters.state else list(columns)
    return [_hypothesis(h) for state in states for h in columns[state]][:MAX_LIST]


@router.post(
    "/{slug}/products/{product_id}/hypotheses",
    response={201: HypothesisDetailOut, **ERRORS},
    summary="Create a hypothesis (in draft)",
)
def create_hypothesis(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: HypothesisIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    get_product(m, product_id)  # an unknown product is a 404 before any field is looked at
    services.require_writer(m)
    fields = _fields(m, payload, set(payload.model_fields_set) | {"title"})
    made = services.create_hypothesis(m, user, product_id, title=fields.pop("title"), **fields)
    return Status(201, _detail(m, made.pk))


@router.get(
    "/{slug}/products/{product_id}/hypotheses/rank",
    response={200: list[RankedOut], **READ_ERRORS},
    summary="Rank a product's open hypotheses by ICE, RICE, WSJF or CD3",
)
def rank_hypotheses(
    request: HttpRequest, slug: str, product_id: ObjectId, method: scoring.Method = "ice"
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    rows = services.ranked(m, product_id, method)
    return [{"rank": i, "score": s, "hypothesis": _hypothesis(h)} for i, (h, s) in enumerate(rows, 1)]


@router.get(
    "/{slug}/products/{product_id}/hypotheses/lint",
    response={200: list[HypothesisFindingOut], **READ_ERRORS},
    summary="Open hypotheses without a measurable success signal",
)
def lint_hypotheses(request: HttpRequest, slug: str, product_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    get_product(m, product_id)  # an unknown product is a 404
    return [
        {
            "hypothesis": x.hypothesis.pk,
            "title": x.hypothesis.title,
            "rule": x.rule,
            "severity": x.severity,
            "message": x.message,
        }
        for x in services.lint(m, product_id=product_id)
    ]


@router.get(
    "/{slug}/hypotheses/{hypothesis_id}",
    response={200: HypothesisDetailOut, **READ_ERRORS},
    summary="Get a hypothesis with its experiments and decision",
)
def get_hypothesis(request: HttpRequest, slug: str, hypothesis_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return _detail(m, hypothesis_id)


@router.patch(
    "/{slug}/hypotheses/{hypothesis_id}",
    response={200: HypothesisDetailOut, **ERRORS},
    summary="Change a hypothesis",
)
def update_hypothesis(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: HypothesisPatch
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    fields = _fields(m, payload, set(payload.model_fields_set))
    services.update_hypothesis(m, user, hypothesis_id, version=payload.version, **fields)
    return _detail(m, hypothesis_id)


@router.post(
    "/{slug}/hypotheses/{hypothesis_id}/move",
    response={200: HypothesisDetailOut, **ERRORS},
    summary="Move a hypothesis to another lifecycle column or position",
)
def move_hypothesis(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: HypothesisMoveIn
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    services.move_hypothesis(
        m, user, hypothesis_id, payload.state, version=payload.version, position=payload.position
    )
    return _detail(m, hypothesis_id)


@router.post(
    "/{slug}/hypotheses/{hypothesis_id}/conclude",
    response={201: DecisionOut, **ERRORS},
    summary="Conclude a hypothesis: outcome, decision and learning note (links the latest results)",
)
def conclude(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: HypothesisConcludeIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    made = services.conclude(
        m,
        user,
        hypothesis_id,
        outcome=payload.outcome,
        decision=payload.decision,
        learning=payload.learning,
        observed=payload.observed,
        next_step=payload.next_step,
        version=payload.version,
    )
    return Status(201, _decision(services.get_decision(m, made.pk)))


# --- experiments and snapshots --------------------------------------------------------------------


@router.post(
    "/{slug}/hypotheses/{hypothesis_id}/experiments",
    response={201: ExperimentOut, **ERRORS},
    summary="Design an experiment for a hypothesis",
)
def create_experiment(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: ExperimentIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    design = _design(payload, set(payload.model_fields_set) | {"name"})
    made = services.create_experiment(m, user, hypothesis_id, **design)
    return Status(201, _experiment(made))


@router.get(
    "/{slug}/experiments/{experiment_id}",
    response={200: ExperimentOut, **READ_ERRORS},
    summary="Get an experiment's design",
)
def get_experiment(request: HttpRequest, slug: str, experiment_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return _experiment(services.get_experiment(m, experiment_id))


@router.patch(
    "/{slug}/experiments/{experiment_id}",
    response={200: ExperimentOut, **ERRORS},
    summary="Change an experiment's design (variations and metrics, when given, replace the old ones)",
)
def update_experiment(
    request: HttpRequest, slug: str, experiment_id: ObjectId, payload: ExperimentPatch
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.get_experiment(m, experiment_id)
    services.require_writer(m)
    design = _design(payload, set(payload.model_fields_set))
    return _experiment(services.update_experiment(m, user, experiment_id, version=payload.version, **design))


@router.get(
    "/{slug}/experiments/{experiment_id}/snapshots",
    response={200: list[SnapshotOut], **READ_ERRORS},
    summary="List an experiment's result snapshots, newest first",
)
def list_snapshots(request: HttpRequest, slug: str, experiment_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    services.get_experiment(m, experiment_id)
    return [_snapshot(s) for s in services.snapshots_of(m, experiment_id)[:MAX_LIST]]


@router.post(
    "/{slug}/experiments/{experiment_id}/snapshots",
    response={201: SnapshotOut, **ERRORS},
    summary="Attach results imported from an outside tool (labelled as such; never the headline result)",
    description="Results computed by TrueNorth come only from POST …/results. This stores an *imported* "
    "snapshot: labelled “Imported from <source> by <you>”, recorded in history, never the headline "
    "result and never the evidence “conclude” links. Snapshots are append-only.",
)
def create_snapshot(
    request: HttpRequest, slug: str, experiment_id: ObjectId, payload: SnapshotIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    services.get_experiment(m, experiment_id)
    made = services.import_snapshot(
        m,
        user,
        experiment_id,
        source=payload.source,
        method=payload.method,
        note=payload.note,
        inputs=payload.inputs,
        results=payload.results,
        query=payload.query,
    )
    return Status(201, _snapshot(made))


@router.get(
    "/{slug}/snapshots/{snapshot_id}",
    response={200: SnapshotOut, **READ_ERRORS},
    summary="Get a result snapshot with its inputs and query",
)
def get_snapshot(request: HttpRequest, slug: str, snapshot_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return _snapshot(services.get_snapshot(m, snapshot_id))


# --- decisions and the learning log ---------------------------------------------------------------


@router.get(
    "/{slug}/decisions/{decision_id}",
    response={200: DecisionOut, **READ_ERRORS},
    summary="Get a decision",
)
def get_decision(request: HttpRequest, slug: str, decision_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return _decision(services.get_decision(m, decision_id))


@router.get(
    "/{slug}/learnings",
    response={200: list[DecisionOut], **READ_ERRORS},
    summary="Search the learning log (decisions and their learning notes), newest first",
)
def learnings(request: HttpRequest, slug: str, filters: Query[LearningFilters]) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    return [_decision(d) for d in services.learnings(m, filters.product, filters.q)[:MAX_LIST]]


router.add_router("", planning_router)  # the power calculator and experiment plans
router.add_router("", results_router)  # computed results (evidence queries) and their snapshots
