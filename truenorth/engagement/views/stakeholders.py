"""Engagement pages: stakeholders — the list with its filters, the stakeholder map (Vega-Lite, with an
HTML table beside it) and the "not talked to" list; a stakeholder's page with its log and the "log an
interaction" form; create, edit and archive. Members and above write; stakeholders (the role) read."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, DomainError, ValidationFailed
from truenorth.core.forms import (
    MISSING_VERSION,
    NOBODY,
    Choices,
    DateInput,
    VersionField,
    optional_int,
    owner_choices,
    posted_version,
    require_version,
    set_choices,
)
from truenorth.engagement import charts
from truenorth.engagement import quadrants as grid
from truenorth.engagement.models import Department, EngagementLevel, InteractionKind, Stakeholder
from truenorth.engagement.services import stakeholders as services
from truenorth.history.services import entries_for
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.orgs.services import members_of, require_writer
from truenorth.strategy import services as strategy

HISTORY_ROWS = 20
LOG_ROWS = 50
SCORES: Choices = [(str(n), str(n)) for n in grid.SCALE]


# --- forms ----------------------------------------------------------------------------------------


class StakeholderForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name")
    email = forms.CharField(max_length=254, required=False, label="E-mail", help_text="Optional.")
    title = forms.CharField(max_length=200, required=False, label="Role or title")
    company = forms.CharField(
        max_length=200, required=False, label="Their organisation", help_text="When they are outside ours."
    )
    department = forms.ChoiceField(choices=Department.choices, label="Department")
    influence = forms.ChoiceField(choices=SCORES, label="Influence (1-5)", initial="3")
    interest = forms.ChoiceField(choices=SCORES, label="Interest (1-5)", initial="3")
    current_engagement = forms.ChoiceField(
        choices=EngagementLevel.choices, label="Engagement now", initial=EngagementLevel.NEUTRAL
    )
    desired_engagement = forms.ChoiceField(
        choices=EngagementLevel.choices, label="Engagement we need", initial=EngagementLevel.SUPPORTIVE
    )
    relationship_owner = forms.ChoiceField(required=False, label="Relationship owner")
    user = forms.ChoiceField(required=False, label="Their account here")
    goals = forms.MultipleChoiceField(required=False, label="Goals they care about")
    products = forms.MultipleChoiceField(required=False, label="Products they care about")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Notes")
    version = VersionField(required=False)  # required when editing

    def __init__(
        self, *args: Any, membership: Membership, current: Stakeholder | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        members = list(members_of(membership))
        set_choices(self.fields["relationship_owner"], owner_choices(members))
        set_choices(
            self.fields["user"],
            NOBODY + [(str(m.user_id), f"{m.user.display_name} <{m.user.email}>") for m in members],
        )
        goal_ids = {g.pk for g in current.goals.all()} if current else set()
        product_ids = {p.pk for p in current.products.all()} if current else set()
        goals = strategy.goals_of(membership).filter(archived_at__isnull=True) | strategy.goals_of(
            membership
        ).filter(pk__in=goal_ids)
        set_choices(self.fields["goals"], [(str(g.pk), g.title) for g in goals.order_by("title", "id")])
        products = strategy.products_of(membership, include_archived=True)
        set_choices(
            self.fields["products"],
            [(str(p.pk), p.name) for p in products if p.archived_at is None or p.pk in product_ids],
        )

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **{k: data[k] for k in ("name", "email", "title", "company", "department", "notes")},
            **{k: data[k] for k in ("current_engagement", "desired_engagement")},
            "influence": int(data["influence"]),
            "interest": int(data["interest"]),
            "relationship_owner": optional_int(data["relationship_owner"]),
            "user": optional_int(data["user"]),
            "goals": [int(g) for g in data["goals"]],
            "products": [int(p) for p in data["products"]],
        }


class LogForm(forms.Form):
    occurred_on = forms.DateField(widget=DateInput(), label="When")
    kind = forms.ChoiceField(choices=InteractionKind.choices, label="Kind")
    summary = forms.CharField(max_length=300, label="Summary")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Notes")
    goals = forms.MultipleChoiceField(required=False, label="Goals touched")

    def __init__(self, *args: Any, membership: Membership, **kw: Any) -> None:
        super().__init__(*args, **kw)
        goals = strategy.goals_of(membership).filter(archived_at__isnull=True).order_by("title", "id")
        set_choices(self.fields["goals"], [(str(g.pk), g.title) for g in goals])


class FilterForm(forms.Form):
    department = forms.ChoiceField(required=False, label="Department")
    quadrant = forms.ChoiceField(required=False, label="Quadrant")
    product = forms.ChoiceField(required=False, label="Product")
    days = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=36500,
        label="Not talked to in (days)",  # empty: each quadrant's own contact interval
    )

    def __init__(self, *args: Any, membership: Membership, **kw: Any) -> None:
        super().__init__(*args, **kw)
        anything: Choices = [("", "All")]
        set_choices(self.fields["department"], anything + list(Department.choices))
        set_choices(self.fields["quadrant"], anything + list(grid.QUADRANT_LABELS.items()))
        set_choices(
            self.fields["product"], anything + [(str(p.pk), p.name) for p in strategy.products_of(membership)]
        )


# --- helpers --------------------------------------------------------------------------------------


def _url(membership: Membership, name: str, **kwargs: Any) -> str:
    return reverse(f"engagement:{name}", kwargs={"org_slug": membership.organisation.slug, **kwargs})


def _initial(s: Stakeholder) -> dict[str, Any]:
    return {
        **{k: getattr(s, k) for k in ("name", "email", "title", "company", "department", "notes")},
        **{k: getattr(s, k) for k in ("current_engagement", "desired_engagement")},
        "influence": str(s.influence),
        "interest": str(s.interest),
        "relationship_owner": str(s.relationship_owner_id or ""),
        "user": str(s.user_id or ""),
        "goals": [str(g.pk) for g in s.goals.all()],
        "products": [str(p.pk) for p in s.products.all()],
        "version": s.version,
    }


def _show(form: forms.Form, exc: DomainError) -> None:
    apply_error(form, exc)


def _row(s: Stakeholder) -> dict[str, Any]:
    q = services.quadrant_of(s)
    return {"s": s, "quadrant": grid.QUADRANT_LABELS[q], "gap": services.gap_of(s)}


# --- pages ----------------------------------------------------------------------------------------


@org_view
@require_GET
def stakeholders(request: HttpRequest, membership: Membership) -> HttpResponse:
    filters = FilterForm(request.GET or None, membership=membership)
    chosen: dict[str, Any] = {}
    days: int | None = None
    if filters.is_valid():
        data = filters.cleaned_data
        chosen = {"department": data["department"] or None, "quadrant": data["quadrant"] or None}
        product_id = optional_int(data["product"])
        days = data["days"]
    else:
        product_id = None
    found = services.stakeholder_map(membership, product_id, **chosen)
    people = list(services.stakeholders_of(membership, product_id, **chosen))
    overdue = services.overdue(membership, days=days, product_id=product_id)
    return render(
        request,
        "engagement/stakeholders/list.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "filters": filters,
            "rows": [_row(s) for s in people],
            "map": found,
            "spec": found.spec,
            "overdue": overdue,
            "days": days,
            "intervals": [(grid.QUADRANT_LABELS[q], grid.CONTACT_INTERVAL_DAYS[q]) for q in grid.QUADRANTS],
            "high_from": grid.HIGH_FROM,
        },
    )


@org_view
@require_GET
def stakeholders_map_svg(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The map as a static SVG image (the same spec as the page; for PDF and e-mail)."""
    found = services.stakeholder_map(membership)
    response = HttpResponse(charts.map_svg(found.spec), content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


@org_view
@require_http_methods(["GET", "POST"])
def stakeholder_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    require_writer(membership)
    form = StakeholderForm(
        request.POST or None,
        membership=membership,
        initial={"relationship_owner": str(current_user(request).pk), "department": Department.OTHER},
    )
    if request.method == "POST" and form.is_valid():
        try:
            s = services.create_stakeholder(membership, current_user(request), **form.values())
        except (ValidationFailed, Conflict) as exc:
            _show(form, exc)
        else:
            messages.success(request, f"{s.name} added.")
            return redirect(_url(membership, "stakeholder", stakeholder_id=s.pk))
    return render(
        request,
        "engagement/stakeholders/form.html",
        {"membership": membership, "org": membership.organisation, "form": form, "stakeholder": None},
    )


def _detail(
    request: HttpRequest, membership: Membership, stakeholder_id: int, log_form: LogForm | None = None
) -> HttpResponse:
    s = services.get_stakeholder(membership, stakeholder_id)
    contact = services.contact_of(s)
    return render(
        request,
        "engagement/stakeholders/detail.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "s": s,
            "quadrant": grid.QUADRANT_LABELS[contact.quadrant],
            "gap": services.gap_of(s),
            "contact": contact,
            "goals": list(s.goals.all()),
            "products": list(s.products.all()),
            "log": list(services.log_of(membership, stakeholder_id=s.pk, limit=LOG_ROWS)),
            "log_form": log_form
            or LogForm(
                membership=membership, initial={"occurred_on": timezone.localdate(), "kind": "meeting"}
            ),
            "history": entries_for(membership.organisation, s)[:HISTORY_ROWS],
        },
        status=422 if log_form is not None and log_form.errors else 200,
    )


