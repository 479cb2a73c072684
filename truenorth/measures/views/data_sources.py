"""Data source pages (admins: list, create, edit, test, delete; members see names and kinds), a new
SQL measure, and a SQL measure's query editor with a preview run as a background job.

Views only parse forms and call measures.sources, measures.services and measures.jobs; every rule is
checked there. A stored PostgreSQL password is never rendered: pages show `sources.public_config`
(the address with its password masked), and an edit that keeps the mask keeps the stored password.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from truenorth.jobs import services as job_services
from truenorth.jobs.models import JobStatus
from truenorth.measures import jobs, refresh, services, sources
from truenorth.measures import source_forms as f
from truenorth.measures.models import DataSource, DataSourceKind, Measure, MeasureSource, ObservationBatch
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_role
from truenorth.strategy import services as strategy_services

FormErrors = (ValidationFailed, Conflict)


def _form_error(form: f.DataSourceForm, exc: ValidationFailed | Conflict) -> None:
    """A service error on the data source form: `config.tables.events` is the form's `tables` field."""
    field = exc.field or ""
    if field.startswith("config."):
        exc = copy.copy(exc)
        exc.field = field.split(".")[1]
    apply_error(form, exc)


def _sources_url(membership: Membership) -> str:
    return reverse("measures:sources", kwargs={"org_slug": membership.organisation.slug})


def _source_url(membership: Membership, source_id: int) -> str:
    return reverse(
        "measures:source", kwargs={"org_slug": membership.organisation.slug, "source_id": source_id}
    )


def _directory(membership: Membership) -> str:
    try:
        return str(sources.organisation_directory(membership.organisation))
    except ValidationFailed as exc:
        return exc.message


def _source_choices(membership: Membership) -> f.Choices:
    return [
        (str(s.pk), f"{s.name} ({s.get_kind_display().split(' (')[0]})")
        for s in sources.data_sources_of(membership)
    ]


def _in_use(source: DataSource) -> list[Measure]:
    return list(source.measures.order_by("name", "id")[:20])


# --- the list, and adding a source ----------------------------------------------------------------


@org_view
@require_http_methods(["GET", "POST"])
def source_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    is_admin = membership.has_role(Role.ADMIN)
    form = f.DataSourceForm(request.POST or None)
    if request.method == "POST":
        require_role(membership, Role.ADMIN)
        if form.is_valid():
            data = form.cleaned_data
            try:
                source = sources.create_data_source(
                    membership,
                    current_user(request),
                    name=data["name"],
                    kind=data["kind"],
                    config=form.config(),
                    timeout_seconds=data["timeout_seconds"],
                )
            except FormErrors as exc:
                _form_error(form, exc)
            else:
                messages.success(request, f"Data source “{source.name}” added. Test it to check it opens.")
                return redirect(_source_url(membership, source.pk))
    rows = sources.data_sources_of(membership)
    return render(
        request,
        "measures/sources.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "is_admin": is_admin,
            "rows": [(s, sources.public_config(s) if is_admin else {}) for s in rows],
            "form": form,
            "directory": _directory(membership) if is_admin else "",
        },
        status=422 if form.is_bound and form.errors else 200,
    )


# --- one source: edit, test, delete ---------------------------------------------------------------


def _edit_initial(source: DataSource) -> dict[str, Any]:
    shown = sources.public_config(source)  # never the stored password
    directory = str(sources.organisation_directory(source.organisation_id))

    def relative(path: str) -> str:
        return path[len(directory) + 1 :] if path.startswith(directory + "/") else path

    tables = shown.get("tables") or {}
    params = shown.get("params") or {}
    return {
        "name": source.name,
        "kind": source.kind,
        "timeout_seconds": source.timeout_seconds,
        "version": source.version,
        "dsn": shown.get("dsn", ""),
        "path": relative(str(shown.get("path", ""))),
        "files": "\n".join(relative(str(p)) for p in shown.get("files", [])),
        "url": shown.get("url", ""),
        "master": shown.get("master", ""),
        "tables": "\n".join(f"{name} = {relative(str(p))}" for name, p in tables.items()),
        "username": shown.get("username", ""),
        "database": shown.get("database", ""),
        "driver": shown.get("driver", ""),
        "params": "\n".join(f"{key} = {value}" for key, value in params.items()),
    }


