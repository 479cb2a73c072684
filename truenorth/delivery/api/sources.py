"""Delivery API: sources (CRUD, archive) and their imports (a file or a repository path → a background
job). Every rule lives in delivery/services/sources.py."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Router, Schema, Status, UploadedFile
from ninja.decorators import decorate_view
from pydantic import Field

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ErrorOut, ObjectId, StrictSchema
from truenorth.delivery.models import DeliverySource, SourceKind
from truenorth.delivery.services import sources
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope
from truenorth.orgs.services import require_writer

router = Router(tags=["delivery"])

VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
UPLOAD_OVERHEAD = 64 * 1024  # multipart framing around an uploaded file
MAPPING_HELP = (
    'Workflow states by category, as the source spells them: {"started": [...], "done": [...], '
    '"waiting": [...], "not_started": [...]}; a state in one category at most.'
)


class SourceOut(Schema):
    id: int
    name: str
    kind: SourceKind
    product_id: int | None
    team_id: int | None
    state_mapping: dict[str, list[str]]
    production_environment: str
    created_at: dt.datetime
    archived_at: dt.datetime | None
    version: int
    page: str


class SourceIn(StrictSchema):
    name: str = Field(min_length=1, max_length=120)
    kind: SourceKind
    product_id: ObjectId | None = None
    team_id: ObjectId | None = None
    state_mapping: dict[str, Any] = Field(default_factory=dict, description=MAPPING_HELP)
    production_environment: str = Field("production", min_length=1, max_length=60)


class SourcePatch(StrictSchema):
    version: int = Field(description=VERSION_HELP)
    name: str | None = Field(None, min_length=1, max_length=120)
    kind: SourceKind | None = None
    product_id: ObjectId | None = Field(None, description="null unlinks the product.")
    team_id: ObjectId | None = Field(None, description="null unlinks the team.")
    state_mapping: dict[str, Any] | None = Field(None, description=MAPPING_HELP)
    production_environment: str | None = Field(None, min_length=1, max_length=60)


class ArchiveIn(StrictSchema):
    version: int = Field(description=VERSION_HELP)
    archived: bool = Field(True, description="false restores an archived source.")


class BadRecordOut(Schema):
    location: str
    message: str


class ImportOut(Schema):
    id: int
    source_id: int
    importer: str
    file_name: str
    digest: str = Field(description="sha256 of the uploaded file (empty for a repository).")
    status: str
    created: dict[str, int] = Field(description='New rows by kind; "<kind>_updated": known rows changed.')
    unchanged: int
    errors: list[BadRecordOut] = Field(description="The first bad records, with their location.")
    error_count: int
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    job_id: int | None
    created_by: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    summary: str


def _source_out(source: DeliverySource) -> dict[str, Any]:
    from django.urls import reverse

    return {
        "id": source.pk,
        "name": source.name,
        "kind": source.kind,
        "product_id": source.product_id,
        "team_id": source.team_id,
        "state_mapping": source.state_mapping or {},
        "production_environment": source.production_environment,
        "created_at": source.created_at,
        "archived_at": source.archived_at,
        "version": source.version,
        "page": reverse(
            "delivery:source", kwargs={"org_slug": source.organisation.slug, "source_id": source.pk}
        ),
    }


@router.get(
    "/{slug}/delivery/sources",
    response={200: list[SourceOut], **READ_ERRORS},
    summary="Delivery sources (live ones; ?archived=true for all)",
)
def list_sources(request: HttpRequest, slug: str, archived: bool = False) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [
        _source_out(s)
        for s in sources.sources_of(m, include_archived=archived).select_related("organisation")
    ]


@router.post(
    "/{slug}/delivery/sources",
    response={201: SourceOut, **ERRORS},
    summary="Add a delivery source (members and above); 409 when the name is taken",
)
def create_source(request: HttpRequest, slug: str, payload: SourceIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    source = sources.create_source(
        m,
        user,
        name=payload.name,
        kind=payload.kind,
        product_id=payload.product_id,
        team_id=payload.team_id,
        state_mapping=payload.state_mapping,
        production_environment=payload.production_environment,
    )
    return Status(201, _source_out(source))


@router.get(
    "/{slug}/delivery/sources/{source_id}",
    response={200: SourceOut, **READ_ERRORS},
    summary="One delivery source",
)
def get_source(request: HttpRequest, slug: str, source_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _source_out(sources.get_source(m, source_id))


@router.patch(
    "/{slug}/delivery/sources/{source_id}",
    response={200: SourceOut, **ERRORS},
    summary="Change a delivery source: name, kind, product, team, state mapping, production environment",
)
def update_source(
    request: HttpRequest, slug: str, source_id: ObjectId, payload: SourcePatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    sources.get_source(m, source_id)
    for name in ("name", "kind", "state_mapping", "production_environment"):
        if name in payload.model_fields_set and getattr(payload, name) is None:
            raise ValidationFailed("Must not be null.", field=name)
    given = payload.model_fields_set
    changes: dict[str, Any] = {
        name: getattr(payload, name)
        for name in ("name", "kind", "product_id", "team_id", "state_mapping", "production_environment")
        if name in given
    }
    return _source_out(sources.update_source(m, user, source_id, version=payload.version, **changes))


@router.post(
    "/{slug}/delivery/sources/{source_id}/archive",
    response={200: SourceOut, **ERRORS},
    summary="Archive a delivery source (its data stays; metrics leave it out), or restore it",
)
def archive_source(
    request: HttpRequest, slug: str, source_id: ObjectId, payload: ArchiveIn
) -> dict[str, Any]:
    m, user = scope(request, slug)
    source = sources.archive_source(m, user, source_id, archived=payload.archived, version=payload.version)
    return _source_out(source)


def _limit_upload(run: Any) -> Any:
    """Refuse (413) an upload whose declared length is over the import limit before its body is read."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = int(settings.TRUENORTH_IMPORT_MAX_FILE_BYTES)
        if length > limit + UPLOAD_OVERHEAD:
            body = {
                "detail": f"The upload is {length:,} bytes; a file may be at most {limit:,} bytes.",
                "errors": [{"field": "file", "message": "The file is too large."}],
            }
            response = HttpResponse(json.dumps(body), status=413, content_type="application/json")
            response["Connection"] = "close"
            return response
        return run(request, *args, **kwargs)

    return wrapped


