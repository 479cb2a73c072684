"""API: the power calculator (a pure calculation) and applying a plan to an experiment.

Mounted on the validation router (hypotheses/api.py); hypotheses.planning does the work.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.schemas import ERRORS, ObjectId, StrictSchema
from truenorth.hypotheses import planning, services
from truenorth.orgs.services import membership_for

router = Router(tags=["validation"])


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


def _plan(payload: PowerIn) -> planning.Plan:
    fields = payload.model_dump(exclude={"version"})
    return planning.plan_sample_size(**fields)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@router.post(
    "/{slug}/power",
    response={200: PlanOut, **ERRORS},
    summary="Power calculator: the sample size per variation for a minimum detectable effect",
)
def power_calculator(request: HttpRequest, slug: str, payload: PowerIn) -> dict[str, Any]:
    membership_for(_user(request), slug)
    return _plan(payload).as_dict()


@router.post(
    "/{slug}/experiments/{experiment_id}/plan",
    response={200: AppliedPlanOut, **ERRORS},
    summary="Plan an experiment: store the calculated sample size as its planned sample size",
)
def apply_plan(
    request: HttpRequest, slug: str, experiment_id: ObjectId, payload: ApplyPlanIn
) -> dict[str, Any]:
    user = _user(request)
    m = membership_for(user, slug)
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
