"""Vision API: co-authoring (comments, change proposals, endorsements and concerns)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Status

from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import router
from truenorth.strategy.models import ChangeProposal, Comment, Endorsement
from truenorth.strategy.schemas import (
    CommentIn,
    CommentOut,
    ConcernIn,
    DecisionIn,
    EndorsementOut,
    ListFilter,
    NoteIn,
    ProposalIn,
    ProposalOut,
    ResolveIn,
)


@router.get(
    "/{slug}/goals/{goal_id}/comments",
    response={200: list[CommentOut], **READ_ERRORS},
    summary="Comments on a goal, oldest first",
)
def list_comments(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[Comment]:
    m, _ = scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = services.comments_of(m, goal)[filters.offset : filters.offset + filters.limit]
    return list(rows)


@router.post(
    "/{slug}/goals/{goal_id}/comments",
    response={201: CommentOut, **ERRORS},
    summary="Comment on a goal (@e-mail mentions notify members)",
)
def add_comment(request: HttpRequest, slug: str, goal_id: ObjectId, payload: CommentIn) -> Status[Comment]:
    m, user = scope(request, slug)
    return Status(201, services.add_comment(m, user, goal_id, payload.body))


@router.get(
    "/{slug}/goals/{goal_id}/proposals",
    response={200: list[ProposalOut], **READ_ERRORS},
    summary="Change proposals on a goal, newest first",
)
def list_proposals(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[ChangeProposal]:
    m, _ = scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = services.proposals_of(m, goal)[filters.offset : filters.offset + filters.limit]
    return list(rows)


@router.post(
    "/{slug}/goals/{goal_id}/proposals",
    response={201: ProposalOut, **ERRORS},
    summary="Propose a change to a goal's wording, targets or date",
)
def propose_change(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: ProposalIn
) -> Status[ChangeProposal]:
    m, user = scope(request, slug)
    changes = payload.changes.model_dump(exclude_unset=True)
    proposal = services.propose_change(m, user, goal_id, changes, payload.reason)
    return Status(201, proposal)


def _decide(
    request: HttpRequest, slug: str, proposal_id: int, *, accept: bool, payload: DecisionIn
) -> ChangeProposal:
    m, user = scope(request, slug)
    proposal = services.decide_proposal(
        m, user, proposal_id, accept=accept, reason=payload.reason, over_newer_edits=payload.over_newer_edits
    )
    return proposal


@router.post(
    "/{slug}/proposals/{proposal_id}/accept",
    response={200: ProposalOut, **ERRORS},
    summary="Accept a proposal: the change is applied (goal owner or admin)",
)
def accept_proposal(
    request: HttpRequest, slug: str, proposal_id: ObjectId, payload: DecisionIn
) -> ChangeProposal:
    return _decide(request, slug, proposal_id, accept=True, payload=payload)


@router.post(
    "/{slug}/proposals/{proposal_id}/reject",
    response={200: ProposalOut, **ERRORS},
    summary="Reject a proposal, with a reason (goal owner or admin)",
)
def reject_proposal(
    request: HttpRequest, slug: str, proposal_id: ObjectId, payload: DecisionIn
) -> ChangeProposal:
    return _decide(request, slug, proposal_id, accept=False, payload=payload)


@router.post(
    "/{slug}/proposals/{proposal_id}/withdraw",
    response={200: ProposalOut, **ERRORS},
    summary="Withdraw my proposal",
)
def withdraw_proposal(request: HttpRequest, slug: str, proposal_id: ObjectId) -> ChangeProposal:
    m, user = scope(request, slug)
    return services.withdraw_proposal(m, user, proposal_id)


@router.get(
    "/{slug}/goals/{goal_id}/endorsements",
    response={200: list[EndorsementOut], **READ_ERRORS},
    summary="Endorsements and concerns on a goal",
)
def list_endorsements(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[Endorsement]:
    m, _ = scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = services.endorsements_of(m, goal)[filters.offset : filters.offset + filters.limit]
    return list(rows)


@router.post(
    "/{slug}/goals/{goal_id}/endorsements",
    response={201: EndorsementOut, **ERRORS},
    summary="Endorse a goal (again: updates my note)",
)
def endorse(request: HttpRequest, slug: str, goal_id: ObjectId, payload: NoteIn) -> Status[Endorsement]:
    m, user = scope(request, slug)
    return Status(201, services.endorse(m, user, goal_id, payload.note))


@router.delete(
    "/{slug}/goals/{goal_id}/endorsements",
    response={204: None, **ERRORS},
    summary="Withdraw my endorsement of a goal",
)
def withdraw_endorsement(request: HttpRequest, slug: str, goal_id: ObjectId) -> Status[None]:
    m, user = scope(request, slug)
    services.withdraw_endorsement(m, user, goal_id)
    return Status(204, None)


@router.post(
    "/{slug}/goals/{goal_id}/concerns",
    response={201: EndorsementOut, **ERRORS},
    summary="Raise a concern about a goal",
)
def raise_concern(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: ConcernIn
) -> Status[Endorsement]:
    m, user = scope(request, slug)
    return Status(201, services.raise_concern(m, user, goal_id, payload.note))


@router.post(
    "/{slug}/concerns/{concern_id}/resolve",
    response={200: EndorsementOut, **ERRORS},
    summary="Resolve a concern (its author, the goal's owner or an admin)",
)
def resolve_concern(request: HttpRequest, slug: str, concern_id: ObjectId, payload: ResolveIn) -> Endorsement:
    m, user = scope(request, slug)
    return services.resolve_concern(m, user, concern_id, payload.resolution)
