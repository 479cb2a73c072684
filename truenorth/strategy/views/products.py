"""Products: the list, a product's page (its goal tree, lint, overdue check-ins, orphan work), edit,
archive, teams and work items."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, posted_version, require_version
from truenorth.history.services import entries_for
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import panels, services
from truenorth.strategy.views.common import (
    HISTORY_ROWS,
    LINT_ROWS,
    LIST_ROWS,
    FormErrors,
    _error,
    _owners,
    _product_url,
    _stale,
    _team_choices,
)


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
    progress = services.product_progress(membership, services.progress_for_org(membership.organisation_id))
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
            "progress": services.product_progress(membership, progress).get(product.pk),
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
            "product_panels": panels.product_panels(membership, product),
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
