"""Co-authoring a goal: check-ins, comments, change proposals and decisions, endorsements and concerns."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from truenorth.core.errors import NotFound
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import services
from truenorth.strategy.views.common import FormErrors, _goal_url
from truenorth.strategy.views.goal_page import _act


@org_view
@require_POST
def checkin(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    form = f.CheckInForm(request.POST, targets=[(str(t.pk), t.name) for t in goal.targets.all()])

    def action() -> object:
        data = form.cleaned_data
        return services.check_in(
            membership,
            current_user(request),
            goal_id,
            status=data["status"],
            confidence=data["confidence"],
            narrative=data["narrative"],
            target_id=f.optional_int(data["target"]),
            value=data["value"],
            idempotency_key=data["idempotency_key"],
        )

    return _act(request, membership, goal_id, "checkin", form, action, "Check-in recorded.", "checkins")


@org_view
@require_POST
def comment(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.get_goal(membership, goal_id)
    form = f.CommentForm(request.POST)

    def action() -> object:
        return services.add_comment(membership, current_user(request), goal_id, form.cleaned_data["body"])

    return _act(request, membership, goal_id, "comment", form, action, "Comment added.", "comments")


@org_view
@require_POST
def propose(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    goal = services.get_goal(membership, goal_id)
    form = f.ProposalForm(request.POST, targets=list(goal.targets.all()))

    def action() -> object:
        return services.propose_change(
            membership, current_user(request), goal_id, form.changes(goal), form.cleaned_data["reason"]
        )

    # A target measure's error ("targets") is shown at the top of the form; "changes" too.
    return _act(
        request,
        membership,
        goal_id,
        "propose",
        form,
        action,
        "Change proposed; the goal's owner decides.",
        "proposals",
    )


@org_view
@require_POST
def decide(request: HttpRequest, membership: Membership, goal_id: int, proposal_id: int) -> HttpResponse:
    services.get_goal(membership, goal_id)
    form = f.DecisionForm(request.POST)
    accept = request.POST.get("decision") == "accept"

    def action() -> object:
        return services.decide_proposal(
            membership,
            current_user(request),
            proposal_id,
            accept=accept,
            reason=form.cleaned_data["reason"],
            over_newer_edits=form.cleaned_data["over_newer_edits"],
        )

    success = "Proposal accepted: the goal now says so." if accept else "Proposal rejected."
    return _act(
        request, membership, goal_id, "decide", form, action, success, "proposals", decide_for=proposal_id
    )


@org_view
@require_POST
def withdraw_proposal(
    request: HttpRequest, membership: Membership, goal_id: int, proposal_id: int
) -> HttpResponse:
    try:
        services.withdraw_proposal(membership, current_user(request), proposal_id)
    except FormErrors as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Proposal withdrawn.")
    return redirect(_goal_url(membership, goal_id, "proposals"))


@org_view
@require_POST
def endorse(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.get_goal(membership, goal_id)
    form = f.NoteForm(request.POST)

    def action() -> object:
        return services.endorse(membership, current_user(request), goal_id, form.cleaned_data["note"])

    return _act(request, membership, goal_id, "endorse", form, action, "You endorse this goal.", "support")


@org_view
@require_POST
def withdraw_endorsement(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.get_goal(membership, goal_id)
    try:
        services.withdraw_endorsement(membership, current_user(request), goal_id)
    except NotFound as exc:  # the goal exists (checked above): there was no endorsement to withdraw
        messages.error(request, exc.message)
    else:
        messages.success(request, "Endorsement withdrawn.")
    return redirect(_goal_url(membership, goal_id, "support"))


@org_view
@require_POST
def raise_concern(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.get_goal(membership, goal_id)
    form = f.ConcernForm(request.POST)

    def action() -> object:
        return services.raise_concern(membership, current_user(request), goal_id, form.cleaned_data["note"])

    return _act(request, membership, goal_id, "concern", form, action, "Concern raised.", "support")


@org_view
@require_POST
def resolve_concern(
    request: HttpRequest, membership: Membership, goal_id: int, concern_id: int
) -> HttpResponse:
    services.get_goal(membership, goal_id)
    form = f.ResolveForm(request.POST)

    def action() -> object:
        return services.resolve_concern(
            membership, current_user(request), concern_id, form.cleaned_data["resolution"]
        )

    return _act(
        request,
        membership,
        goal_id,
        "resolve",
        form,
        action,
        "Concern resolved.",
        "support",
        resolve_for=concern_id,
    )