@org_view
@require_GET
def stakeholder(request: HttpRequest, membership: Membership, stakeholder_id: int) -> HttpResponse:
    return _detail(request, membership, stakeholder_id)


@org_view
@require_http_methods(["GET", "POST"])
def stakeholder_edit(request: HttpRequest, membership: Membership, stakeholder_id: int) -> HttpResponse:
    require_writer(membership)
    s = services.get_stakeholder(membership, stakeholder_id)
    form = StakeholderForm(request.POST or None, membership=membership, current=s, initial=_initial(s))
    require_version(form)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_stakeholder(
                membership, current_user(request), s.pk, version=form.cleaned_data["version"], **form.values()
            )
        except (ValidationFailed, Conflict) as exc:
            _show(form, exc)
            if isinstance(exc, Conflict) and exc.field == "version":
                data = cast(QueryDict, form.data).copy()
                data["version"] = str(services.get_stakeholder(membership, s.pk).version)
                form.data = data
                form.add_error(
                    None, "Your edits are kept below. Check the history, then save again to apply them."
                )
        else:
            messages.success(request, "Stakeholder saved.")
            return redirect(_url(membership, "stakeholder", stakeholder_id=s.pk))
    return render(
        request,
        "engagement/stakeholders/form.html",
        {"membership": membership, "org": membership.organisation, "form": form, "stakeholder": s},
    )


