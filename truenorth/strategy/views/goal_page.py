"""The goal page, and `_act`: how every form on it answers (back to the page, or the page with the
form's errors in place)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.orgs import pagecache
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import panels, services
from truenorth.strategy.models import ChangeProposal, Endorsement, Goal, TargetMeasure
from truenorth.strategy.views.common import (
    CHOICE_ROWS,
    HISTORY_ROWS,
    LIST_ROWS,
    _error,
    _goal_url,
    _measure_choices,
    _same_tree,
    _stale,
    _target_edit_form,
)

GOAL_TEMPLATE = "strategy/goal.html"


def _proposal_lines(proposal: ChangeProposal, targets: Mapping[int, TargetMeasure]) -> list[tuple[str, str]]:
    changes = proposal.changes or {}
    lines = [
        (label, str(changes[key] or "—"))
        for key, label in (("title", "Title"), ("outcome", "Outcome"), ("target_date", "Target date"))
        if key in changes
    ]
    for tid, spec in (changes.get("targets") or {}).items():
        t = targets.get(int(tid))
        value = spec.get("target") if isinstance(spec, Mapping) else spec
        lines.append(
            (
                f"Target of {t.name if t else 'measure #' + str(tid)}",
                f"{value:g}" if value is not None else "—",
            )
        )
    return lines


def _goal_page(request: HttpRequest, membership: Membership, goal_id: int, **bound: Any) -> HttpResponse:
    """The goal page; `bound` holds a form that failed (by its key) so its errors show in place."""
    return render(request, GOAL_TEMPLATE, _goal_context(request, membership, goal_id, **bound))


def _goal_context(request: HttpRequest, membership: Membership, goal_id: int, **bound: Any) -> dict[str, Any]:
    org = membership.organisation
    user = current_user(request)
    goal = services.get_goal(membership, goal_id)
    progress = services.progress_for_org(org.pk)
    targets = list(goal.targets.select_related("measure__product"))
    latest = services.latest_values(t.pk for t in targets)
    measure_choices = _measure_choices(membership, goal.product_id) if membership.can_write else []

    def edit_form(t: TargetMeasure) -> f.TargetForm | None:
        if not membership.can_write:
            return None
        if bound.get(f"target-{t.pk}"):
            return cast(f.TargetForm, bound[f"target-{t.pk}"])
        t.goal = goal
        choices = measure_choices
        if t.measure_id is not None and str(t.measure_id) not in dict(measure_choices):
            choices = _measure_choices(membership, goal.product_id, t)
        return _target_edit_form(membership, t, goal.version, measures=choices)

    target_rows = [
        (t, latest.get(t.pk), services.target_progress_of(t, latest.get(t.pk)), edit_form(t)) for t in targets
    ]
    by_id = {t.pk: t for t in targets}

    # Breadcrumb: the chain of parents up to the top of the tree (one query for the whole tree).
    tree = dict(_same_tree(membership, goal.product_id).values_list("id", "parent_id"))
    chain: list[int] = []
    node = goal.parent_id
    while node is not None and node not in chain and node in tree:
        chain.append(node)
        node = tree[node]
    titles = (
        dict(services.goals_of(membership).filter(pk__in=chain).values_list("id", "title")) if chain else {}
    )
    ancestors = [(pk, titles.get(pk, f"#{pk}")) for pk in reversed(chain)]

    can_decide = membership.can_write and (goal.owner_id == user.pk or membership.can_admin)
    proposals = list(services.proposals_of(membership, goal))
    decide_key = bound.get("decide_for")
    proposal_rows = [
        (
            p,
            _proposal_lines(p, by_id),
            bound["decide"] if decide_key == p.pk and "decide" in bound else f.DecisionForm(),
        )
        for p in proposals
    ]
    endorsements = list(services.endorsements_of(membership, goal))
    resolve_key = bound.get("resolve_for")
    concerns = [
        (e, bound["resolve"] if resolve_key == e.pk and "resolve" in bound else f.ResolveForm())
        for e in endorsements
        if e.kind == Endorsement.Kind.CONCERN
    ]
    endorsers = [e for e in endorsements if e.kind == Endorsement.Kind.ENDORSE and e.resolved_at is None]
    link_choices = services.goals_of(membership).filter(archived_at__isnull=True).exclude(pk=goal.pk)
    if goal.product_id is not None:
        link_choices = link_choices.exclude(product_id=goal.product_id)
    link_options = f.goal_choices(
        link_choices.order_by("product__name", "position", "id").values_list("id", "title", "level")[
            :CHOICE_ROWS
        ],
        empty=[],
    )
    orphan_options: f.Choices = []
    if goal.product_id is not None and membership.can_write:
        orphan_options = [
            (str(w.pk), str(w))
            for w in services.work_items_of(membership, product_id=goal.product_id, orphans=True)[
                :CHOICE_ROWS
            ]
        ]
    target_choices = [(str(t.pk), t.name) for t in targets]
    p = progress.get(goal.pk)
    context = {
        "membership": membership,
        "org": org,
        "goal": goal,
        "progress": p.value if p else None,
        "progress_detail": p,
        "target_rows": target_rows,
        "ancestors": ancestors,
        "children": services.tree_level(
            membership, product_id=goal.product_id, parent_id=goal.pk, progress=progress
        ),
        "links": services.links_of(membership, goal),
        "work_items": list(services.work_items_of(membership, goal_id=goal.pk)[:LIST_ROWS]),
        "goal_panels": panels.goal_panels(membership, goal),
        "checkins": list(goal.checkins.select_related("author")[:20]),
        "comments": list(services.comments_of(membership, goal)),
        "open_proposals": [r for r in proposal_rows if r[0].state == ChangeProposal.State.OPEN],
        "decided_proposals": [r for r in proposal_rows if r[0].state != ChangeProposal.State.OPEN],
        "endorsers": endorsers,
        "i_endorse": any(e.user_id == user.pk for e in endorsers),
        "open_concerns": [c for c in concerns if c[0].resolved_at is None],
        "resolved_concerns": [c for c in concerns if c[0].resolved_at is not None],
        "findings": [x for _, x in services.lint(membership, goal_id=goal.pk)],
        "history": services.goal_history(membership, goal)[:HISTORY_ROWS],
        "can_write": membership.can_write,
        "can_decide": can_decide,
        "can_checkin": can_decide and goal.status == Goal.Status.ACTIVE and goal.archived_at is None,
        "checkin_form": bound.get("checkin") or f.CheckInForm(targets=target_choices),
        "comment_form": bound.get("comment") or f.CommentForm(),
        "proposal_form": bound.get("propose")
        or f.ProposalForm(
            initial={"title": goal.title, "outcome": goal.outcome, "target_date": goal.target_date},
            targets=targets,
        ),
        "concern_form": bound.get("concern") or f.ConcernForm(),
        "endorse_form": bound.get("endorse") or f.NoteForm(),
        "link_form": bound.get("link") or f.LinkForm(goals=link_options),
        "target_form": bound.get("target")
        or f.TargetForm(initial={"version": goal.version}, measures=measure_choices),
        "work_form": bound.get("work") or (f.LinkWorkForm(items=orphan_options) if orphan_options else None),
    }
    return context


@org_view
@require_GET
def goal(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    return pagecache.cached_render(
        request, membership, GOAL_TEMPLATE, lambda: _goal_context(request, membership, goal_id)
    )


def _act(
    request: HttpRequest,
    membership: Membership,
    goal_id: int,
    key: str,
    form: f.forms.Form,
    action: Callable[[], object],
    success: str,
    anchor: str,
    aliases: Mapping[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    """Run one goal-page action: redirect back on success, or show the goal page with the form's errors.

    A Conflict about the state of a proposal or concern (already decided or resolved, e.g. in another
    tab) has no form left to show it on: it becomes a message on the refreshed page."""
    if form.is_valid():
        try:
            action()
        except Conflict as exc:
            if exc.field == "version" and "version" in form.fields:
                _stale(form, exc, services.get_goal(membership, goal_id).version)
            elif exc.field != "state":
                _error(form, exc, aliases)
            else:
                messages.error(request, exc.message)
                return redirect(_goal_url(membership, goal_id, anchor))
        except ValidationFailed as exc:
            _error(form, exc, aliases)
        else:
            messages.success(request, success)
            return redirect(_goal_url(membership, goal_id, anchor))
    return _goal_page(request, membership, goal_id, **{key: form}, **extra)
