"""API: Value — the measure catalogue, measures, observations (single, batch, file import, corrections),
export, Key Value Area balance, investment and return, data sources and refresh. Every rule lives in
measures.services, measures.imports, measures.sources and measures.refresh; this module translates JSON
in and out only (its schemas: measures.schemas)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import File, Query, Router, Status, UploadedFile
from ninja.decorators import decorate_view

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ErrorOut, ObjectId
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.measures import imports, jobs, maths, services, sources
from truenorth.measures.models import (
    CatalogueMeasure,
    DataSource,
    Investment,
    Measure,
    MeasureSource,
    Observation,
)
from truenorth.measures.schemas import (
    AdoptIn,
    BatchIn,
    BatchOut,
    CatalogueOut,
    CorrectionIn,
    DataSourceIn,
    DataSourceOut,
    DataSourcePatch,
    ImportPreviewOut,
    InvestmentIn,
    InvestmentOut,
    KvaBalanceOut,
    MeasureExportFilter,
    MeasureFilter,
    MeasureImportFilter,
    MeasureIn,
    MeasureListFilter,
    MeasureOut,
    MeasurePatch,
    MeasureVersionQuery,
    ObservationFilter,
    ObservationIn,
    ObservationOut,
    PeriodFilter,
    ROIOut,
    SourceTestOut,
    ValueMeasureIn,
    ValueMeasureOut,
    aware,
)
from truenorth.orgs import pagecache
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.scoping import scope

router = Router(tags=["value"])

UPLOAD_OVERHEAD = 64 * 1024  # multipart framing around an uploaded file
ROW = re.compile(r"^rows\[(\d+)\]")


# --- helpers --------------------------------------------------------------------------------------


def _user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "name": user.name}


def _measure_out(x: Measure, now: dt.datetime) -> dict[str, Any]:
    """A measure annotated by services.with_latest."""
    value = getattr(x, "latest_value", None)
    observed_at = getattr(x, "latest_at", None)
    return {
        "id": x.pk,
        "product": x.product_id,
        "name": x.name,
        "kva": x.kva,
        "unit": x.unit,
        "direction": x.direction,
        "owner": _user_ref(x.owner),
        "cadence_days": x.cadence_days,
        "description": x.description,
        "source": x.source,
        "data_source": x.data_source_id,
        "query": x.query,
        "formula": x.formula,
        "baseline": x.baseline,
        "target": x.target,
        "target_date": x.target_date,
        "catalogue_key": x.catalogue_key,
        "created_at": x.created_at,
        "archived_at": x.archived_at,
        "version": x.version,
        "latest_value": value,
        "latest_observed_at": observed_at,
        "stale": maths.is_stale(observed_at, x.cadence_days, now),
        "last_refreshed_at": x.last_refreshed_at,
        "last_refresh_error": x.last_refresh_error,
    }


def _observation_out(o: Observation) -> dict[str, Any]:
    return {
        "id": o.pk,
        "measure": o.measure_id,
        "value": o.value,
        "observed_at": o.observed_at,
        "source": o.source,
        "note": o.note,
        "batch": o.batch_id,
        "supersedes": o.supersedes_id,
        "superseded": o.superseded,
        "recorded_by": o.recorded_by.email if o.recorded_by else None,
        "recorded_at": o.recorded_at,
    }


def _investment_out(i: Investment) -> dict[str, Any]:
    return {
        "id": i.pk,
        "product": i.product_id,
        "goal": i.goal_id,
        "period_start": i.period_start,
        "period_end": i.period_end,
        "amount": i.amount,
        "people": i.people,
        "daily_rate": i.daily_rate,
        "currency": i.currency,
        "note": i.note,
        "created_at": i.created_at,
        "created_by": i.created_by.email if i.created_by else None,
    }


def _data_source_out(m: Membership, d: DataSource, in_use: int) -> dict[str, Any]:
    out = sources.describe(d)
    if not m.has_role(Role.ADMIN):
        out["config"] = {}
    return {**out, "measures": in_use}


def _measure_detail(m: Membership, measure_id: int) -> dict[str, Any]:
    measure = services.with_latest(
        services.measures_of(m, include_archived=True).filter(pk=measure_id)
    ).first()
    if measure is None:
        raise NotFound("No such measure.")
    return _measure_out(measure, timezone.now())


def _row_field(name: str) -> str:
    """`rows[3].measure_id` as the request names it: `observations.3.measure` (like schema errors)."""
    name = ROW.sub(lambda match: f"observations.{match.group(1)}", name)
    return name.removesuffix("_id")


def _batch_fields(exc: ValidationFailed) -> ValidationFailed:
    errors = {_row_field(name): message for name, message in exc.errors.items()}
    field = _row_field(exc.field) if exc.field else None
    message = re.sub(r"rows\[(\d+)\]\.(\w+?)(_id)?:", r"observations.\1.\2:", exc.message)
    return ValidationFailed(message, field=field, errors=errors)


# --- catalogue ------------------------------------------------------------------------------------


@router.get(
    "/{slug}/measure-catalogue",
    response={200: list[CatalogueOut], **READ_ERRORS},
    summary="The measure catalogue: EBM example measures per Key Value Area",
)
def list_catalogue(request: HttpRequest, slug: str) -> list[CatalogueMeasure]:
    m, _ = scope(request, slug)
    return list(services.catalogue_of(m))  # CatalogueOut reads the entries' fields


# --- measures -------------------------------------------------------------------------------------


@router.get("/{slug}/measures", response={200: list[MeasureOut], **READ_ERRORS}, summary="List measures")
def list_measures(request: HttpRequest, slug: str, filters: Query[MeasureFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return pagecache.cached_api(request, m, lambda: _measures(m, filters))


def _measures(m: Membership, filters: MeasureFilter) -> list[dict[str, Any]]:
    qs = services.with_latest(
        services.measures_of(
            m, product_id=filters.product, kva=filters.kva, include_archived=filters.include_archived
        )
    )
    now = timezone.now()
    if filters.stale is None:
        rows = list(qs[filters.offset : filters.offset + filters.limit])
    else:
        wanted = [
            x
            for x in qs
            if maths.is_stale(getattr(x, "latest_at", None), x.cadence_days, now) == filters.stale
        ]
        rows = wanted[filters.offset : filters.offset + filters.limit]
    return [_measure_out(x, now) for x in rows]


@router.post("/{slug}/measures", response={201: MeasureOut, **ERRORS}, summary="Create a custom measure")
def create_measure(request: HttpRequest, slug: str, payload: MeasureIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    measure = services.create_measure(
        m,
        user,
        name=payload.name,
        kva=payload.kva,
        product_id=payload.product,
        unit=payload.unit,
        direction=payload.direction,
        owner_id=payload.owner,
        cadence_days=payload.cadence_days,
        description=payload.description,
        source=payload.source,
        data_source_id=payload.data_source,
        query=payload.query,
        formula=payload.formula,
        baseline=payload.baseline,
        target=payload.target,
        target_date=payload.target_date,
    )
    return Status(201, _measure_detail(m, measure.pk))


@router.post(
    "/{slug}/measures/adopt",
    response={201: MeasureOut, **ERRORS},
    summary="Adopt a catalogue measure for a product",
)
def adopt_measure(request: HttpRequest, slug: str, payload: AdoptIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    measure = services.adopt_catalogue_measure(m, user, payload.catalogue, payload.product)
    return Status(201, _measure_detail(m, measure.pk))


EXPORT_DOC = {
    "responses": {
        "200": {
            "description": "CSV by default (text/csv); `?format=json` answers application/json.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    }
}


def _export(m: Membership, measure_id: int | None, fmt: str) -> HttpResponse:
    text = services.export_observations(m, measure_id, fmt)
    if fmt == "json":
        return HttpResponse(text, content_type="application/json; charset=utf-8")
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    name = f"measure-{measure_id}" if measure_id else "measures"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@router.get(
    "/{slug}/measures/export",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="Export every measure and its observations as CSV or JSON",
    openapi_extra=EXPORT_DOC,
)
def export_measures(request: HttpRequest, slug: str, filters: Query[MeasureExportFilter]) -> HttpResponse:
    m, _ = scope(request, slug)
    return _export(m, None, filters.format)


@router.get(
    "/{slug}/measures/{measure_id}",
    response={200: MeasureOut, **READ_ERRORS},
    summary="Get a measure with its latest value, staleness and refresh status",
)
def get_measure(request: HttpRequest, slug: str, measure_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _measure_detail(m, measure_id)


@router.patch(
    "/{slug}/measures/{measure_id}", response={200: MeasureOut, **ERRORS}, summary="Change a measure"
)
def update_measure(
    request: HttpRequest, slug: str, measure_id: ObjectId, payload: MeasurePatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.get_measure(m, measure_id)  # an unknown measure is a 404 before any field is looked at
    given = payload.model_dump(exclude={"version"}, exclude_unset=True)
    renamed = {"owner": "owner_id", "data_source": "data_source_id", "product": "product_id"}
    fields: dict[str, Any] = {}
    clear: list[str] = []
    for name, value in given.items():
        key = renamed.get(name, name)
        if value is not None:
            fields[key] = value
        elif key in services.CLEARABLE:
            clear.append(key)
        else:
            raise ValidationFailed("Must not be null.", field=name)
    services.update_measure(m, user, measure_id, version=payload.version, clear=clear, **fields)
    return _measure_detail(m, measure_id)


@router.post(
    "/{slug}/measures/{measure_id}/archive",
    response={200: MeasureOut, **ERRORS},
    summary="Archive a measure (kept with its observations)",
)
def archive_measure(
    request: HttpRequest, slug: str, measure_id: ObjectId, filters: Query[MeasureVersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.archive_measure(m, user, measure_id, archived=True, version=filters.version)
    return _measure_detail(m, measure_id)


@router.post(
    "/{slug}/measures/{measure_id}/restore",
    response={200: MeasureOut, **ERRORS},
    summary="Restore an archived measure",
)
def restore_measure(
    request: HttpRequest, slug: str, measure_id: ObjectId, filters: Query[MeasureVersionQuery]
) -> dict[str, Any]:
    m, user = scope(request, slug)
    services.archive_measure(m, user, measure_id, archived=False, version=filters.version)
    return _measure_detail(m, measure_id)


@router.get(
    "/{slug}/measures/{measure_id}/export",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="Export one measure and its observations as CSV or JSON",
    openapi_extra=EXPORT_DOC,
)
def export_measure(
    request: HttpRequest, slug: str, measure_id: ObjectId, filters: Query[MeasureExportFilter]
) -> HttpResponse:
    m, _ = scope(request, slug)
    services.get_measure(m, measure_id)
    return _export(m, measure_id, filters.format)


@router.post(
    "/{slug}/measures/{measure_id}/refresh",
    response={202: JobOut, **SUBMIT_ERRORS},
    summary="Refresh a SQL or computed measure now (runs its query or formula as a background job)",
    description="202 with the job (`Location`: GET it until `status` is succeeded or failed; `result` "
    "says what was ingested, `error` why it failed; a failed refresh keeps every observation and is "
    "shown on the measure). 422 for a measure that is not SQL or computed; 429 when the organisation "
    "already has TRUENORTH_JOBS_PER_ORGANISATION jobs queued or running.",
)
def refresh_measure(
    request: HttpRequest, response: HttpResponse, slug: str, measure_id: ObjectId
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    measure = services.get_measure(m, measure_id)
    return accepted(response, jobs.submit_refresh(m, user, measure))


# --- observations ---------------------------------------------------------------------------------


@router.get(
    "/{slug}/measures/{measure_id}/observations",
    response={200: list[ObservationOut], **READ_ERRORS},
    summary="Observations of a measure, newest first (corrected ones hidden unless asked)",
)
def list_observations(
    request: HttpRequest, slug: str, measure_id: ObjectId, filters: Query[ObservationFilter]
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    qs = services.observations_of(
        m,
        measure_id,
        include_superseded=filters.include_superseded,
        since=aware(filters.since),
        until=aware(filters.until),
    ).select_related("recorded_by")
    return [_observation_out(o) for o in qs[filters.offset : filters.offset + filters.limit]]


@router.post(
    "/{slug}/measures/{measure_id}/observations",
    response={201: ObservationOut, **ERRORS},
    summary="Record one observation of a measure",
)
def add_observation(
    request: HttpRequest, slug: str, measure_id: ObjectId, payload: ObservationIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    observation = services.add_observation(
        m,
        user,
        measure_id,
        payload.value,
        observed_at=payload.observed_at,
        note=payload.note,
        source=MeasureSource.API,
    )
    return Status(201, _observation_out(observation))


@router.post(
    "/{slug}/observations/batch",
    response={200: BatchOut, 201: BatchOut, **ERRORS},
    summary="Record a batch of observations: all or none, idempotent with a key",
    description="201 when saved; 200 with `replayed: true` when the idempotency key was already used "
    "for the same rows (nothing is saved twice); 409 when it was used for different rows, or when "
    "another request stored a value at the same measure and time meanwhile (nothing is saved). A bad "
    "row saves nothing and is named, e.g. `observations.3.value`.",
)
def add_batch(request: HttpRequest, slug: str, payload: BatchIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    rows = [
        services.ObservationIn(
            measure_id=row.measure, value=row.value, observed_at=row.observed_at, note=row.note
        )
        for row in payload.observations
    ]
    try:
        result = services.add_observations(
            m, user, rows, source=MeasureSource.API, idempotency_key=payload.idempotency_key
        )
    except ValidationFailed as exc:
        raise _batch_fields(exc) from None
    body = {
        "batch": result.batch.pk,
        "idempotency_key": result.batch.idempotency_key,
        "created": result.created,
        "rows": result.batch.rows,
        "replayed": result.replayed,
    }
    return Status(200 if result.replayed else 201, body)


@router.post(
    "/{slug}/observations/{observation_id}/correct",
    response={201: ObservationOut, **ERRORS},
    summary="Correct an observation: a new one supersedes it (both are kept)",
)
def correct_observation(
    request: HttpRequest, slug: str, observation_id: ObjectId, payload: CorrectionIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    observation = services.correct_observation(m, user, observation_id, payload.value, note=payload.note)
    return Status(201, _observation_out(observation))


# --- file import ---------------------------------------------------------------------------------


def _row_errors(errors: list[imports.RowError]) -> list[dict[str, Any]]:
    return [{"line": e.line, "field": e.field, "message": e.message} for e in errors]


def _text_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _limit_upload(run: Any) -> Any:
    """Refuse (413) an upload whose declared length is over the import limit before its body is read."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = imports.max_file_bytes()
        if length > limit + UPLOAD_OVERHEAD:
            body = {
                "detail": f"The upload is {imports.size_text(length)}; a file may be at most {imports.size_text(limit)}.",
                "errors": [{"field": "file", "message": "The file is too large."}],
            }
            response = HttpResponse(json.dumps(body), status=413, content_type="application/json")
            response["Connection"] = "close"  # the unread body must not be taken for the next request
            return response
        return run(request, *args, **kwargs)

    return wrapped