@org_view
@require_POST
def stakeholder_archive(request: HttpRequest, membership: Membership, stakeholder_id: int) -> HttpResponse:
    require_writer(membership)
    services.get_stakeholder(membership, stakeholder_id)
    restore = request.POST.get("restore") == "1"
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        s = services.archive_stakeholder(
            membership, current_user(request), stakeholder_id, archived=not restore, version=version
        )
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{s.name} {'restored' if restore else 'archived'}.")
    return redirect(_url(membership, "stakeholder", stakeholder_id=stakeholder_id))


@org_view
@require_POST
def stakeholder_log(request: HttpRequest, membership: Membership, stakeholder_id: int) -> HttpResponse:
    require_writer(membership)
    s = services.get_stakeholder(membership, stakeholder_id)
    form = LogForm(request.POST, membership=membership)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.log_interaction(
                membership,
                current_user(request),
                occurred_on=data["occurred_on"],
                kind=data["kind"],
                summary=data["summary"],
                notes=data["notes"],
                stakeholder_ids=[s.pk],
                goal_ids=[int(g) for g in data["goals"]],
            )
        except ValidationFailed as exc:
            _show(form, exc)
        else:
            messages.success(request, "Interaction logged.")
            return redirect(_url(membership, "stakeholder", stakeholder_id=s.pk) + "#log")
    return _detail(request, membership, stakeholder_id, log_form=form)


ORG = "o/<slug:org_slug>/engagement/"
ONE = ORG + "stakeholders/<id:stakeholder_id>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "stakeholders/", stakeholders, name="stakeholders"),
    path(ORG + "stakeholders/map.svg", stakeholders_map_svg, name="stakeholders_map_svg"),
    path(ORG + "stakeholders/new/", stakeholder_create, name="stakeholder_create"),
    path(ONE, stakeholder, name="stakeholder"),
    path(ONE + "edit/", stakeholder_edit, name="stakeholder_edit"),
    path(ONE + "archive/", stakeholder_archive, name="stakeholder_archive"),
    path(ONE + "log/", stakeholder_log, name="stakeholder_log"),
]
