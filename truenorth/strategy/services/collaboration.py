"""Co-authoring a goal: comments (with @mentions), change proposals the owner decides on,
endorsements and concerns. Anyone in the organisation (stakeholders included) may take part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.core.validate import date as _date
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import object_type_of, record
from truenorth.notifications import services as notifications
from truenorth.orgs.models import Membership
from truenorth.strategy.models import ChangeProposal, Comment, Endorsement, Goal
from truenorth.strategy.services._common import PROPOSABLE, TARGET_FIELDS, get_goal
from truenorth.strategy.services.goals import update_goal
from truenorth.strategy.services.targets import _clean_target, update_target


def goal_url(goal: Goal) -> str:
    return f"/o/{goal.organisation.slug}/goals/{goal.pk}/"


def add_comment(membership: Membership, actor: User, goal_id: int, body: str) -> Comment:
    """Anyone in the organisation may comment (stakeholders included); @e-mail mentions notify members."""
    goal = get_goal(membership, goal_id)
    body = _text(body, "body", required=True, max_length=5000)
    comment = Comment.objects.create(goal=goal, author=actor, body=body)
    org = membership.organisation
    mentioned = notifications.mentioned_members(org, body)
    notifications.notify(
        org, mentioned, f"{actor.display_name} mentioned you on “{goal.title}”", goal_url(goal), actor=actor
    )
    if goal.owner and goal.owner not in mentioned:
        notifications.notify(
            org,
            [goal.owner],
            f"{actor.display_name} commented on your goal “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return comment


def comments_of(membership: Membership, goal: Goal) -> QuerySet[Comment]:
    return Comment.objects.filter(goal=goal, goal__organisation_id=membership.organisation_id).select_related(
        "author"
    )


def _clean_changes(goal: Goal, changes: Mapping[str, Any]) -> dict[str, Any]:
    if not changes:
        raise ValidationFailed("Propose at least one change.", field="changes")
    unknown = set(changes) - set(PROPOSABLE)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"'{name}' cannot be proposed; propose {', '.join(PROPOSABLE)}.", field=name)
    clean: dict[str, Any] = {}
    if "title" in changes:
        clean["title"] = _text(changes["title"], "title", required=True, max_length=200)
    if "outcome" in changes:
        clean["outcome"] = _text(changes["outcome"], "outcome")
    if "target_date" in changes:
        date = _date(changes["target_date"], "target_date")
        clean["target_date"] = date.isoformat() if date else None
    if "targets" in changes:
        raw = changes["targets"]
        if not isinstance(raw, Mapping) or not raw:
            raise ValidationFailed("Give target changes as {target id: {target: value}}.", field="targets")
        own = {t.pk: t for t in goal.targets.all()}
        clean_targets: dict[str, dict[str, float]] = {}
        for key, value in raw.items():
            try:
                tid = int(key)
            except (TypeError, ValueError):
                raise ValidationFailed(f"'{key}' is not a target measure id.", field="targets") from None
            if tid not in own:
                raise ValidationFailed(f"Target measure {key} is not one of this goal's.", field="targets")
            new_target = value.get("target") if isinstance(value, Mapping) else value
            spec = {f: getattr(own[tid], f) for f in TARGET_FIELDS} | {"target": new_target}
            new_value = _clean_target(spec).target
            if new_value != own[tid].target:  # proposing the current value changes nothing
                clean_targets[str(tid)] = {"target": new_value}
        if clean_targets:
            clean["targets"] = clean_targets
    # A proposal carries only what differs from the goal today: a field sent with its current value
    # (a form posts every field) would otherwise be "changed" back over newer edits when accepted.
    current = {
        "title": goal.title,
        "outcome": goal.outcome,
        "target_date": goal.target_date.isoformat() if goal.target_date else None,
    }
    clean = {k: v for k, v in clean.items() if k == "targets" or current[k] != v}
    if not clean:
        raise ValidationFailed("That is what the goal already says: nothing to change.", field="changes")
    return clean


@transaction.atomic
def propose_change(
    membership: Membership, actor: User, goal_id: int, changes: Mapping[str, Any], reason: str = ""
) -> ChangeProposal:
    """Anyone in the organisation may propose new wording, targets or a date; the owner decides."""
    goal = get_goal(membership, goal_id)
    if goal.archived_at is not None:
        raise ValidationFailed("This goal is archived.", field="goal")
    proposal = ChangeProposal.objects.create(
        goal=goal,
        author=actor,
        changes=_clean_changes(goal, changes),
        reason=_text(reason, "reason", max_length=2000),
        goal_version=goal.version,
    )
    record(
        membership.organisation,
        proposal,
        actor,
        HistoryEntry.Action.CREATED,
        {
            "changes": {"old": None, "new": proposal.changes},
            **({"reason": {"old": None, "new": proposal.reason}} if proposal.reason else {}),
        },
    )
    if goal.owner:
        notifications.notify(
            membership.organisation,
            [goal.owner],
            f"{actor.display_name} proposed a change to “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return proposal


def goal_history(membership: Membership, goal: Goal) -> QuerySet[HistoryEntry]:
    """The goal's history with its proposals' (made, accepted, rejected, withdrawn, with their reasons),
    newest first, in one query."""
    proposal_ids = (
        ChangeProposal.objects.filter(goal_id=goal.pk).annotate(key=Cast("pk", CharField())).values("key")
    )
    return (
        HistoryEntry.objects.filter(organisation_id=membership.organisation_id)
        .filter(
            Q(object_type=object_type_of(goal), object_id=str(goal.pk))
            | Q(object_type=ChangeProposal._meta.label_lower, object_id__in=proposal_ids)
        )
        .order_by("-at", "-id")
    )


def proposals_of(membership: Membership, goal: Goal) -> QuerySet[ChangeProposal]:
    return ChangeProposal.objects.filter(
        goal=goal, goal__organisation_id=membership.organisation_id
    ).select_related("author", "decided_by")


def _get_proposal(membership: Membership, proposal_id: int) -> ChangeProposal:
    proposal = (
        ChangeProposal.objects.select_for_update()
        .filter(pk=proposal_id, goal__organisation_id=membership.organisation_id)
        .first()
    )
    if proposal is None:
        raise NotFound("No such proposal.")
    return proposal


@transaction.atomic
def decide_proposal(
    membership: Membership,
    actor: User,
    proposal_id: int,
    *,
    accept: bool,
    reason: str = "",
    over_newer_edits: bool = False,
) -> ChangeProposal:
    """The goal's owner (or an admin) accepts (the change is applied) or rejects (a reason is required).

    A proposal made against an older version of the goal is not applied silently over the edits made
    since: accepting it is a 409 until the decider says so (`over_newer_edits`)."""
    proposal = _get_proposal(membership, proposal_id)
    goal = get_goal(membership, proposal.goal_id)
    if goal.owner_id != actor.pk and not membership.can_admin:
        raise Forbidden("Only the goal's owner (or an admin) decides on proposals.")
    if proposal.state != ChangeProposal.State.OPEN:
        raise Conflict(f"This proposal is already {proposal.state}.", field="state")
    reason = _text(reason, "reason", max_length=2000)
    if not accept and not reason:
        raise ValidationFailed("Say why the proposal is rejected.", field="reason")
    if accept and goal.version != proposal.goal_version and not over_newer_edits:
        raise Conflict(
            f"“{goal.title}” has changed since this proposal was made (version {proposal.goal_version} "
            f"then, {goal.version} now). Review the goal as it is now, then accept again choosing to "
            "apply the proposal over the newer edits.",
            field="over_newer_edits",
        )
    if accept:
        changes = dict(proposal.changes)
        targets = changes.pop("targets", {})
        if changes:
            update_goal(membership, actor, goal.pk, **changes)
        for tid, spec in targets.items():
            update_target(membership, actor, int(tid), spec)
    proposal.state = ChangeProposal.State.ACCEPTED if accept else ChangeProposal.State.REJECTED
    proposal.decided_by = actor
    proposal.decided_at = timezone.now()
    proposal.decision_reason = reason
    proposal.save()
    record(
        membership.organisation,
        proposal,
        actor,
        HistoryEntry.Action.UPDATED,
        {
            "state": {"old": "open", "new": proposal.state},
            **({"decision_reason": {"old": None, "new": reason}} if reason else {}),
        },
    )
    if proposal.author:
        verb = "accepted" if accept else "rejected"
        notifications.notify(
            membership.organisation,
            [proposal.author],
            f"{actor.display_name} {verb} your proposal on “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return proposal


@transaction.atomic
def withdraw_proposal(membership: Membership, actor: User, proposal_id: int) -> ChangeProposal:
    proposal = _get_proposal(membership, proposal_id)
    if proposal.author_id != actor.pk:
        raise Forbidden("Only its author can withdraw a proposal.")
    if proposal.state != ChangeProposal.State.OPEN:
        raise Conflict(f"This proposal is already {proposal.state}.", field="state")
    proposal.state = ChangeProposal.State.WITHDRAWN
    proposal.decided_at = timezone.now()
    proposal.save()
    record(
        membership.organisation,
        proposal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"state": {"old": "open", "new": "withdrawn"}},
    )
    return proposal


@transaction.atomic
def endorse(membership: Membership, actor: User, goal_id: int, note: str = "") -> Endorsement:
    """I understand this goal and support it (one standing endorsement per person; endorsing again updates the note)."""
    goal = get_goal(membership, goal_id)
    note = _text(note, "note", max_length=2000)
    existing = Endorsement.objects.filter(
        goal=goal, user=actor, kind=Endorsement.Kind.ENDORSE, resolved_at__isnull=True
    ).first()
    if existing:
        existing.note = note
        existing.save(update_fields=["note"])
        return existing
    endorsement = Endorsement.objects.create(goal=goal, user=actor, kind=Endorsement.Kind.ENDORSE, note=note)
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"endorsement": {"old": None, "new": actor.email}},
    )
    return endorsement


@transaction.atomic
def withdraw_endorsement(membership: Membership, actor: User, goal_id: int) -> None:
    goal = get_goal(membership, goal_id)
    n = Endorsement.objects.filter(
        goal=goal, user=actor, kind=Endorsement.Kind.ENDORSE, resolved_at__isnull=True
    ).update(resolved_at=timezone.now(), resolved_by=actor, resolution="withdrawn")
    if not n:
        raise NotFound("You have not endorsed this goal.")
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"endorsement": {"old": actor.email, "new": None}},
    )


@transaction.atomic
def raise_concern(membership: Membership, actor: User, goal_id: int, note: str) -> Endorsement:
    goal = get_goal(membership, goal_id)
    note = _text(note, "note", required=True, max_length=2000)
    concern = Endorsement.objects.create(goal=goal, user=actor, kind=Endorsement.Kind.CONCERN, note=note)
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"concern": {"old": None, "new": f"{actor.email}: {note[:200]}"}},
    )
    if goal.owner:
        notifications.notify(
            membership.organisation,
            [goal.owner],
            f"{actor.display_name} raised a concern about “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return concern


@transaction.atomic
def resolve_concern(membership: Membership, actor: User, concern_id: int, resolution: str) -> Endorsement:
    concern = (
        Endorsement.objects.select_related("goal")
        .filter(
            pk=concern_id, kind=Endorsement.Kind.CONCERN, goal__organisation_id=membership.organisation_id
        )
        .first()
    )
    if concern is None:
        raise NotFound("No such concern.")
    if actor.pk not in (concern.user_id, concern.goal.owner_id) and not membership.can_admin:
        raise Forbidden("Only the concern's author, the goal's owner or an admin can resolve it.")
    if concern.resolved_at is not None:
        raise Conflict("This concern is already resolved.", field="state")
    concern.resolution = _text(resolution, "resolution", required=True, max_length=2000)
    concern.resolved_at = timezone.now()
    concern.resolved_by = actor
    concern.save()
    record(
        membership.organisation,
        concern.goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"concern": {"old": concern.note[:200], "new": f"resolved: {concern.resolution[:200]}"}},
    )
    return concern


def endorsements_of(membership: Membership, goal: Goal) -> QuerySet[Endorsement]:
    return Endorsement.objects.filter(
        goal=goal, goal__organisation_id=membership.organisation_id
    ).select_related("user", "resolved_by")
