"""Delivery sources and their imports.

A source (`DeliverySource`) is one delivery system of one team or product: its name (unique in the
organisation, case-insensitively), kind, product and team (of the same organisation), the workflow
state mapping (`{"started": [...], "done": [...], "waiting": [...], "not_started": [...]}`, lists of
state names as the source spells them; a state belongs to one category at most) and the production
environment. Changes are versioned (a stale version is 409) and recorded in the history; archiving hides
a source from metrics and lists, its data stays.

Imports (`ImportRun`): the web and the API submit a background job (`submit_import`, kind
"delivery.import", runner in `truenorth/delivery/jobs.py`); the CLI calls `run_import` directly. Both
end in `run_import`, which streams the importer's records into `ingest.ingest`. Uploaded files are
capped at TRUENORTH_IMPORT_MAX_FILE_BYTES (413). The git importer reads a repository on the server:
from the web and the API only inside the organisation's own directories (`allowed_repository`: the
same confinement as DuckDB sources, `<TRUENORTH_DUCKDB_DIRS entry>/org-<id>/` plus
TRUENORTH_DUCKDB_GRANTS, after resolving `..` and symbolic links; checked again when the job runs); the
CLI, run by the operator, may read any path. An import that stored new or changed rows then feeds the
source's Value measures (`feed.after_import`: new weeks, and the fed weeks its records touch).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, DomainError, NotFound, TooLarge, ValidationFailed
from truenorth.core.validate import check_version
from truenorth.core.validate import text as _text
from truenorth.delivery.importers import UnreadableInput, registry
from truenorth.delivery.importers.git import count_commits
from truenorth.delivery.models import DeliverySource, ImportRun, ImportStatus, SourceKind
from truenorth.delivery.services import feed
from truenorth.delivery.services.ingest import Changes, ingest, start_run
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.jobs import services as jobs
from truenorth.jobs.models import Job
from truenorth.measures.sources import allowed_path, organisation_directories
from truenorth.orgs.models import Membership, Organisation
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Product, Team

SOURCE_FIELDS = ("name", "kind", "product", "team", "state_mapping", "production_environment", "archived_at")
CATEGORIES = ("started", "done", "waiting", "not_started")
MAX_STATES = 100
JOB_KIND = "delivery.import"
# Importers that only fit one kind of source; others (the generic events, third parties) fit any.
IMPORTER_KINDS = {
    "git": SourceKind.GIT,
    "jira": SourceKind.JIRA,
    "jira-csv": SourceKind.JIRA,
    "jira-changelog": SourceKind.JIRA,
    "github": SourceKind.GITHUB,
    "azure": SourceKind.AZURE,
}
PATH_IMPORTERS = frozenset({"git"})  # read a path on the server, not an uploaded file

Progress = Callable[[int, int], None]


# --- reading --------------------------------------------------------------------------------------


def sources_of(membership: Membership, *, include_archived: bool = False) -> QuerySet[DeliverySource]:
    qs = DeliverySource.objects.filter(organisation_id=membership.organisation_id).select_related(
        "product", "team"
    )
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    return qs.order_by("name", "id")


def get_source(membership: Membership, source_id: int) -> DeliverySource:
    source = sources_of(membership, include_archived=True).filter(pk=source_id).first()
    if source is None:
        raise NotFound("No such delivery source.")
    return source


def source_named(membership: Membership, name: str) -> DeliverySource:
    """A live source by name (case-insensitive): how the CLI names one."""
    source = sources_of(membership).filter(name__iexact=name.strip()).first()
    if source is None:
        raise NotFound(f"No delivery source called “{name}”.", field="source")
    return source


def imports_of(membership: Membership, source_id: int | None = None) -> QuerySet[ImportRun]:
    qs = ImportRun.objects.filter(organisation_id=membership.organisation_id).select_related(
        "source", "created_by"
    )
    if source_id is not None:
        qs = qs.filter(source_id=get_source(membership, source_id).pk)
    return qs.order_by("-started_at", "-id")


def get_import(membership: Membership, import_id: int) -> ImportRun:
    run = imports_of(membership).filter(pk=import_id).first()
    if run is None:
        raise NotFound("No such import.")
    return run


# --- checking input -------------------------------------------------------------------------------


def clean_state_mapping(raw: Any) -> dict[str, list[str]]:
    """`{"started": [...], "done": [...], "waiting": [...], "not_started": [...]}`: known categories,
    lists of non-empty state names (≤ 60 characters), each state in one category at most."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed(
            'The state mapping is an object like {"started": ["In Progress"], "done": ["Done"]}.',
            field="state_mapping",
        )
    unknown = sorted(set(raw) - set(CATEGORIES))
    if unknown:
        raise ValidationFailed(
            f"Unknown state categories: {', '.join(unknown)} (use {', '.join(CATEGORIES)}).",
            field="state_mapping",
        )
    clean: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for category in CATEGORIES:
        value = raw.get(category)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationFailed(f"“{category}” must be a list of state names.", field="state_mapping")
        names: list[str] = []
        for state in value:
            state = " ".join(state.split())
            if not state:
                continue
            if len(state) > 60:
                raise ValidationFailed(
                    f"State “{state[:60]}…” is longer than 60 characters.", field="state_mapping"
                )
            key = state.casefold()
            if key in seen and seen[key] != category:
                raise ValidationFailed(
                    f"State “{state}” is in both “{seen[key]}” and “{category}”.", field="state_mapping"
                )
            if key not in seen:
                seen[key] = category
                names.append(state)
        if len(names) > MAX_STATES:
            raise ValidationFailed(f"At most {MAX_STATES} states per category.", field="state_mapping")
        if names:
            clean[category] = names
    return clean


