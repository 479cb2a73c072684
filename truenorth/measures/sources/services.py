"""Data sources: list, add, change, delete and test them (admins write; every change is recorded)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.measures.models import DataSource, DataSourceKind
from truenorth.measures.sources._common import (
    MAX_TIMEOUT_SECONDS,
    SOURCE_FIELDS,
    QueryFailed,
    decrypt_config,
    encrypt_config,
)
from truenorth.measures.sources.config import clean_config, keep_secrets, public_config
from truenorth.measures.sources.kinds import dialect_of, tested_on_real_engine
from truenorth.measures.sources.queries import _probe
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_role


def _name(value: Any) -> str:
    name = (value or "").strip() if isinstance(value, str | type(None)) else ""
    if not name:
        raise ValidationFailed("Name is required.", field="name")
    if len(name) > 120:
        raise ValidationFailed(f"Must be at most 120 characters (got {len(name)}).", field="name")
    return name


def _timeout(value: Any) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(
            f"'{value}' is not a whole number of seconds.", field="timeout_seconds"
        ) from None
    if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        raise ValidationFailed(
            f"Must be between 1 and {MAX_TIMEOUT_SECONDS} seconds (got {seconds}).", field="timeout_seconds"
        )
    return seconds


def data_sources_of(membership: Membership) -> list[DataSource]:
    """The organisation's data sources (any member may see names and kinds, to pick one for a measure)."""
    return list(DataSource.objects.filter(organisation_id=membership.organisation_id))


def get_data_source(membership: Membership, source_id: int) -> DataSource:
    source = DataSource.objects.filter(organisation_id=membership.organisation_id, pk=source_id).first()
    if source is None:
        raise NotFound("No such data source.")
    return source


def describe(source: DataSource) -> dict[str, Any]:
    """A data source for display or the API: never the decrypted settings, and no password."""
    return {
        "id": source.pk,
        "name": source.name,
        "kind": source.kind,
        "dialect": dialect_of(source),
        "tested_on_real_engine": tested_on_real_engine(source.kind),
        "config": public_config(source),
        "timeout_seconds": source.timeout_seconds,
        "last_checked_at": source.last_checked_at,
        "last_error": source.last_error,
        "version": source.version,
    }


def create_data_source(
    membership: Membership,
    actor: User,
    *,
    name: str,
    kind: str,
    config: dict[str, Any],
    timeout_seconds: int = 30,
) -> DataSource:
    """Add a data source (admins only); its settings are stored encrypted."""
    require_role(membership, Role.ADMIN)
    clean_name = _name(name)
    cleaned = clean_config(kind, config, membership.organisation_id)
    seconds = _timeout(timeout_seconds)
    if DataSource.objects.filter(organisation_id=membership.organisation_id, name=clean_name).exists():
        raise Conflict(f"A data source named “{clean_name}” already exists.", field="name")
    try:
        with transaction.atomic():
            source = DataSource.objects.create(
                organisation_id=membership.organisation_id,
                name=clean_name,
                kind=kind,
                config_encrypted=encrypt_config(cleaned),
                timeout_seconds=seconds,
            )
            record(
                membership.organisation,
                source,
                actor,
                HistoryEntry.Action.CREATED,
                diff({}, snapshot(source, SOURCE_FIELDS)),
            )
    except IntegrityError:
        raise Conflict(f"A data source named “{clean_name}” already exists.", field="name") from None
    return source


def update_data_source(
    membership: Membership,
    actor: User,
    source_id: int,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    timeout_seconds: int | None = None,
    version: int | None = None,
) -> DataSource:
    """Change a data source (admins only). `config` replaces the settings; a secret left as the mask
    shown by `describe` (a PostgreSQL address's password, a ClickHouse password, a Spark Connect token,
    a driver's secret parameters) keeps the stored one."""
    require_role(membership, Role.ADMIN)
    with transaction.atomic():
        source = get_data_source(membership, source_id)
        source = DataSource.objects.select_for_update().get(pk=source.pk)
        if version is not None and version != source.version:
            raise Conflict(
                f"“{source}” was changed by someone else (you edited version {version}, it is now at "
                f"version {source.version}). Reload it and apply your change again.",
                field="version",
            )
        before = snapshot(source, SOURCE_FIELDS)
        changed_config = False
        if name is not None:
            source.name = _name(name)
            clash = DataSource.objects.filter(organisation_id=source.organisation_id, name=source.name)
            if clash.exclude(pk=source.pk).exists():
                raise Conflict(f"A data source named “{source.name}” already exists.", field="name")
        if timeout_seconds is not None:
            source.timeout_seconds = _timeout(timeout_seconds)
        if config is not None:
            old = decrypt_config(source) if source.kind != DataSourceKind.DUCKDB else {}
            cleaned = clean_config(
                source.kind, keep_secrets(source.kind, config, old), source.organisation_id
            )
            source.config_encrypted = encrypt_config(cleaned)
            changed_config = True
        after = snapshot(source, SOURCE_FIELDS)
        changes = diff(before, after)
        if changed_config:
            changes["config"] = {"old": "(hidden)", "new": "(changed)"}
            source.last_error = ""
            source.last_checked_at = None
        if changes:
            source.version += 1
            source.save()
            record(membership.organisation, source, actor, HistoryEntry.Action.UPDATED, changes)
    return source


def delete_data_source(membership: Membership, actor: User, source_id: int) -> None:
    """Remove a data source no measure uses (admins only)."""
    require_role(membership, Role.ADMIN)
    with transaction.atomic():
        source = get_data_source(membership, source_id)
        used = list(source.measures.values_list("name", flat=True)[:5])
        if used:
            raise Conflict(f"Measures use “{source}”: {', '.join(used)}. Change them first.")
        record(membership.organisation, source, actor, HistoryEntry.Action.DELETED, {})
        source.delete()


def test_data_source(membership: Membership, source_id: int) -> str:
    """Connect and run a trivial query (admins only). Records the outcome on the source (shown on its
    page and by `truenorth check`); returns a one-line description, raises QueryFailed on failure."""
    require_role(membership, Role.ADMIN)
    source = get_data_source(membership, source_id)
    try:
        detail = _probe(source)
    except QueryFailed as exc:
        mark_checked(source, exc.message)
        raise
    mark_checked(source, "")
    return detail


test_data_source.__test__ = False  # type: ignore[attr-defined]  # a service, not a pytest test


def mark_checked(source: DataSource, error: str) -> None:
    """Record the outcome of a check (or of a refresh that had to connect) on the source."""
    source.last_checked_at = timezone.now()
    source.last_error = error[:2000]
    DataSource.objects.filter(pk=source.pk).update(
        last_checked_at=source.last_checked_at, last_error=source.last_error
    )
