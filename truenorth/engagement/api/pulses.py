"""Engagement API: alignment pulses (list, create, get, change, delete), their rounds, a round's
results (hidden below the pulse's minimum group size), the trend, "open a round now" (a background job:
it sends e-mail; 202 with the job) and closing a round early. Answers are given through the one-time
link of the invitation e-mail (/pulse/<token>/), never through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.engagement.jobs.pulses import submit_open_round
from truenorth.engagement.models import Pulse, PulseRound
from truenorth.engagement.services import pulse_results as results
from truenorth.engagement.services import pulses as services
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])

VERSION_HELP = "The version you read; a stale one is refused with 409."


class PulseOut(Schema):
    id: int
    title: str
    product: int
    product_name: str
    cadence_days: int = Field(description="0: one round only")
    open_days: int
    next_run_at: dt.datetime | None
    active: bool
    all_members: bool
    members: list[int] = Field(description="user ids asked when all_members is false")
    include_stakeholders: bool
    min_group_size: int
    rounds: int
    created_at: dt.datetime
    version: int


class PulseIn(StrictSchema):
    title: str
    product: ObjectId
    cadence_days: int = 0
    open_days: int = 7
    next_run_at: dt.datetime | None = Field(None, description="first round; default now")
    active: bool = True
    all_members: bool = True
    members: list[ObjectId] = []
    include_stakeholders: bool = True
    min_group_size: int | None = Field(None, description="default TRUENORTH_PULSE_MIN_GROUP_SIZE")


class PulsePatch(StrictSchema):
    version: int = Field(description=VERSION_HELP)
    title: str | None = None
    product: ObjectId | None = None
    cadence_days: int | None = None
    open_days: int | None = None
    next_run_at: dt.datetime | None = None
    active: bool | None = None
    all_members: bool | None = None
    members: list[ObjectId] | None = None
    include_stakeholders: bool | None = None
    min_group_size: int | None = None


class PulseVersionQuery(Schema):
    version: int = Field(description=VERSION_HELP)


class RoundOut(Schema):
    id: int
    number: int
    goal_statement: str
    opened_at: dt.datetime
    closes_at: dt.datetime
    closed_at: dt.datetime | None
    open: bool
    invited: int
    responses: int


class DistributionOut(Schema):
    counts: list[int] = Field(description="answers 1, 2, 3, 4, 5")
    mean: float | None


class GroupOut(Schema):
    name: str
    responses: int
    hidden: bool
    clarity: DistributionOut | None
    commitment: DistributionOut | None
    index: float | None


class DivergentOut(Schema):
    own_words: str
    similarity: float


class PulseResultsOut(Schema):
    round: RoundOut
    invited: int
    responses: int
    response_rate: float | None
    hidden: bool = Field(description="fewer answers than min_group_size: only the counts are given")
    hidden_reason: str | None
    index: float | None = Field(description="alignment index 0 to 100 (docs/engagement.md)")
    clarity: float | None = Field(description="mean (clarity - 1) / 4, 0 to 1")
    commitment: float | None = Field(description="mean (commitment - 1) / 4, 0 to 1")
    similarity: float | None = Field(description="mean calibrated similarity, 0 to 1")
    clarity_distribution: DistributionOut | None
    commitment_distribution: DistributionOut | None
    groups: list[GroupOut]
    divergent: list[DivergentOut] = Field(description="answers furthest from the goal statement")


class TrendOut(Schema):
    number: int
    opened_at: dt.datetime
    invited: int
    responses: int
    response_rate: float | None
    hidden: bool
    index: float | None
    clarity: float | None
    commitment: float | None
    similarity: float | None


def _pulse_out(pulse: Pulse) -> dict[str, Any]:
    return {
        "id": pulse.pk,
        "title": pulse.title,
        "product": pulse.product_id,
        "product_name": pulse.product.name,
        "cadence_days": pulse.cadence_days,
        "open_days": pulse.open_days,
        "next_run_at": pulse.next_run_at,
        "active": pulse.active,
        "all_members": pulse.all_members,
        "members": sorted(u.pk for u in pulse.members.all()),
        "include_stakeholders": pulse.include_stakeholders,
        "min_group_size": pulse.min_group_size,
        "rounds": pulse.rounds.count(),
        "created_at": pulse.created_at,
        "version": pulse.version,
    }


def _round_out(rnd: PulseRound, invited: int | None = None, responses: int | None = None) -> dict[str, Any]:
    return {
        "id": rnd.pk,
        "number": rnd.number,
        "goal_statement": rnd.goal_statement,
        "opened_at": rnd.opened_at,
        "closes_at": rnd.closes_at,
        "closed_at": rnd.closed_at,
        "open": services.is_open(rnd),
        "invited": invited if invited is not None else rnd.invitations.count(),
        "responses": responses if responses is not None else rnd.responses.count(),
    }


def _dist(d: results.Distribution | None) -> dict[str, Any] | None:
    return None if d is None else {"counts": list(d.counts), "mean": d.mean}


def _values(payload: PulseIn | PulsePatch, given: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    mapping = {"product": "product_id", "members": "member_ids"}
    for name in given - {"version"}:
        value = getattr(payload, name)
        if value is None and name not in ("next_run_at", "min_group_size"):
            raise ValidationFailed("Must not be null.", field=name)
        values[mapping.get(name, name)] = value
    return values


@router.get("/{slug}/pulses", response={200: list[PulseOut], **READ_ERRORS}, summary="List alignment pulses")
def list_pulses(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [_pulse_out(p) for p in services.pulses_of(m).prefetch_related("members")]


@router.post("/{slug}/pulses", response={201: PulseOut, **ERRORS}, summary="Create an alignment pulse")
def create_pulse(request: HttpRequest, slug: str, payload: PulseIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    values = _values(payload, set(payload.model_fields_set) | {"title", "product"})
    if values.get("min_group_size") is None:
        values.pop("min_group_size", None)
    if "next_run_at" in values and values["next_run_at"] is None:
        values.pop("next_run_at")
    return Status(201, _pulse_out(services.create_pulse(m, user, **values)))


@router.get("/{slug}/pulses/{pulse_id}", response={200: PulseOut, **READ_ERRORS}, summary="Get a pulse")
def get_pulse(request: HttpRequest, slug: str, pulse_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _pulse_out(services.get_pulse(m, pulse_id))


@router.patch("/{slug}/pulses/{pulse_id}", response={200: PulseOut, **ERRORS}, summary="Change a pulse")
def update_pulse(request: HttpRequest, slug: str, pulse_id: ObjectId, payload: PulsePatch) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_pulse(m, pulse_id)
    values = _values(payload, set(payload.model_fields_set))
    if "min_group_size" in values and values["min_group_size"] is None:
        raise ValidationFailed("Must not be null.", field="min_group_size")
    pulse = services.update_pulse(m, user, pulse_id, version=payload.version, **values)
    return _pulse_out(pulse)


@router.delete(
    "/{slug}/pulses/{pulse_id}",
    response={204: None, **ERRORS},
    summary="Delete a pulse with its rounds and answers",
)
def delete_pulse(
    request: HttpRequest, slug: str, pulse_id: ObjectId, filters: Query[PulseVersionQuery]
) -> Status[None]:
    m, user = scope(request, slug)
    services.delete_pulse(m, user, pulse_id, version=filters.version)
    return Status(204, None)


@router.get(
    "/{slug}/pulses/{pulse_id}/rounds",
    response={200: list[RoundOut], **READ_ERRORS},
    summary="A pulse's rounds",
)
def list_rounds(request: HttpRequest, slug: str, pulse_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [_round_out(r, r.invited, r.answered) for r in services.rounds_of(m, pulse_id)]  # type: ignore[attr-defined]


@router.post(
    "/{slug}/pulses/{pulse_id}/rounds",
    response={202: JobOut, **SUBMIT_ERRORS},
    summary="Open the pulse's next round now (a background job that sends the invitations)",
    description="202 with the job (`Location`: GET it until `status` is succeeded or failed; `result` "
    "names the round and how many were invited). 409 while a round is still open; 422 when the product "
    "has neither a product goal nor a vision; 429 when the organisation already has "
    "TRUENORTH_JOBS_PER_ORGANISATION jobs queued or running.",
)
def open_round(
    request: HttpRequest, response: HttpResponse, slug: str, pulse_id: ObjectId
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    return accepted(response, submit_open_round(m, user, pulse_id))


@router.post(
    "/{slug}/pulses/{pulse_id}/rounds/{round_id}/close",
    response={200: RoundOut, **ERRORS},
    summary="Close an open round now (its unused links stop working)",
)
def close_round(request: HttpRequest, slug: str, pulse_id: ObjectId, round_id: ObjectId) -> dict[str, Any]:
    m, user = scope(request, slug)
    return _round_out(services.close_round(m, user, round_id, pulse_id=pulse_id))


@router.get(
    "/{slug}/pulses/{pulse_id}/rounds/{round_id}/results",
    response={200: PulseResultsOut, **READ_ERRORS},
    summary="A round's results (groups and the whole round hidden below the minimum group size)",
)
def round_results(request: HttpRequest, slug: str, pulse_id: ObjectId, round_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    r = results.round_results(m, round_id, pulse_id)
    parts = r.figures.components
    return {
        "round": _round_out(r.round, r.figures.invited, r.figures.responses),
        "invited": r.figures.invited,
        "responses": r.figures.responses,
        "response_rate": r.figures.response_rate,
        "hidden": r.hidden,
        "hidden_reason": r.note if r.hidden else None,
        "index": parts.index,
        "clarity": parts.clarity,
        "commitment": parts.commitment,
        "similarity": parts.similarity,
        "clarity_distribution": _dist(r.clarity),
        "commitment_distribution": _dist(r.commitment),
        "groups": [
            {
                "name": g.name,
                "responses": g.responses,
                "hidden": g.hidden,
                "clarity": _dist(g.clarity),
                "commitment": _dist(g.commitment),
                "index": g.index,
            }
            for g in r.groups
        ],
        "divergent": [{"own_words": d.own_words, "similarity": d.similarity} for d in r.divergent],
    }


@router.get(
    "/{slug}/pulses/{pulse_id}/trend",
    response={200: list[TrendOut], **READ_ERRORS},
    summary="A pulse's trend: index, clarity, commitment and response rate by round",
)
def pulse_trend(request: HttpRequest, slug: str, pulse_id: ObjectId) -> list[results.TrendPoint]:
    m, _ = scope(request, slug)
    return results.trend(m, pulse_id)
