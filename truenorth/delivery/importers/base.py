"""The importer interface: what every importer, built-in or third-party, produces and how it is found.

An importer turns one input (the bytes of an uploaded file, or a path on disk) into a stream of
records. It knows nothing of the database: `truenorth.delivery.services.ingest.ingest` stores the
records, idempotently, for one source. An importer:

- has a `name` (the key it is registered under, e.g. "git", "jira-csv", "events"), and
- a `read(data)` method that *yields* records one at a time (a file of a million rows is never held as
  a list) and yields a `BadRecord(location, message)` for each row it cannot read, then carries on with
  the next one, so good rows are never lost to bad ones.

Timestamps in records are timezone-aware datetimes (importers take naive times as UTC).

To add one (docs/delivery.md, "Importers")::

    from truenorth.delivery.importers import registry
    from truenorth.delivery.importers.base import BadRecord, DeploymentRecord

    class MyCI:
        name = "my-ci"
        def read(self, data):
            ...
            yield DeploymentRecord(external_id=..., run_id=..., service=..., environment=...,
                                   deployed_at=..., succeeded=True, commit_shas=(...))

    registry[MyCI.name] = MyCI()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ItemRecord:
    """A work item (DeliveryItem): `external_id` is the source's key (e.g. "PAY-12")."""

    external_id: str
    title: str
    item_type: str
    created_at: dt.datetime
    labels: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TransitionRecord:
    """A work item's state change (StateTransition); `from_state` is "" when unknown."""

    item_external_id: str
    at: dt.datetime
    from_state: str
    to_state: str


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    authored_at: dt.datetime
    committed_at: dt.datetime
    is_merge: bool = False
    branch: str = ""


@dataclass(frozen=True)
class PullRecord:
    number: int
    title: str
    created_at: dt.datetime
    first_commit_at: dt.datetime | None = None
    merged_at: dt.datetime | None = None
    merge_sha: str = ""
    commit_shas: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ReleaseRecord:
    name: str
    at: dt.datetime
    sha: str = ""


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment; the rows of one pipeline run share `run_id` (they count as one deployment)."""

    external_id: str
    run_id: str
    service: str
    environment: str
    deployed_at: dt.datetime
    succeeded: bool = True
    commit_shas: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class IncidentRecord:
    """An incident; `deployment` names the deployment that caused it (its `external_id` in the same
    source, "" when unknown): ingest links them, also when the deployment arrives later."""

    external_id: str
    service: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None = None
    deployment: str = ""


@dataclass(frozen=True)
class BranchRecord:
    """A branch as the repository has it now: its head commit and that commit's committer date.
    `deleted_at` set: the branch was deleted then (a tool reporting deletions, e.g. the event format)."""

    name: str
    head_sha: str
    last_commit_at: dt.datetime
    deleted_at: dt.datetime | None = None
    remote: bool = False  # a remote-tracking branch ("origin/main")


@dataclass(frozen=True)
class BranchesComplete:
    """Marker after the BranchRecords of a full listing (the git importer): the source's branches not
    listed are gone from the repository, and ingest marks them deleted (they are never removed)."""


@dataclass(frozen=True)
class BadRecord:
    """A row the importer could not read: where (e.g. "line 12", "issues[3].changelog") and why."""

    location: str
    message: str


Record = (
    ItemRecord
    | TransitionRecord
    | CommitRecord
    | PullRecord
    | ReleaseRecord
    | DeploymentRecord
    | IncidentRecord
    | BranchRecord
    | BranchesComplete
)

RECORD_TYPES: tuple[type, ...] = (
    ItemRecord,
    TransitionRecord,
    CommitRecord,
    PullRecord,
    ReleaseRecord,
    DeploymentRecord,
    IncidentRecord,
    BranchRecord,
    BranchesComplete,
)


@runtime_checkable
class Importer(Protocol):
    """Reads one input into records. `data` is the file's bytes (uploads) or a path on disk (the CLI,
    the git importer); an importer that needs a path (git) reports a BadRecord for bytes."""

    name: str

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]: ...


# Every importer, by name; built-ins register themselves in `truenorth.delivery.importers` and third
# parties add theirs the same way (`registry[importer.name] = importer`).
registry: dict[str, Importer] = {}


def register(importer: Importer) -> Importer:
    """Add an importer to the registry under its name (the same as `registry[importer.name] = ...`)."""
    registry[importer.name] = importer
    return importer
