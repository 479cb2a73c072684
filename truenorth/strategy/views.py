"""Vision pages: products, goal trees, goals and their co-authoring, alignment, overdue check-ins.

Views only parse forms and call strategy.services; every rule (roles, versions, cycles, levels) is
checked there. A service error is shown on the form field it names; NotFound and Forbidden go up to
@org_view (404 page, 403 page).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, posted_version, require_version
from truenorth.history.services import entries_for
from truenorth.htmx import is_htmx
from truenorth.orgs import services as org_services
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import panels, services
from truenorth.strategy import progress as progress_core
from truenorth.strategy.models import ChangeProposal, Endorsement, Goal, TargetMeasure

HISTORY_ROWS = 50
LINT_ROWS = 100
LIST_ROWS = 100
CHOICE_ROWS = 1000

FormErrors = (ValidationFailed, Conflict)


# --- helpers --------------------------------------------------------------------------------------


def _error(form: f.forms.Form, exc: DomainError, aliases: Mapping[str, str] | None = None) -> None:
    """Show a service error on the field it names (hidden fields and unknown names: top of the form)."""
    field = (aliases or {}).get(exc.field or "", exc.field)
    visible = field in form.fields and not form.fields[field].widget.is_hidden
    form.add_error(field if visible else None, exc.message)


def _stale(form: f.forms.Form, exc: DomainError, current_version: int) -> None:
    """A 409 on a stale version: say so, keep what was typed, and let a second save apply it."""
    _error(form, exc)
    data = cast(QueryDict, form.data).copy()
    data["version"] = str(current_version)
    form.data = data
    form.add_error(
        None,
        "Your edits are kept below. Check the history for what changed, then save again to apply them.",
    )


def _is_id(value: str) -> bool:
    """A database id as the URL converter takes it (fits a 64-bit column, so never a database error)."""
    return value.isascii() and value.isdigit() and len(value) <= 18


def _owners(membership: Membership) -> f.Choices:
    return f.owner_choices(org_services.members_of(membership))


def _team_choices(membership: Membership) -> f.Choices:
    return [(str(t.pk), t.name) for t in services.teams_of(membership)]


def _same_tree(membership: Membership, product_id: int | None) -> QuerySet[Goal]:
    """Goals of one product's tree, or the organisation-level goals when product_id is None."""
    qs = services.goals_of(membership)
    return qs.filter(product__isnull=True) if product_id is None else qs.filter(product_id=product_id)


def _tree_goals(membership: Membership, product_id: int | None, *, exclude: int | None = None) -> f.Choices:
    """The live goals of one tree as parent options (one query)."""
    qs = _same_tree(membership, product_id).filter(archived_at__isnull=True)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return f.goal_choices(qs.order_by("position", "id").values_list("id", "title", "level")[:CHOICE_ROWS])


def _goal_url(membership: Membership, goal_id: int, anchor: str = "") -> str:
    url = reverse("strategy:goal", kwargs={"org_slug": membership.organisation.slug, "goal_id": goal_id})
    return f"{url}#{anchor}" if anchor else url


def _product_url(membership: Membership, product_id: int) -> str:
    return reverse(
        "strategy:product", kwargs={"org_slug": membership.organisation.slug, "product_id": product_id}
    )


def product_progress(
    membership: Membership, progress: Mapping[int, progress_core.Progress]
) -> dict[int, float | None]:
    """A product's progress: the weighted roll-up of its top-level goals (one query)."""
    roots: dict[int, list[tuple[float | None, float]]] = {}
    rows = (
        services.goals_of(membership)
        .filter(parent__isnull=True, product__isnull=False, archived_at__isnull=True)
        .exclude(status=Goal.Status.ABANDONED)
        .values_list("id", "product_id", "weight")
    )
    for pk, product_id, weight in rows:
        p = progress.get(pk)
        roots.setdefault(product_id, []).append((p.value if p else None, weight))
    return {pid: progress_core.weighted_mean(pairs) for pid, pairs in roots.items()}


# --- products -------------------------------------------------------------------------------------