def _source_page(
    request: HttpRequest,
    membership: Membership,
    source: DataSource,
    form: f.DataSourceForm,
    *,
    test: tuple[bool, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "measures/source.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "source": source,
            "shown": sources.public_config(source),
            "form": form,
            "directory": _directory(membership),
            "measures": _in_use(source),
            "test": test,
            "postgres": source.kind == DataSourceKind.POSTGRES,
            "duckdb": source.kind == DataSourceKind.DUCKDB,
            "kind_fields": f.KIND_FIELDS.get(source.kind, ()),
            "setting_fields": f.SETTING_FIELDS,
            "tested": sources.tested_on_real_engine(source.kind),
            "dialect": sources.dialect_of(source),
        },
        status=status,
    )


@org_view
@require_http_methods(["GET", "POST"])
def source_detail(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    """An admin's page of one source: its settings (password masked), the measures using it, the edit
    form, test and delete. Members get a 403 (they see names and kinds in the list)."""
    require_role(membership, Role.ADMIN)
    source = sources.get_data_source(membership, source_id)
    initial = _edit_initial(source)
    if request.method != "POST":
        return _source_page(request, membership, source, f.DataSourceForm(initial=initial, editing=True))
    form = f.DataSourceForm(request.POST, initial=initial, editing=True)
    form.fields["version"].required = True
    form.fields["kind"].required = False  # the kind is fixed once created
    if form.is_valid():
        data = form.cleaned_data
        data["kind"] = source.kind
        try:
            updated = sources.update_data_source(
                membership,
                current_user(request),
                source.pk,
                name=data["name"],
                config=form.config() if form.config_changed() else None,
                timeout_seconds=data["timeout_seconds"],
                version=data["version"],
            )
        except FormErrors as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Data source “{updated.name}” saved.")
            return redirect(_source_url(membership, source.pk))
    source.refresh_from_db()
    return _source_page(request, membership, source, form, status=422)


@org_view
@require_POST
def source_test(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    """Connect and run a trivial query; the page shows the one-line result or the error."""
    require_role(membership, Role.ADMIN)
    source = sources.get_data_source(membership, source_id)
    try:
        outcome = (True, sources.test_data_source(membership, source.pk))
    except ValidationFailed as exc:
        outcome = (False, exc.message)
    source.refresh_from_db()
    form = f.DataSourceForm(initial=_edit_initial(source), editing=True)
    return _source_page(request, membership, source, form, test=outcome)


@org_view
@require_POST
def source_delete(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    require_role(membership, Role.ADMIN)
    source = sources.get_data_source(membership, source_id)
    try:
        sources.delete_data_source(membership, current_user(request), source.pk)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect(_source_url(membership, source.pk))
    messages.success(request, f"Data source “{source.name}” removed.")
    return redirect(_sources_url(membership))


# --- a new SQL measure ----------------------------------------------------------------------------


@org_view
@require_http_methods(["GET", "POST"])
def sql_measure_add(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    services.require_query_author(membership)
    product = strategy_services.get_product(membership, product_id)
    form = f.SqlMeasureForm(request.POST or None, sources=_source_choices(membership))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            measure = services.create_measure(
                membership,
                current_user(request),
                name=data["name"],
                kva=data["kva"],
                product_id=product.pk,
                unit=data["unit"],
                direction=data["direction"],
                owner_id=current_user(request).pk,
                cadence_days=data["cadence_days"],
                source=MeasureSource.SQL,
                data_source_id=int(data["data_source"]),
                query=data["query"],
                target=data["target"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"“{measure.name}” created. Preview its query or refresh it now.")
            return redirect(reverse("measures:measure", args=(membership.organisation.slug, measure.pk)))
    return render(
        request,
        "measures/sql_measure_new.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "form": form,
            "has_sources": bool(form.fields["data_source"].choices),  # type: ignore[attr-defined]
        },
        status=422 if form.is_bound and form.errors else 200,
    )


# --- a SQL measure's query: save, or preview as a job ---------------------------------------------


@org_view
@require_POST
def measure_query(request: HttpRequest, membership: Membership, measure_id: int) -> HttpResponse:
    """The query editor: "Save" changes the measure's data source and query (with its version);
    "Preview" runs the typed query as a background job and comes back here with its first rows."""
    services.require_query_author(membership)
    measure = services.get_measure(membership, measure_id)
    url = reverse("measures:measure", args=(membership.organisation.slug, measure.pk))
    form = f.QueryForm(request.POST, sources=_source_choices(membership))
    preview = request.POST.get("action") == "preview"
    if not preview:
        form.fields["version"].required = True
    if form.is_valid():
        data = form.cleaned_data
        try:
            if preview:
                job = jobs.submit_preview(
                    membership, current_user(request), measure, int(data["data_source"]), data["query"]
                )
                return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))
            services.update_measure(
                membership,
                current_user(request),
                measure.pk,
                version=data["version"],
                data_source_id=int(data["data_source"]),
                query=data["query"],
            )
        except (*FormErrors, TooManyRequests) as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Query saved. Refresh the measure to fetch its values.")
            return redirect(f"{url}#query")
    from truenorth.measures.views import measures  # the measure page (it imports this module)

    return measures._measure_page(request, membership, measure.pk, query_form=form, status=422)


def _preview_of(request: HttpRequest, membership: Membership, measure: Measure) -> Any:
    raw = request.GET.get("preview", "")
    if not raw.isdigit():
        return None
    try:
        job = job_services.get_job(membership, int(raw))
    except NotFound:
        return None
    if job.kind != jobs.PREVIEW_KIND or job.params.get("measure_id") != measure.pk:
        return None
    return job


def sql_context(
    request: HttpRequest, membership: Membership, measure: Measure, query_form: f.QueryForm | None = None
) -> dict[str, Any]:
    """What the measure page shows of a SQL (or computed) measure: its source, query, schedule, last
    refresh, and for admins the query editor with the rows of a preview job."""
    if measure.source not in services.FED_SOURCES:
        return {"fed": False}
    last_batch = (
        ObservationBatch.objects.filter(observations__measure=measure, source=measure.source)
        .order_by("-created_at", "-id")
        .values("created_at", "rows")
        .first()
    )
    context: dict[str, Any] = {
        "fed": True,
        "next_due": refresh.next_due(measure, timezone.now()),
        "refresh_minutes": jobs.REFRESH_EVERY_MINUTES,
        "last_batch": last_batch,
        "is_query_author": membership.role in (Role.ADMIN, Role.OWNER),
    }
    if measure.source != MeasureSource.SQL or not context["is_query_author"]:
        return context
    preview = _preview_of(request, membership, measure)
    if query_form is None:
        query = measure.query
        source_id = measure.data_source_id
        if preview is not None:  # the query that was previewed, to save or change further
            query = str(preview.params.get("query", query))
            source_id = preview.params.get("data_source_id", source_id)
        query_form = f.QueryForm(
            initial={"data_source": str(source_id or ""), "query": query, "version": measure.version},
            sources=_source_choices(membership),
        )
    done = preview is not None and preview.status == JobStatus.SUCCEEDED
    table = sources.unseal(preview.result.get("table")) if done and preview is not None else None
    context.update(
        query_form=query_form,
        preview=preview,
        preview_done=done,
        preview_columns=(table or {}).get("columns", []),
        preview_rows=(table or {}).get("rows", []),
    )
    return context
