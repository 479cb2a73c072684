"""API: an experiment's results — compute them from the raw events (a new immutable snapshot) and read
the latest with the list of snapshots. hypotheses.results does the work."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.hypotheses import jobs, results, services
from truenorth.hypotheses.models import ResultSnapshot
from truenorth.jobs.api import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.models import Membership
from truenorth.orgs.services import membership_for

router = Router(tags=["validation"])
MAX_LIST = 200


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
        description="Metric definitions; an empty list discovers a count and a conversion per event name."
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


def _scope(request: HttpRequest, slug: str) -> tuple[Membership, User]:
    assert isinstance(request.user, User)
    return membership_for(request.user, slug), request.user


def _full(s: ResultSnapshot) -> dict[str, Any]:
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


@router.post(
    "/{slug}/experiments/{experiment_id}/results",
    response={202: JobOut, **SUBMIT_ERRORS},
    summary="Compute an experiment's results from its raw events (a background job) into a new snapshot",
    description="202 with the job (`Location`: GET it until `status` is succeeded or failed); when it "
    "succeeded, `result.snapshot` is the new snapshot's id; `error` says why it failed. 422 at once for "
    "a bad method or correction or missing evidence settings; 429 when the organisation already has "
    "TRUENORTH_JOBS_PER_ORGANISATION jobs queued or running.",
)
def compute(
    request: HttpRequest, response: HttpResponse, slug: str, experiment_id: ObjectId, payload: ComputeIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    job = jobs.submit_compute(
        m, user, experiment_id, method=payload.method, correction=payload.correction, family=payload.family
    )
    return accepted(response, job)


@router.get(
    "/{slug}/experiments/{experiment_id}/results",
    response={200: ResultsOut, **READ_ERRORS},
    summary="An experiment's latest results in full and the list of its result snapshots",
)
def latest(request: HttpRequest, slug: str, experiment_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    services.get_experiment(m, experiment_id)
    listed = list(
        services.snapshots_of(m, experiment_id).only(
            "id", "computed_at", "method", "kind", "source_name", "author_name"
        )[:MAX_LIST]
    )
    newest = services.headline_snapshot(m, experiment_id)
    return {
        "latest": _full(newest) if newest else None,
        "snapshots": [
            {"id": s.pk, "computed_at": s.computed_at, "method": s.method, "kind": s.kind, "label": s.label}
            for s in listed
        ],
    }


@router.put(
    "/{slug}/experiments/{experiment_id}/evidence",
    response={200: dict[str, Any], **ERRORS},
    summary="Set where an experiment's raw events live and its metric definitions",
)
def set_evidence(
    request: HttpRequest, slug: str, experiment_id: ObjectId, payload: EvidenceIn
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    e = results.configure_evidence(
        m,
        user,
        experiment_id,
        data_source_id=payload.data_source,
        evidence_key=payload.experiment_key,
        metric_definitions=payload.metric_definitions,
        mapping=payload.mapping,
        version=payload.version,
    )
    return {
        "data_source": e.data_source_id,
        "experiment_key": e.evidence_key,
        "metric_definitions": e.metric_definitions,
        "mapping": {"assignments": {}, "events": {}, **(e.evidence_mapping or {})},
        "version": e.version,
    }