def _kind(kind: Any) -> str:
    if kind not in SourceKind.values:
        raise ValidationFailed(f"Choose one of: {', '.join(SourceKind.values)}.", field="kind")
    return str(kind)


def _product(membership: Membership, product_id: int | None) -> Product | None:
    if product_id is None:
        return None
    product = Product.objects.filter(organisation_id=membership.organisation_id, pk=product_id).first()
    if product is None:
        raise ValidationFailed("No such product in this organisation.", field="product_id")
    return product


def _team(membership: Membership, team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(organisation_id=membership.organisation_id, pk=team_id).first()
    if team is None:
        raise ValidationFailed("No such team in this organisation.", field="team_id")
    return team


def _environment(value: Any) -> str:
    return _text(value, "production_environment", required=True, max_length=60)


def _check_name(membership: Membership, name: Any, exclude: int | None = None) -> str:
    name = _text(name, "name", required=True, max_length=120)
    clash = DeliverySource.objects.filter(organisation_id=membership.organisation_id, name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise Conflict(f"A delivery source called “{name}” already exists.", field="name")
    return name


# --- writing --------------------------------------------------------------------------------------


@transaction.atomic
def create_source(
    membership: Membership,
    actor: User | None,
    *,
    name: str,
    kind: str,
    product_id: int | None = None,
    team_id: int | None = None,
    state_mapping: Any = None,
    production_environment: str = "production",
) -> DeliverySource:
    require_writer(membership)
    source = DeliverySource(
        organisation_id=membership.organisation_id,
        name=_check_name(membership, name),
        kind=_kind(kind),
        product=_product(membership, product_id),
        team=_team(membership, team_id),
        state_mapping=clean_state_mapping(state_mapping),
        production_environment=_environment(production_environment),
        created_by=actor,
    )
    source.save()
    record(
        membership.organisation,
        source,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, snapshot(source, SOURCE_FIELDS)),
    )
    return source


_UNSET: Any = object()


@transaction.atomic
def update_source(
    membership: Membership,
    actor: User | None,
    source_id: int,
    *,
    version: int | None = None,
    name: str | None = None,
    kind: str | None = None,
    product_id: int | None = _UNSET,
    team_id: int | None = _UNSET,
    state_mapping: Any = _UNSET,
    production_environment: str | None = None,
) -> DeliverySource:
    """Change the given fields (left out: unchanged; `product_id=None`/`team_id=None` unlink). A stale
    version is 409; an unchanged save writes nothing."""
    require_writer(membership)
    get_source(membership, source_id)
    source = DeliverySource.objects.select_for_update().get(pk=source_id)
    check_version(source, version)
    before = snapshot(source, SOURCE_FIELDS)
    if name is not None:
        source.name = _check_name(membership, name, exclude=source.pk)
    if kind is not None:
        source.kind = _kind(kind)
    if product_id is not _UNSET:
        source.product = _product(membership, product_id)
    if team_id is not _UNSET:
        source.team = _team(membership, team_id)
    if state_mapping is not _UNSET:
        source.state_mapping = clean_state_mapping(state_mapping)
    if production_environment is not None:
        source.production_environment = _environment(production_environment)
    changes = diff(before, snapshot(source, SOURCE_FIELDS))
    if changes:
        source.version += 1
        source.save()
        record(membership.organisation, source, actor, HistoryEntry.Action.UPDATED, changes)
    return source


@transaction.atomic
def archive_source(
    membership: Membership,
    actor: User | None,
    source_id: int,
    *,
    archived: bool = True,
    version: int | None = None,
) -> DeliverySource:
    require_writer(membership)
    get_source(membership, source_id)
    source = DeliverySource.objects.select_for_update().get(pk=source_id)
    check_version(source, version)
    if (source.archived_at is not None) == archived:
        return source
    before = snapshot(source, SOURCE_FIELDS)
    source.archived_at = timezone.now() if archived else None
    source.version += 1
    source.save(update_fields=["archived_at", "version"])
    action = HistoryEntry.Action.ARCHIVED if archived else HistoryEntry.Action.UPDATED
    record(membership.organisation, source, actor, action, diff(before, snapshot(source, SOURCE_FIELDS)))
    return source


# --- imports --------------------------------------------------------------------------------------


def importer_names() -> list[str]:
    return sorted(registry)


def check_importer(source: DeliverySource, importer: Any) -> str:
    if not isinstance(importer, str) or importer not in registry:
        raise ValidationFailed(f"Choose an importer: {', '.join(importer_names())}.", field="importer")
    wanted = IMPORTER_KINDS.get(importer)
    if wanted is not None and wanted != source.kind:
        raise ValidationFailed(
            f"The {importer} importer feeds {wanted.label} sources; “{source.name}” is {source.get_kind_display()}.",
            field="importer",
        )
    return importer


def allowed_repository(raw: Any, organisation: Organisation | int) -> Path:
    """A repository path the web and the API may read: inside the organisation's own directories once
    `..` and symbolic links are resolved (relative paths are taken inside its first one); 422 on `path`."""
    try:
        return Path(allowed_path(raw, "path", organisation))
    except ValidationFailed as error:
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise
        where = ", ".join(str(d) for d in organisation_directories(organisation)) or "(none configured)"
        raise ValidationFailed(
            f"“{raw}” is outside this organisation's directories: {where} (each organisation reads only its own).",
            field="path",
        ) from error


def check_file_size(size: int | None) -> None:
    limit = int(settings.TRUENORTH_IMPORT_MAX_FILE_BYTES)
    if size is not None and size > limit:
        raise TooLarge(f"The file is {size:,} bytes; a file may be at most {limit:,} bytes.", field="file")


def submit_import(
    membership: Membership,
    actor: User,
    source_id: int,
    *,
    importer: Any,
    data: bytes | None = None,
    file_name: str = "",
    path: Any = None,
) -> Job:
    """Check everything a request can (role, source, importer, file size, path), then queue the import
    as a background job. The git importer takes `path`; the others an uploaded file (`data`)."""
    require_writer(membership)
    source = get_source(membership, source_id)
    if source.archived_at is not None:
        raise ValidationFailed("This source is archived; restore it to import into it.", field="source")
    importer = check_importer(source, importer)
    params: dict[str, Any] = {"source_id": source.pk, "importer": importer, "file_name": file_name[:255]}
    if importer in PATH_IMPORTERS:
        params["path"] = str(allowed_repository(path, membership.organisation_id))
        params["file_name"] = params["path"][-255:]
        data = None
    else:
        if data is None:
            raise ValidationFailed("Choose a file to import.", field="file")
        check_file_size(len(data))
        if not data.strip():
            raise ValidationFailed("The file is empty.", field="file")
    return jobs.submit(membership, actor, JOB_KIND, params, payload=data)


def run_import(
    source: DeliverySource,
    importer: str,
    data: bytes | Path,
    *,
    actor: User | None,
    file_name: str = "",
    job: Job | None = None,
    progress: Progress | None = None,
) -> ImportRun:
    """Read `data` with the importer and store it for the source (the CLI calls this directly; the
    job runner too). An input that cannot be read at all fails the run, whose single error says why,
    and raises ValidationFailed on `file` (or `path`)."""
    reader = registry[importer]
    run = start_run(
        source,
        importer,
        actor=actor,
        file_name=file_name or (str(data) if isinstance(data, Path) else ""),
        data=data,
        job_id=job.pk if job is not None else None,
    )
    if isinstance(data, Path):
        total = count_commits(data) if importer in PATH_IMPORTERS else 0
    else:
        total = data.count(b"\n")
    changes = Changes()
    try:
        ingest(source, reader.read(data), run=run, progress=progress, total=total, changes=changes)
    except UnreadableInput as error:
        run.errors = [{"location": "input", "message": str(error)}]
        run.error_count = 1
        run.save(update_fields=["errors", "error_count"])
        field = "path" if importer in PATH_IMPORTERS else "file"
        raise ValidationFailed(str(error), field=field) from None
    try:
        feed.remember(run, feed.after_import(run, actor=actor, changes=changes))
    except DomainError:
        pass  # nobody may write the measures: the import stands, the daily feed tries again
    return run


def _kind_name(kind: str, count: int) -> str:
    """ "items" for 2, "item" for 1 (kinds are plural names of records: items, pull_requests, branches)."""
    name = kind.replace("_", " ")
    if count != 1:
        return name
    return name.removesuffix("es") if name.endswith("ches") else name.removesuffix("s")


def run_summary(run: ImportRun) -> str:
    """One line: "12 items, 40 transitions new; 3 unchanged; 1 bad record"."""
    # Besides new rows by kind, ingest counts "<kind>_updated", "branches_deleted" (branches gone from
    # the repository, kept and marked) and "incident_links" (incidents linked to their deployment).
    extra = {"branches_deleted": "branches marked deleted", "incident_links": "incidents linked"}
    created = {k: v for k, v in run.created.items() if not k.endswith("_updated") and k not in extra and v}
    updated = sum(v for k, v in run.created.items() if k.endswith("_updated"))
    parts = [
        ", ".join(f"{v} {_kind_name(k, v)}" for k, v in created.items()) + " new"
        if created
        else "nothing new"
    ]
    if updated:
        parts.append(f"{updated} updated")
    parts += [f"{run.created[k]} {label}" for k, label in extra.items() if run.created.get(k)]
    parts.append(f"{run.unchanged} unchanged")
    if run.error_count:
        parts.append(f"{run.error_count} bad record{'s' if run.error_count != 1 else ''}")
    return "; ".join(parts)


def describe_import(run: ImportRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "source_id": run.source_id,
        "importer": run.importer,
        "file_name": run.file_name,
        "digest": run.digest,
        "status": run.status,
        "created": run.created,
        "unchanged": run.unchanged,
        "errors": run.errors,
        "error_count": run.error_count,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "job_id": run.job_id,
        "created_by": run.created_by.email if run.created_by else None,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "summary": run_summary(run) if run.status != ImportStatus.RUNNING else "",
    }
