"""Delivery pages: sources. /o/<org>/delivery/sources/ (`delivery:sources`: the list and the "add" form),
a source's page (`delivery:source`: settings, the upload form, its imports with counts and bad records,
its history), its edit form (`delivery:source_edit`), archive/restore (`delivery:source_archive`) and
the upload (`delivery:source_import`, POST: a file or, for git, a repository path → a background job,
then the job's page). Views only parse forms and call delivery/services/sources.py.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.core.errors import Conflict, TooManyRequests, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, VersionField, posted_version, require_version
from truenorth.delivery.models import DeliverySource, ImportRun, SourceKind
from truenorth.delivery.services import sources
from truenorth.history.services import entries_for
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_writer
from truenorth.strategy.services import products_of, teams_of

FormErrors = (ValidationFailed, Conflict)
CATEGORY_HELP = "One state per line, as the source spells it (case does not matter)."


class SourceForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=SourceKind.choices)
    product_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Product")
    team_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Team")
    started = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=CATEGORY_HELP
    )
    done = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=CATEGORY_HELP)
    waiting = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=CATEGORY_HELP
    )
    production_environment = forms.CharField(max_length=60, initial="production")
    version = VersionField(required=False)

    def __init__(
        self, membership: Membership, *args: Any, source: DeliverySource | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        product = self.fields["product_id"]
        team = self.fields["team_id"]
        assert isinstance(product, forms.TypedChoiceField) and isinstance(team, forms.TypedChoiceField)
        live = list(products_of(membership))
        if source is not None and source.product is not None and source.product not in live:
            live.append(source.product)  # an archived product stays choosable for the source it is on
        product.choices = [("", "—"), *((p.pk, p.name) for p in live)]
        team.choices = [("", "—"), *((t.pk, t.name) for t in teams_of(membership))]

    def state_mapping(self, keep: dict[str, Any] | None = None) -> dict[str, Any]:
        """The three categories from the form; other categories the source had (API-set) are kept."""
        mapping = {k: v for k, v in (keep or {}).items() if k not in ("started", "done", "waiting")}
        for category in ("started", "done", "waiting"):
            states = [line.strip() for line in self.cleaned_data[category].splitlines() if line.strip()]
            if states:
                mapping[category] = states
        return mapping


class ImportForm(forms.Form):
    importer = forms.ChoiceField()
    file = forms.FileField(required=False, help_text="The CSV or JSON file (Jira export, events).")
    path = forms.CharField(
        required=False,
        max_length=1000,
        help_text="git: the repository, inside this organisation's directory.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        importer = self.fields["importer"]
        assert isinstance(importer, forms.ChoiceField)
        importer.choices = [(n, n) for n in sources.importer_names()]


def _source_url(membership: Membership, source_id: int) -> str:
    return reverse(
        "delivery:source", kwargs={"org_slug": membership.organisation.slug, "source_id": source_id}
    )


def _initial(source: DeliverySource) -> dict[str, Any]:
    mapping = source.state_mapping or {}
    return {
        "name": source.name,
        "kind": source.kind,
        "product_id": source.product_id,
        "team_id": source.team_id,
        "started": "\n".join(mapping.get("started", [])),
        "done": "\n".join(mapping.get("done", [])),
        "waiting": "\n".join(mapping.get("waiting", [])),
        "production_environment": source.production_environment,
        "version": source.version,
    }


def _directory(membership: Membership) -> str:
    try:
        return str(sources.organisation_directories(membership.organisation_id)[0])
    except (ValidationFailed, IndexError):
        return ""


@org_view
@require_http_methods(["GET", "POST"])
def source_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    writer = membership.has_role(Role.MEMBER)
    form = SourceForm(membership, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            source = sources.create_source(
                membership,
                current_user(request),
                name=data["name"],
                kind=data["kind"],
                product_id=data["product_id"],
                team_id=data["team_id"],
                state_mapping=form.state_mapping(),
                production_environment=data["production_environment"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"Delivery source “{source.name}” added. Import its data below.")
            return redirect(_source_url(membership, source.pk))
    rows = list(
        sources.sources_of(membership, include_archived=True).annotate(last_import=Max("imports__id"))
    )
    latest = ImportRun.objects.in_bulk([s.last_import for s in rows if s.last_import])
    return render(
        request,
        "delivery/sources/list.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "rows": [(s, latest.get(s.last_import)) for s in rows],
            "form": form,
            "writer": writer,
        },
        status=422 if form.is_bound and form.errors else 200,
    )


def _source_page(
    request: HttpRequest,
    membership: Membership,
    source: DeliverySource,
    *,
    import_form: ImportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    runs = list(sources.imports_of(membership, source.pk)[:50])
    return render(
        request,
        "delivery/sources/detail.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "source": source,
            "mapping": json.dumps(source.state_mapping or {}, indent=1, ensure_ascii=False),
            "runs": [(r, sources.run_summary(r)) for r in runs],
            "import_form": import_form or ImportForm(initial={"importer": _default_importer(source)}),
            "writer": membership.has_role(Role.MEMBER),
            "directory": _directory(membership),
            "history": entries_for(membership.organisation, source)[:50],
        },
        status=status,
    )


def _default_importer(source: DeliverySource) -> str:
    return {"git": "git", "jira": "jira", "github": "github", "azure": "azure"}.get(source.kind, "events")


@org_view
@require_http_methods(["GET"])
def source_detail(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    return _source_page(request, membership, sources.get_source(membership, source_id))


@org_view
@require_http_methods(["GET", "POST"])
def source_edit(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    source = sources.get_source(membership, source_id)
    require_writer(membership)  # readers get 403 for the form too, not a form they cannot save
    initial = _initial(source)
    form = SourceForm(membership, request.POST or None, initial=initial, source=source)
    if request.method == "POST":
        require_version(form)
        if form.is_valid():
            data = form.cleaned_data
            try:
                sources.update_source(
                    membership,
                    current_user(request),
                    source.pk,
                    version=data["version"],
                    name=data["name"],
                    kind=data["kind"],
                    product_id=data["product_id"],
                    team_id=data["team_id"],
                    state_mapping=form.state_mapping(source.state_mapping),
                    production_environment=data["production_environment"],
                )
            except FormErrors as exc:
                apply_error(form, exc)
            else:
                messages.success(request, f"Delivery source “{data['name']}” saved.")
                return redirect(_source_url(membership, source.pk))
    return render(
        request,
        "delivery/sources/edit.html",
        {"membership": membership, "org": membership.organisation, "source": source, "form": form},
        status=422 if form.is_bound and form.errors else 200,
    )


@org_view
@require_POST
def source_archive(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    source = sources.get_source(membership, source_id)
    version = posted_version(request.POST)
    if version is None:
        messages.error(request, MISSING_VERSION)
        return redirect(_source_url(membership, source.pk))
    archived = request.POST.get("archived", "true") != "false"
    try:
        sources.archive_source(
            membership, current_user(request), source.pk, archived=archived, version=version
        )
    except FormErrors as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{source.name}” {'archived' if archived else 'restored'}.")
    return redirect(_source_url(membership, source.pk))


@org_view
@require_POST
def source_import(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    """The upload form: a file (or a repository path for git) → a background job, then its page."""
    source = sources.get_source(membership, source_id)
    form = ImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            data = None
            if upload is not None:
                sources.check_file_size(upload.size)
                data = upload.read()
            job = sources.submit_import(
                membership,
                current_user(request),
                source.pk,
                importer=form.cleaned_data["importer"],
                data=data,
                file_name=(upload.name if upload is not None else "") or "",
                path=form.cleaned_data["path"] or None,
            )
        except (ValidationFailed, TooManyRequests) as exc:
            apply_error(form, exc)
        else:
            return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))
    return _source_page(request, membership, source, import_form=form, status=422)


ORG = "o/<slug:org_slug>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "delivery/sources/", source_list, name="sources"),
    path(ORG + "delivery/sources/<id:source_id>/", source_detail, name="source"),
    path(ORG + "delivery/sources/<id:source_id>/edit/", source_edit, name="source_edit"),
    path(ORG + "delivery/sources/<id:source_id>/archive/", source_archive, name="source_archive"),
    path(ORG + "delivery/sources/<id:source_id>/import/", source_import, name="source_import"),
]
