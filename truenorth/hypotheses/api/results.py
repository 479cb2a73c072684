"""API: an experiment's results — compute them from the raw events (a new immutable snapshot) and read
the latest with the list of snapshots. hypotheses.results does the work."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.hypotheses import jobs, results, services
from truenorth.hypotheses.schemas import ComputeIn, EvidenceIn, ResultsOut, result_out
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope

router = Router(tags=["validation"])
MAX_LIST = 200


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
    m, user = scope(request, slug)
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
    m, _ = scope(request, slug)
    services.get_experiment(m, experiment_id)
    listed = list(
        services.snapshots_of(m, experiment_id).only(
            "id", "computed_at", "method", "kind", "source_name", "author_name"
        )[:MAX_LIST]
    )
    newest = services.headline_snapshot(m, experiment_id)
    return {
        "latest": result_out(newest) if newest else None,
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
    m, user = scope(request, slug)
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