@router.post(
    "/{slug}/delivery/sources/{source_id}/imports",
    response={202: JobOut, **SUBMIT_ERRORS, 413: ErrorOut},
    summary="Import into a delivery source as a background job: an uploaded file, or (git) a repository path",
    description=(
        "Multipart form: `importer` (jira, jira-csv, jira-changelog, events, events-csv, events-json, git, or "
        "a registered third-party importer) and `file` (the CSV or JSON file), or for `git` the `path` of a "
        "repository inside the organisation's own directory (`<TRUENORTH_DUCKDB_DIRS entry>/org-<id>/`, "
        "symbolic links resolved; 422 on `path` otherwise). 202 with the job (`Location`); its `result` has "
        "`import_id` (GET delivery/imports/{import_id} for the counts and the bad records). Re-importing the "
        "same file creates nothing. 413 for a file over TRUENORTH_IMPORT_MAX_FILE_BYTES; 429 when the "
        "organisation already has TRUENORTH_JOBS_PER_ORGANISATION jobs queued or running."
    ),
)
@decorate_view(_limit_upload)
def submit_import(
    request: HttpRequest,
    response: HttpResponse,
    slug: str,
    source_id: ObjectId,
    importer: str = Form(..., description="The importer's name."),
    path: str | None = Form(None, description="git: the repository's path on the server."),
    file: UploadedFile | None = File(None, description="The CSV or JSON file."),  # noqa: B008
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    require_writer(m)
    data: bytes | None = None
    name = ""
    if file is not None:
        sources.check_file_size(file.size)
        data = file.read()
        name = file.name or "upload"
    job = sources.submit_import(m, user, source_id, importer=importer, data=data, file_name=name, path=path)
    return accepted(response, job)


@router.get(
    "/{slug}/delivery/sources/{source_id}/imports",
    response={200: list[ImportOut], **READ_ERRORS},
    summary="A delivery source's imports, newest first (the last 100)",
)
def list_imports(request: HttpRequest, slug: str, source_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [sources.describe_import(r) for r in sources.imports_of(m, source_id)[:100]]


@router.get(
    "/{slug}/delivery/imports/{import_id}",
    response={200: ImportOut, **READ_ERRORS},
    summary="One import: counts by kind, unchanged records, bad records with their location, time window",
)
def get_import(request: HttpRequest, slug: str, import_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return sources.describe_import(sources.get_import(m, import_id))
