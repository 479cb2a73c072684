"""API: Validation — hypotheses (board, ranking, lint), experiments, result snapshots, decisions and the
learning log. Every rule lives in hypotheses.services; this module translates JSON in and out only.

Operation ids are spelled out: they are the ones the API had before it became a package (clients and
generated SDKs name their methods after them).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.hypotheses import scoring, services
from truenorth.hypotheses.schemas import (
    BoardFilters,
    DecisionOut,
    ExperimentFields,
    ExperimentIn,
    ExperimentOut,
    ExperimentPatch,
    HypothesisConcludeIn,
    HypothesisDetailOut,
    HypothesisFields,
    HypothesisFindingOut,
    HypothesisIn,
    HypothesisMoveIn,
    HypothesisOut,
    HypothesisPatch,
    LearningFilters,
    RankedOut,
    SnapshotIn,
    SnapshotOut,
    decision_out,
    experiment_out,
    hypothesis_detail_out,
    hypothesis_out,
    snapshot_out,
)
from truenorth.orgs.models import Membership
from truenorth.orgs.scoping import scope
from truenorth.strategy.services import get_product

router = Router(tags=["validation"])

MAX_LIST = 1000


# --- helpers --------------------------------------------------------------------------------------


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
    m, _ = scope(request, slug)
    columns = services.board(m, product_id, goal_id=filters.goal, owner_id=filters.owner, q=filters.q)
    states = [filters.state] if filters.state else list(columns)
    return [hypothesis_out(h) for state in states for h in columns[state]][:MAX_LIST]


@router.post(
    "/{slug}/products/{product_id}/hypotheses",
    response={201: HypothesisDetailOut, **ERRORS},
    summary="Create a hypothesis (in draft)",
)
def create_hypothesis(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: HypothesisIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    get_product(m, product_id)  # an unknown product is a 404 before any field is looked at
    services.require_writer(m)
    fields = _fields(m, payload, set(payload.model_fields_set) | {"title"})
    made = services.create_hypothesis(m, user, product_id, title=fields.pop("title"), **fields)
    return Status(201, hypothesis_detail_out(m, made.pk))


@router.get(
    "/{slug}/products/{product_id}/hypotheses/rank",
    response={200: list[RankedOut], **READ_ERRORS},
    summary="Rank a product's open hypotheses by ICE, RICE, WSJF or CD3",
)
def rank_hypotheses(
    request: HttpRequest, slug: str, product_id: ObjectId, method: scoring.Method = "ice"
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    rows = services.ranked(m, product_id, method)
    return [{"rank": i, "score": s, "hypothesis": hypothesis_out(h)} for i, (h, s) in enumerate(rows, 1)]


@router.get(
    "/{slug}/products/{product_id}/hypotheses/lint",
    response={200: list[HypothesisFindingOut], **READ_ERRORS},
    summary="Open hypotheses without a measurable success signal",
)
def lint_hypotheses(request: HttpRequest, slug: str, product_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
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
    m, _ = scope(request, slug)
    return hypothesis_detail_out(m, hypothesis_id)


@router.patch(
    "/{slug}/hypotheses/{hypothesis_id}",
    response={200: HypothesisDetailOut, **ERRORS},
    summary="Change a hypothesis",
)
def update_hypothesis(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: HypothesisPatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    fields = _fields(m, payload, set(payload.model_fields_set))
    services.update_hypothesis(m, user, hypothesis_id, version=payload.version, **fields)
    return hypothesis_detail_out(m, hypothesis_id)


@router.post(
    "/{slug}/hypotheses/{hypothesis_id}/move",
    response={200: HypothesisDetailOut, **ERRORS},
    summary="Move a hypothesis to another lifecycle column or position",
)
def move_hypothesis(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: HypothesisMoveIn
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    services.move_hypothesis(
        m, user, hypothesis_id, payload.state, version=payload.version, position=payload.position
    )
    return hypothesis_detail_out(m, hypothesis_id)


@router.post(
    "/{slug}/hypotheses/{hypothesis_id}/conclude",
    response={201: DecisionOut, **ERRORS},
    summary="Conclude a hypothesis: outcome, decision and learning note (links the latest results)",
)
def conclude(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: HypothesisConcludeIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
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
    return Status(201, decision_out(services.get_decision(m, made.pk)))


# --- experiments and snapshots --------------------------------------------------------------------


@router.post(
    "/{slug}/hypotheses/{hypothesis_id}/experiments",
    response={201: ExperimentOut, **ERRORS},
    summary="Design an experiment for a hypothesis",
)
def create_experiment(
    request: HttpRequest, slug: str, hypothesis_id: ObjectId, payload: ExperimentIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    services.get_hypothesis(m, hypothesis_id)
    services.require_writer(m)
    design = _design(payload, set(payload.model_fields_set) | {"name"})
    made = services.create_experiment(m, user, hypothesis_id, **design)
    return Status(201, experiment_out(made))


@router.get(
    "/{slug}/experiments/{experiment_id}",
    response={200: ExperimentOut, **READ_ERRORS},
    summary="Get an experiment's design",
)
def get_experiment(request: HttpRequest, slug: str, experiment_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return experiment_out(services.get_experiment(m, experiment_id))


@router.patch(
    "/{slug}/experiments/{experiment_id}",
    response={200: ExperimentOut, **ERRORS},
    summary="Change an experiment's design (variations and metrics, when given, replace the old ones)",
)
def update_experiment(
    request: HttpRequest, slug: str, experiment_id: ObjectId, payload: ExperimentPatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_experiment(m, experiment_id)
    services.require_writer(m)
    design = _design(payload, set(payload.model_fields_set))
    return experiment_out(
        services.update_experiment(m, user, experiment_id, version=payload.version, **design)
    )


@router.get(
    "/{slug}/experiments/{experiment_id}/snapshots",
    response={200: list[SnapshotOut], **READ_ERRORS},
    summary="List an experiment's result snapshots, newest first",
)
def list_snapshots(request: HttpRequest, slug: str, experiment_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    services.get_experiment(m, experiment_id)
    return [snapshot_out(s) for s in services.snapshots_of(m, experiment_id)[:MAX_LIST]]


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
    m, user = scope(request, slug)
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
    return Status(201, snapshot_out(made))


@router.get(
    "/{slug}/snapshots/{snapshot_id}",
    response={200: SnapshotOut, **READ_ERRORS},
    summary="Get a result snapshot with its inputs and query",
)
def get_snapshot(request: HttpRequest, slug: str, snapshot_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return snapshot_out(services.get_snapshot(m, snapshot_id))


# --- decisions and the learning log ---------------------------------------------------------------


@router.get(
    "/{slug}/decisions/{decision_id}",
    response={200: DecisionOut, **READ_ERRORS},
    summary="Get a decision",
)
def get_decision(request: HttpRequest, slug: str, decision_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return decision_out(services.get_decision(m, decision_id))


@router.get(
    "/{slug}/learnings",
    response={200: list[DecisionOut], **READ_ERRORS},
    summary="Search the learning log (decisions and their learning notes), newest first",
)
def learnings(request: HttpRequest, slug: str, filters: Query[LearningFilters]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [decision_out(d) for d in services.learnings(m, filters.product, filters.q)[:MAX_LIST]]
