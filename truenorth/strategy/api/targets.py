"""Vision API: the target measures of a goal and their observed values."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from truenorth.core.errors import NotFound
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import router, target_out
from truenorth.strategy.models import TargetMeasure, TargetObservation
from truenorth.strategy.schemas import (
    ListFilter,
    NewTargetIn,
    TargetObservationIn,
    TargetObservationOut,
    TargetOut,
    TargetPatch,
    VersionQuery,
)


@router.post(
    "/{slug}/goals/{goal_id}/targets",
    response={201: TargetOut, **ERRORS},
    summary="Add a target measure to a goal",
)
def add_target(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: NewTargetIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    spec = payload.model_dump(exclude={"version"})
    target = services.add_target(m, user, goal_id, spec, version=payload.version)
    return Status(201, target_out(target, {}))


@router.patch(
    "/{slug}/targets/{target_id}", response={200: TargetOut, **ERRORS}, summary="Change a target measure"
)
def update_target(
    request: HttpRequest, slug: str, target_id: ObjectId, payload: TargetPatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    spec = payload.model_dump(exclude={"version"}, exclude_unset=True)
    target = services.update_target(m, user, target_id, spec, version=payload.version)
    return target_out(target, services.latest_values([target.pk]))


@router.delete(
    "/{slug}/targets/{target_id}",
    response={204: None, **ERRORS},
    summary="Remove a target measure from its goal (archived: it and its observed values are kept)",
)
def remove_target(
    request: HttpRequest, slug: str, target_id: ObjectId, filters: Query[VersionQuery]
) -> Status[None]:
    m, user = scope(request, slug)
    services.remove_target(m, user, target_id, version=filters.version)
    return Status(204, None)


@router.get(
    "/{slug}/targets/{target_id}/observations",
    response={200: list[TargetObservationOut], **READ_ERRORS},
    summary="Observed values of a target measure, newest first",
)
def list_observations(
    request: HttpRequest, slug: str, target_id: ObjectId, filters: Query[ListFilter]
) -> list[TargetObservation]:
    m, _ = scope(request, slug)
    if not TargetMeasure.objects.filter(pk=target_id, goal__organisation_id=m.organisation_id).exists():
        raise NotFound("No such target measure.")
    qs = TargetObservation.objects.filter(target_measure_id=target_id).select_related("recorded_by")
    return list(qs[filters.offset : filters.offset + filters.limit])


@router.post(
    "/{slug}/targets/{target_id}/observations",
    response={201: TargetObservationOut, **ERRORS},
    summary="Record an observed value of a target measure",
)
def record_observation(
    request: HttpRequest, slug: str, target_id: ObjectId, payload: TargetObservationIn
) -> Status[TargetObservation]:
    m, user = scope(request, slug)
    observation = services.record_observation(
        m, user, target_id, payload.value, observed_at=payload.observed_at, note=payload.note
    )
    return Status(201, observation)
