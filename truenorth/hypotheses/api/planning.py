"""API: the power calculator (a pure calculation) and applying a plan to an experiment.

Mounted on the validation router (hypotheses/api/__init__.py); hypotheses.planning does the work.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from truenorth.core.schemas import ERRORS, ObjectId
from truenorth.hypotheses import planning, services
from truenorth.hypotheses.schemas import AppliedPlanOut, ApplyPlanIn, PlanOut, PowerIn
from truenorth.orgs.scoping import scope

router = Router(tags=["validation"])


def _plan(payload: PowerIn) -> planning.Plan:
    fields = payload.model_dump(exclude={"version"})
    return planning.plan_sample_size(**fields)


@router.post(
    "/{slug}/power",
    response={200: PlanOut, **ERRORS},
    summary="Power calculator: the sample size per variation for a minimum detectable effect",
)
def power_calculator(request: HttpRequest, slug: str, payload: PowerIn) -> dict[str, Any]:
    scope(request, slug)  # members only
    return _plan(payload).as_dict()


@router.post(
    "/{slug}/experiments/{experiment_id}/plan",
    response={200: AppliedPlanOut, **ERRORS},
    summary="Plan an experiment: store the calculated sample size as its planned sample size",
)
def apply_plan(
    request: HttpRequest, slug: str, experiment_id: ObjectId, payload: ApplyPlanIn
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_experiment(m, experiment_id)
    services.require_writer(m)
    plan = _plan(payload)
    e = planning.apply_plan(m, user, experiment_id, plan, version=payload.version)
    return {
        "plan": plan.as_dict(),
        "experiment_id": e.pk,
        "planned_sample_size": e.planned_sample_size,
        "version": e.version,
    }