@org_view
@require_http_methods(["GET", "POST"])
def products(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        services.require_writer(membership)
    teams = _team_choices(membership) if membership.can_write else []
    form = f.ProductForm(
        request.POST or None,
        initial={"owner": str(current_user(request).pk)},
        owners=_owners(membership),
        teams=teams,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            product = services.create_product(
                membership,
                current_user(request),
                name=data["name"],
                vision=data["vision"],
                product_goal=data["product_goal"],
                owner_id=f.optional_int(data["owner"]),
                team_ids=[int(t) for t in data["teams"]],
            )
        except FormErrors as exc:
            _error(form, exc)
        else:
            messages.success(request, f"{product.name} is ready. Add its strategic goals.")
            return redirect(_product_url(membership, product.pk))
    show_archived = request.GET.get("archived") == "1"
    items = list(services.products_of(membership, include_archived=show_archived))
    counts = services.product_counts(membership)
    progress = product_progress(membership, services.progress_for_org(membership.organisation_id))
    rows = [(p, counts.get(p.pk, {}).get("goals", 0), progress.get(p.pk)) for p in items]
    return render(
        request,
        "strategy/products.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "rows": rows,
            "form": form,
            "team_form": f.TeamForm(),
            "teams": teams,
            "show_archived": show_archived,
        },
    )


@org_view
@require_POST
def create_team(request: HttpRequest, membership: Membership) -> HttpResponse:
    services.require_writer(membership)
    form = f.TeamForm(request.POST)
    if form.is_valid():
        try:
            team = services.create_team(membership, current_user(request), form.cleaned_data["name"])
        except FormErrors as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Team {team.name} added; pick it on a product.")
    else:
        messages.error(request, "Give the team a name (at most 120 characters).")
    return redirect("strategy:products", org_slug=membership.organisation.slug)


def _product_page(
    request: HttpRequest, membership: Membership, product_id: int, work_form: f.WorkItemForm | None = None
) -> HttpResponse:
    org = membership.organisation
    product = services.get_product(membership, product_id)
    progress = services.progress_for_org(org.pk)
    roots = services.tree_level(membership, product_id=product.pk, parent_id=None, progress=progress)
    findings = services.lint(membership, product_id=product.pk)
    orphans = services.orphan_report(membership, product.pk)
    return render(
        request,
        "strategy/product.html",
        {
            "membership": membership,
            "org": org,
            "product": product,
            "teams": list(product.teams.all()),
            "progress": product_progress(membership, progress).get(product.pk),
            "roots": roots,
            "goal_count": services.product_counts(membership).get(product.pk, {}).get("goals", 0),
            "findings": findings[:LINT_ROWS],
            "finding_count": len(findings),
            "error_count": sum(1 for _, x in findings if x.severity == "error"),
            "overdue": services.overdue_checkins(membership, product_id=product.pk)[:LIST_ROWS],
            "orphans": orphans,
            "orphan_items": list(
                services.work_items_of(membership, product_id=product.pk, orphans=True)[:LIST_ROWS]
            ),
            "work_form": work_form or f.WorkItemForm(),
            "history": entries_for(org, product)[:HISTORY_ROWS],
        },
    )


@org_view
@require_GET
def product(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    return _product_page(request, membership, product_id)


@org_view
@require_http_methods(["GET", "POST"])
def product_edit(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    item = services.get_product(membership, product_id)
    initial = {
        "name": item.name,
        "vision": item.vision,
        "product_goal": item.product_goal,
        "owner": str(item.owner_id or ""),
        "teams": [str(t.pk) for t in item.teams.all()],
        "version": item.version,
    }
    form = f.ProductForm(
        request.POST or None, initial=initial, owners=_owners(membership), teams=_team_choices(membership)
    )
    require_version(form)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        owner_id = f.optional_int(data["owner"])
        try:
            services.update_product(
                membership,
                current_user(request),
                product_id,
                version=data["version"],
                name=data["name"],
                vision=data["vision"],
                product_goal=data["product_goal"],
                owner_id=owner_id,
                clear_owner=owner_id is None,
                team_ids=[int(t) for t in data["teams"]],
            )
        except Conflict as exc:
            if exc.field == "version":
                _stale(form, exc, services.get_product(membership, product_id).version)
            else:
                _error(form, exc)
        except ValidationFailed as exc:
            _error(form, exc)
        else:
            messages.success(request, "Product saved.")
            return redirect(_product_url(membership, product_id))
    return render(
        request,
        "strategy/product_edit.html",
        {"membership": membership, "org": membership.organisation, "product": item, "form": form},
    )


@org_view
@require_POST
def product_archive(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_product(membership, product_id)
    restore = request.POST.get("restore") == "1"
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        item = services.archive_product(
            membership, current_user(request), product_id, archived=not restore, version=version
        )
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{item.name} {'restored' if restore else 'archived'}.")
    return redirect(_product_url(membership, product_id))


@org_view
@require_POST
def work_item_create(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    form = f.WorkItemForm(request.POST)
    if form.is_valid():
        try:
            services.create_work_item(membership, current_user(request), product_id, **form.cleaned_data)
        except FormErrors as exc:
            _error(form, exc)
        else:
            messages.success(request, "Work item added. Link it to the goal it serves from that goal's page.")
            return redirect(_product_url(membership, product_id) + "#work")
    return _product_page(request, membership, product_id, work_form=form)


# --- the goal tree --------------------------------------------------------------------------------


@org_view
@require_GET
def goal_children(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    """One level of the tree below a goal, as list items for htmx to put under it."""
    goal = services.get_goal(membership, goal_id)
    if not is_htmx(request):
        return redirect(_goal_url(membership, goal_id, "children"))
    rows = services.tree_level(membership, product_id=goal.product_id, parent_id=goal.pk)
    return render(
        request,
        "strategy/_tree_rows.html",
        {"rows": rows, "org": membership.organisation},
    )


# --- goals: create, edit, move, archive -----------------------------------------------------------


def _from_measure(membership: Membership, request: HttpRequest, product_id: int | None) -> dict[str, Any]:
    """"Create a goal from this measure": `?measure=<id>` prefills the first target, linked to it
    (a measure this goal may not track is ignored)."""
    raw = request.GET.get("measure", "")
    if not _is_id(raw):
        return {}
    m = services.trackable_measures(membership, product_id).filter(pk=int(raw)).first()
    if m is None:
        return {}
    increase = m.direction != "lower"
    return {
        "title": f"Move {m.name}",
        "target_measure": str(m.pk),
        "target_name": m.name,
        "target_unit": m.unit,
        "target_baseline": m.baseline,
        "target_target": m.target,
        "target_direction": "increase" if increase else "decrease",
        "target_date": m.target_date,
    }


def _create_goal(
    request: HttpRequest, membership: Membership, form: f.GoalForm, product_id: int | None
) -> Goal | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return services.create_goal(
            membership,
            current_user(request),
            title=data["title"],
            product_id=product_id,
            parent_id=f.optional_int(data["parent"]),
            level=data["level"] or None,
            outcome=data["outcome"],
            owner_id=f.optional_int(data["owner"]),
            target_date=data["target_date"],
            status=data["status"],
            targets=form.targets(),
        )
    except FormErrors as exc:
        _error(form, exc, f.GoalForm.ALIASES)
        return None


@org_view
@require_http_methods(["GET", "POST"])
def goal_create(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_writer(membership)
    item = services.get_product(membership, product_id)
    initial = {"parent": request.GET.get("parent", ""), "owner": str(current_user(request).pk)}
    initial |= _from_measure(membership, request, item.pk)
    form = f.GoalForm(
        request.POST or None,
        initial=initial,
        owners=_owners(membership),
        parents=_tree_goals(membership, item.pk),
        measures=_measure_choices(membership, item.pk),
    )
    if request.method == "POST":
        goal = _create_goal(request, membership, form, item.pk)
        if goal is not None:
            messages.success(request, f"Goal “{goal.title}” created.")
            return redirect(_goal_url(membership, goal.pk))
    return render(
        request,
        "strategy/goal_create.html",
        {"membership": membership, "org": membership.organisation, "product": item, "form": form},
    )


@org_view
@require_http_methods(["GET", "POST"])
def goal_edit(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    initial = {
        "title": goal.title,
        "outcome": goal.outcome,
        "level": goal.level,
        "status": goal.status,
        "owner": str(goal.owner_id or ""),
        "target_date": goal.target_date,
        "weight": goal.weight,
        "checkin_cadence_days": goal.checkin_cadence_days,
        "version": goal.version,
    }
    form = f.GoalEditForm(request.POST or None, initial=initial, owners=_owners(membership))
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        data["owner_id"] = f.optional_int(data.pop("owner"))
        try:
            services.update_goal(membership, current_user(request), goal_id, version=version, **data)
        except Conflict as exc:
            if exc.field == "version":
                _stale(form, exc, services.get_goal(membership, goal_id).version)
            else:
                _error(form, exc)
        except ValidationFailed as exc:
            _error(form, exc)
        else:
            messages.success(request, "Goal saved.")
            return redirect(_goal_url(membership, goal_id))
    return render(
        request,
        "strategy/goal_edit.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "goal": goal,
            "form": form,
            "move_form": f.MoveForm(
                initial={
                    "parent": str(goal.parent_id or ""),
                    "position": goal.position,
                    "version": goal.version,
                },
                parents=_tree_goals(membership, goal.product_id, exclude=goal.pk),
            ),
        },
    )


@org_view
@require_POST
def goal_move(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    form = f.MoveForm(request.POST, parents=_tree_goals(membership, goal.product_id, exclude=goal.pk))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.move_goal(
                membership,
                current_user(request),
                goal_id,
                parent_id=f.optional_int(data["parent"]),
                position=data["position"],
                version=data["version"],
            )
        except FormErrors as exc:
            _error(form, exc, {"level": "parent"})
        else:
            messages.success(request, "Goal moved.")
            return redirect(_goal_url(membership, goal_id))
    return render(
        request,
        "strategy/goal_edit.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "goal": goal,
            "form": f.GoalEditForm(
                initial={
                    "title": goal.title,
                    "outcome": goal.outcome,
                    "level": goal.level,
                    "status": goal.status,
                    "owner": str(goal.owner_id or ""),
                    "target_date": goal.target_date,
                    "weight": goal.weight,
                    "checkin_cadence_days": goal.checkin_cadence_days,
                    "version": goal.version,
                },
                owners=_owners(membership),
            ),
            "move_form": form,
        },
    )


@org_view
@require_POST
def goal_archive(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    restore = request.POST.get("restore") == "1"
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        goal = services.archive_goal(
            membership, current_user(request), goal_id, archived=not restore, version=version
        )
    except FormErrors as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{goal.title}” {'restored' if restore else 'archived'}.")
    return redirect(_goal_url(membership, goal_id))


# --- the goal page --------------------------------------------------------------------------------


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
    return render(request, "strategy/goal.html", context)


@org_view
@require_GET
def goal(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    return _goal_page(request, membership, goal_id)


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


@org_view
@require_POST
def link_add(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    # Any goal id is accepted here; the service says whether it exists in this organisation.
    target = request.POST.get("target", "")
    form = f.LinkForm(request.POST, goals=[(target, target)])

    def action() -> object:
        data = form.cleaned_data
        return services.link_goals(
            membership, current_user(request), goal_id, int(data["target"]), data["kind"]
        )

    if form.is_valid() and not _is_id(form.cleaned_data["target"]):
        form.add_error("target", "Choose a goal.")
    return _act(request, membership, goal_id, "link", form, action, "Link added.", "links")


@org_view
@require_POST
def link_remove(request: HttpRequest, membership: Membership, goal_id: int, link_id: int) -> HttpResponse:
    services.unlink_goals(membership, current_user(request), link_id)
    messages.success(request, "Link removed.")
    return redirect(_goal_url(membership, goal_id, "links"))


@org_view
@require_POST
def target_add(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    form = f.TargetForm(request.POST, measures=_measure_choices(membership, goal.product_id))

    def action() -> object:
        version = form.cleaned_data["version"]
        return services.add_target(membership, current_user(request), goal_id, form.spec(), version=version)

    return _act(
        request, membership, goal_id, "target", form, action, "Target measure added.", "targets", TARGET_ALIASES
    )


TARGET_ALIASES = {"measure_id": "measure"}


def _measure_choices(
    membership: Membership, product_id: int | None, current: TargetMeasure | None = None
) -> f.Choices:
    """The Value measures offered to a target of a goal in this product: its product's and the
    organisation-wide ones, plus the one it tracks now (so an unchanged save keeps it)."""
    choices = [
        (str(m.pk), f"{m.name} ({m.product.name if m.product else 'organisation-wide'})")
        for m in services.trackable_measures(membership, product_id)[:CHOICE_ROWS]
    ]
    if current is not None and current.measure is not None and str(current.measure_id) not in dict(choices):
        m = current.measure
        choices.append((str(m.pk), f"{m.name} ({m.product.name if m.product else 'organisation-wide'})"))
    return choices


def _target_edit_form(
    membership: Membership,
    target: TargetMeasure,
    version: int,
    data: Any = None,
    measures: f.Choices | None = None,
) -> f.TargetForm:
    initial = {
        "name": target.name,
        "unit": target.unit,
        "baseline": target.baseline,
        "target": target.target,
        "direction": target.direction,
        "measure": str(target.measure_id or ""),
        "version": version,
    }
    return f.TargetForm(
        data,
        initial=initial,
        auto_id=f"target-{target.pk}-%s",  # unique ids on a page with several targets; names stay plain
        measures=_measure_choices(membership, target.goal.product_id, target) if measures is None else measures,
    )


@org_view
@require_POST
def target_edit(request: HttpRequest, membership: Membership, goal_id: int, target_id: int) -> HttpResponse:
    """Change a target measure, including the Value measure it tracks (or none)."""
    services.require_writer(membership)
    goal = services.get_goal(membership, goal_id)
    target = goal.targets.filter(pk=target_id).select_related("goal", "measure__product").first()
    if target is None:
        raise NotFound("No such target measure.")
    form = _target_edit_form(membership, target, goal.version, request.POST)

    def action() -> object:
        version = form.cleaned_data["version"]
        return services.update_target(membership, current_user(request), target_id, form.spec(), version=version)

    return _act(
        request,
        membership,
        goal_id,
        f"target-{target_id}",
        form,
        action,
        "Target measure saved.",
        "targets",
        TARGET_ALIASES,
    )


@org_view
@require_POST
def target_remove(request: HttpRequest, membership: Membership, goal_id: int, target_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        services.remove_target(membership, current_user(request), target_id, version=version)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Target measure removed from the goal; it is archived with its values.")
    return redirect(_goal_url(membership, goal_id, "targets"))


@org_view
@require_POST
def work_link(request: HttpRequest, membership: Membership, goal_id: int) -> HttpResponse:
    services.require_writer(membership)
    services.get_goal(membership, goal_id)
    item = request.POST.get("item", "")
    form = f.LinkWorkForm(request.POST, items=[(item, item)])

    def action() -> object:
        return services.link_work_item(
            membership, current_user(request), int(form.cleaned_data["item"]), goal_id
        )

    if form.is_valid() and not _is_id(form.cleaned_data["item"]):
        form.add_error("item", "Choose a work item.")
    return _act(request, membership, goal_id, "work", form, action, "Work item linked.", "work")


@org_view
@require_POST
def work_unlink(request: HttpRequest, membership: Membership, goal_id: int, item_id: int) -> HttpResponse:
    services.link_work_item(membership, current_user(request), item_id, None)
    messages.success(request, "Work item unlinked: it is orphan work until linked again.")
    return redirect(_goal_url(membership, goal_id, "work"))


# --- organisation alignment and overdue check-ins -------------------------------------------------


@org_view
@require_http_methods(["GET", "POST"])
def alignment(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        services.require_writer(membership)
    form = f.GoalForm(
        request.POST or None,
        initial={"owner": str(current_user(request).pk)} | _from_measure(membership, request, None),
        owners=_owners(membership),
        parents=_tree_goals(membership, None),
        measures=_measure_choices(membership, None),
    )
    if request.method == "POST":
        goal = _create_goal(request, membership, form, None)
        if goal is not None:
            messages.success(request, f"Organisation goal “{goal.title}” created.")
            return redirect("strategy:alignment", org_slug=membership.organisation.slug)
    progress = services.progress_for_org(membership.organisation_id)
    result = services.alignment(membership)
    return render(
        request,
        "strategy/alignment.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "org_goals": [
                (g, progress[g.pk].value if g.pk in progress else None, served)
                for g, served in result.org_goals
            ],
            "unaligned": result.unaligned,
            "form": form,
        },
    )


@org_view
@require_GET
def overdue(request: HttpRequest, membership: Membership) -> HttpResponse:
    products_ = [(str(p.pk), p.name) for p in services.products_of(membership)]
    owners = _owners(membership)
    form = f.OverdueFilterForm(request.GET or None, products=products_, owners=owners)
    product_id = owner_id = None
    if form.is_bound and form.is_valid():
        product_id = f.optional_int(form.cleaned_data["product"])
        owner_id = f.optional_int(form.cleaned_data["owner"])
    rows = services.overdue_checkins(membership, product_id=product_id, owner_id=owner_id)
    return render(
        request,
        "strategy/overdue.html",
        {"membership": membership, "org": membership.organisation, "rows": rows, "form": form},
    )