@router.post(
    "/{slug}/observations/import",
    response={200: ImportPreviewOut, 202: JobOut, **SUBMIT_ERRORS, 413: ErrorOut},
    summary="Import observations from a CSV or Excel file as a background job (?preview=true: check only)",
    description="Multipart upload, field `file`: columns `measure` (name or id), `observed_at`, `value` "
    "and optionally `note`. With `preview=true` nothing is saved: the first "
    f"{imports.PREVIEW_CHECK_ROWS:,} rows are checked at once (200; `more` says the file has more). "
    "Otherwise the file is checked (size, format, header) and imported by a background job: 202 with the "
    "job (`Location`: GET it until `status` is succeeded or failed); its `result` counts the rows saved, "
    "skipped and rejected and lists the bad rows by line (the header is line 1). A retried import with the "
    "same `idempotency_key` saves nothing twice and resumes an interrupted one. 413 for a file over "
    "TRUENORTH_IMPORT_MAX_FILE_BYTES; 422 for one over the row, cell or unpacked-size limits; 429 when the "
    "organisation already has TRUENORTH_JOBS_PER_ORGANISATION jobs queued or running.",
)
@decorate_view(_limit_upload)
def import_observations(
    request: HttpRequest,
    response: HttpResponse,
    slug: str,
    filters: Query[MeasureImportFilter],
    file: UploadedFile | None = File(None, description="The CSV or .xlsx file."),  # noqa: B008
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    services.require_writer(m)  # a preview only makes sense to someone who may import
    if file is None:
        raise ValidationFailed("Upload the file as multipart form data in the field `file`.", field="file")
    imports.check_file_size(file.size)
    name = file.name or "upload.csv"
    content = file.read()
    if filters.preview:
        preview = imports.preview_import(m, name, content)
        return Status(
            200,
            {
                "total": preview.total,
                "valid": preview.valid,
                "invalid": preview.invalid,
                "more": preview.more,
                "rows": [
                    {
                        "line": r.line,
                        "measure": r.measure,
                        "observed_at": _text_cell(r.observed_at),
                        "value": _text_cell(r.value),
                        "note": r.note,
                    }
                    for r in preview.rows
                ],
                "errors": _row_errors(preview.errors),
                "measures": preview.measures,
            },
        )
    job = imports.submit_import(m, user, name, content, idempotency_key=filters.idempotency_key)
    return accepted(response, job)


# --- balance, investment and return ---------------------------------------------------------------


@router.get(
    "/{slug}/products/{product_id}/kva-balance",
    response={200: KvaBalanceOut, **READ_ERRORS},
    summary="Live measures per Key Value Area of a product, and the areas it cannot see",
)
def kva_balance(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    counts = services.kva_balance(m, product_id)
    missing = [kva for kva, n in counts.items() if n == 0]
    return {"product": product_id, "counts": counts, "missing": missing, "balanced": not missing}


@router.get(
    "/{slug}/products/{product_id}/investments",
    response={200: list[InvestmentOut], **READ_ERRORS},
    summary="Investment in a product, newest period first",
)
def list_investments(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[MeasureListFilter]
) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    qs = services.investments_of(m, product_id).select_related("created_by")
    return [_investment_out(i) for i in qs[filters.offset : filters.offset + filters.limit]]


@router.post(
    "/{slug}/products/{product_id}/investments",
    response={201: InvestmentOut, **ERRORS},
    summary="Record investment in a product: an amount, or people x daily rate over a period",
)
def add_investment(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: InvestmentIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    investment = services.add_investment(
        m,
        user,
        product_id,
        period_start=payload.period_start,
        period_end=payload.period_end,
        amount=payload.amount,
        people=payload.people,
        daily_rate=payload.daily_rate,
        currency=payload.currency,
        goal_id=payload.goal,
        note=payload.note,
    )
    return Status(201, _investment_out(investment))


@router.put(
    "/{slug}/products/{product_id}/value-measure",
    response={200: ValueMeasureOut, **ERRORS},
    summary="Choose the measure of value a product delivers (null: none)",
)
def set_value_measure(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: ValueMeasureIn
) -> dict[str, Any]:
    m, user = scope(request, slug)
    settings = services.set_value_measure(m, user, product_id, payload.value_measure)
    return {"product": product_id, "value_measure": settings.value_measure_id}


@router.get(
    "/{slug}/products/{product_id}/return",
    response={200: ROIOut, **READ_ERRORS},
    summary="Return on investment: investment in a period against the change of the value measure",
)
def return_on_investment(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[PeriodFilter]
) -> dict[str, Any]:
    m, _ = scope(request, slug)
    roi = services.return_on_investment(m, product_id, since=filters.since, until=filters.until)
    vm = roi.value_measure
    return {
        "product": product_id,
        "since": roi.since,
        "until": roi.until,
        "currency": roi.currency,
        "invested": roi.invested,
        "value_measure": (
            {"id": vm.pk, "name": vm.name, "unit": vm.unit, "direction": vm.direction} if vm else None
        ),
        "value_start": roi.value_start,
        "value_end": roi.value_end,
        "value_delta": roi.value_delta,
        "improvement": roi.improvement,
        "delta_per_unit": roi.delta_per_unit,
        "series": [{"period": p.period, "invested": p.invested, "value": p.value} for p in roi.series],
        "reason": roi.reason,
    }


# --- data sources ---------------------------------------------------------------------------------


def _in_use(source_ids: list[int]) -> dict[int, int]:
    rows = (
        Measure.objects.filter(data_source_id__in=source_ids)
        .values_list("data_source_id")
        .annotate(n=Count("id"))
        .values_list("data_source_id", "n")
    )
    return dict(rows)


def _source_detail(m: Membership, source: DataSource) -> dict[str, Any]:
    return _data_source_out(m, source, _in_use([source.pk]).get(source.pk, 0))


@router.get(
    "/{slug}/data-sources",
    response={200: list[DataSourceOut], **READ_ERRORS},
    summary="Data sources SQL measures query (settings shown to admins, password masked)",
)
def list_data_sources(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    rows = sources.data_sources_of(m)
    counts = _in_use([d.pk for d in rows])
    return [_data_source_out(m, d, counts.get(d.pk, 0)) for d in rows]


@router.post(
    "/{slug}/data-sources",
    response={201: DataSourceOut, **ERRORS},
    summary="Add a data source (admins; its settings are stored encrypted)",
)
def create_data_source(request: HttpRequest, slug: str, payload: DataSourceIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    source = sources.create_data_source(
        m,
        user,
        name=payload.name,
        kind=payload.kind,
        config=payload.config,
        timeout_seconds=payload.timeout_seconds,
    )
    return Status(201, _source_detail(m, source))


@router.patch(
    "/{slug}/data-sources/{source_id}",
    response={200: DataSourceOut, **ERRORS},
    summary="Change a data source (admins; a masked password keeps the stored one)",
)
def update_data_source(
    request: HttpRequest, slug: str, source_id: ObjectId, payload: DataSourcePatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    sources.get_data_source(m, source_id)
    given = payload.model_fields_set
    for name in ("name", "config", "timeout_seconds"):
        if name in given and getattr(payload, name) is None:
            raise ValidationFailed("Must not be null.", field=name)
    source = sources.update_data_source(
        m,
        user,
        source_id,
        name=payload.name,
        config=payload.config,
        timeout_seconds=payload.timeout_seconds,
        version=payload.version,
    )
    return _source_detail(m, source)


@router.delete(
    "/{slug}/data-sources/{source_id}",
    response={204: None, **ERRORS},
    summary="Remove a data source (admins; refused while a measure uses it)",
)
def delete_data_source(request: HttpRequest, slug: str, source_id: ObjectId) -> Status[None]:
    m, user = scope(request, slug)
    sources.delete_data_source(m, user, source_id)
    return Status(204, None)


@router.post(
    "/{slug}/data-sources/{source_id}/test",
    response={200: SourceTestOut, **ERRORS},
    summary="Test a data source: connect and run a trivial read-only query (admins)",
)
def test_data_source(request: HttpRequest, slug: str, source_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    try:
        detail, ok = sources.test_data_source(m, source_id), True
    except sources.QueryFailed as exc:
        detail, ok = exc.message, False
    source = sources.get_data_source(m, source_id)
    return {"ok": ok, "detail": detail, "last_checked_at": source.last_checked_at}


test_data_source.__test__ = False  # type: ignore[attr-defined]  # an endpoint, not a pytest test
