"""Storing imported records for one source: incremental, idempotent, in batches.

`ingest(source, records, run=run)` reads the importer's stream in batches of BATCH_SIZE records; each
batch is one transaction. Within a batch, records are stored kind by kind with
`bulk_create(ignore_conflicts=True)` on the natural keys (unique in the database: an item by
`(source, external_id)`, a transition by `(item, at, to_state)`, a commit by sha, a pull request by
number, a release by name, a deployment and an incident by `external_id`), so importing the same file
twice creates nothing.

- New rows are counted by kind in `run.created` (`{"items": 10, "transitions": 52, ...}`). A record
  already known with the same values counts in `run.unchanged`. A known record whose values changed (a
  newer export: an incident now resolved, a pull request now merged, an item renamed) is updated in
  place and counted in `run.created` as `"<kind>_updated"`; transitions and commits never change.
- Items before their transitions: a transition whose item the source does not know yet (neither stored
  nor in the stream so far) creates a bare item (its id, no title, created at the transition's time);
  an item record later in the stream, or in a later import, fills it in. So a tool that only emits
  state changes can feed flow metrics.
- Line of sight: an item whose `external_id` equals the `external_key` of a Vision work item
  (`strategy.WorkItem`) of the source's product is linked to it (`DeliveryItem.work_item`), on creation
  and on any later import once the work item exists.
- Bad records (from the importer, or a key too long for the database) are kept in `run.errors` (the
  first MAX_ERRORS, each `{"location", "message"}`) and counted in `run.error_count`; they never stop the
  good ones.
- `run.window_start`/`window_end` span every timestamp the run read. The earliest time a *new or
  changed* record touches (`Changes.since`, when the caller passes one) tells the feed which weeks of
  the Value measures to recompute (services/feed.py, "late data").
- Incidents and their cause: an incident naming a deployment (`IncidentRecord.deployment`, the
  deployment's external id in the same source) is linked to it (`Incident.deployment`); when that
  deployment is not known yet, the name is kept (`IncidentCause`) and the link made when it arrives, in
  a later batch or import. An incident naming no deployment keeps any link it had.
- Branches: a branch record creates or updates the source's `Branch` (head, last commit time, seen
  now; a branch listed again after being deleted is live again). After a full listing (the git
  importer's `BranchesComplete` marker) the source's live branches that were not listed are marked
  deleted (`deleted_at`), never removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.delivery.importers.base import (
    RECORD_TYPES,
    BadRecord,
    BranchesComplete,
    BranchRecord,
    CommitRecord,
    DeploymentRecord,
    IncidentRecord,
    ItemRecord,
    PullRecord,
    Record,
    ReleaseRecord,
    TransitionRecord,
)
from truenorth.delivery.models import (
    Branch,
    Commit,
    DeliveryItem,
    DeliverySource,
    Deployment,
    ImportRun,
    ImportStatus,
    Incident,
    IncidentCause,
    PullRequest,
    Release,
    StateTransition,
)
from truenorth.strategy.models import WorkItem

BATCH_SIZE = 5_000
MAX_ERRORS = 200  # bad records kept on the run (all are counted)

Progress = Callable[[int, int], None]


def start_run(
    source: DeliverySource,
    importer: str,
    *,
    actor: User | None = None,
    file_name: str = "",
    data: bytes | Path | None = None,
    job_id: int | None = None,
) -> ImportRun:
    """A new running ImportRun for the source (the digest is the sha256 of `data`: the bytes, or the
    file at that path; a directory, such as a git repository, has none)."""
    if isinstance(data, Path):
        digest = ""
        if data.is_file():
            with data.open("rb") as stream:
                digest = hashlib.file_digest(stream, "sha256").hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest() if data is not None else ""
    return ImportRun.objects.create(
        organisation_id=source.organisation_id,
        source=source,
        importer=importer[:40],
        file_name=file_name[:255],
        digest=digest,
        job_id=job_id,
        created_by=actor,
    )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=dt.UTC)
    return value


@dataclass
class Changes:
    """What an import changed, for the feed: the earliest time touched by a new or changed record."""

    since: dt.datetime | None = None

    def touch(self, *moments: dt.datetime | None) -> None:
        for moment in moments:
            if moment is not None and (self.since is None or moment < self.since):
                self.since = moment


@dataclass
class _Tally:
    created: Counter[str]
    unchanged: int = 0
    errors: list[dict[str, str]] | None = None
    error_count: int = 0
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    changes: Changes = field(default_factory=Changes)
    now: dt.datetime = field(default_factory=timezone.now)
    branches_listed: set[str] = field(default_factory=set)
    branches_complete: bool = False

    def bad(self, location: str, message: str) -> None:
        assert self.errors is not None
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"location": location, "message": message})

    def seen(self, *moments: dt.datetime | None) -> None:
        for moment in moments:
            if moment is None:
                continue
            if self.start is None or moment < self.start:
                self.start = moment
            if self.end is None or moment > self.end:
                self.end = moment


# --- one kind at a time ---------------------------------------------------------------------------


def _store(
    model: type[models.Model],
    kind: str,
    key_field: str,
    rows: dict[Any, dict[str, Any]],
    scope: dict[str, Any],
    mutable: tuple[str, ...],
    tally: _Tally,
    times: tuple[str, ...] = (),
) -> None:
    """Create the rows whose key is new, update the known ones whose mutable fields differ; the `times`
    fields of those rows (old and new values) are what the import changed (tally.changes)."""
    if not rows:
        return
    known: dict[Any, dict[str, Any]] = {}
    keys = list(rows)
    for start in range(0, len(keys), 900):  # SQLite's variable limit
        chunk = keys[start : start + 900]
        for found in model._default_manager.filter(**scope, **{f"{key_field}__in": chunk}).values(
            "pk", key_field, *mutable
        ):
            known[found[key_field]] = found
    new = [model(**scope, **{key_field: key}, **values) for key, values in rows.items() if key not in known]
    for key, values in rows.items():
        if key not in known:
            tally.changes.touch(*(values.get(name) for name in times))
    if new:
        model._default_manager.bulk_create(new, ignore_conflicts=True, batch_size=1000)
        tally.created[kind] += len(new)
    changed = []
    for key, values in rows.items():
        old = known.get(key)
        if old is None:
            continue
        updates = {name: values[name] for name in mutable if name in values and values[name] != old[name]}
        if updates:
            obj = model(pk=old["pk"], **{name: values.get(name, old[name]) for name in mutable})
            changed.append(obj)
            tally.changes.touch(*(values.get(name) for name in times), *(old.get(name) for name in times))
        else:
            tally.unchanged += 1
    if changed:
        model._default_manager.bulk_update(changed, list(mutable), batch_size=1000)
        tally.created[f"{kind}_updated"] += len(changed)


def _too_long(value: str, limit: int) -> bool:
    return len(value) > limit


def _store_batch(source: DeliverySource, batch: list[Record], tally: _Tally) -> None:
    items: dict[str, dict[str, Any]] = {}
    transitions: list[TransitionRecord] = []
    commits: dict[str, dict[str, Any]] = {}
    pulls: dict[int, dict[str, Any]] = {}
    releases: dict[str, dict[str, Any]] = {}
    deployments: dict[str, dict[str, Any]] = {}
    incidents: dict[str, dict[str, Any]] = {}
    causes: dict[str, str] = {}
    branches: dict[str, dict[str, Any]] = {}
    for record in batch:
        if isinstance(record, ItemRecord):
            if not record.external_id or _too_long(record.external_id, 100):
                tally.bad(f"item {record.external_id[:100]!r}", "The item id must be 1 to 100 characters.")
                continue
            created_at = _aware(record.created_at)
            tally.seen(created_at)
            items[record.external_id] = {
                "title": record.title[:300],
                "item_type": record.item_type[:40],
                "labels": list(record.labels),
                "created_at": created_at,
            }
        elif isinstance(record, TransitionRecord):
            if not record.item_external_id or _too_long(record.item_external_id, 100):
                tally.bad(
                    f"transition of {record.item_external_id[:100]!r}",
                    "The item id must be 1 to 100 characters.",
                )
                continue
            if not record.to_state or _too_long(record.to_state, 60) or _too_long(record.from_state, 60):
                tally.bad(f"transition of {record.item_external_id}", "A state must be 1 to 60 characters.")
                continue
            tally.seen(_aware(record.at))
            transitions.append(record)
        elif isinstance(record, CommitRecord):
            if not record.sha or _too_long(record.sha, 64):
                tally.bad(f"commit {record.sha[:64]!r}", "A commit sha must be 1 to 64 characters.")
                continue
            committed = _aware(record.committed_at)
            tally.seen(committed)
            commits[record.sha] = {
                "authored_at": _aware(record.authored_at),
                "committed_at": committed,
                "is_merge": record.is_merge,
                "branch": record.branch[:200],
            }
        elif isinstance(record, PullRecord):
            if record.number < 0 or _too_long(record.merge_sha, 64):
                tally.bad(f"pull request #{record.number}", "A pull request needs a number ≥ 0.")
                continue
            tally.seen(_aware(record.created_at), _aware(record.merged_at))
            pulls[record.number] = {
                "title": record.title[:300],
                "created_at": _aware(record.created_at),
                "first_commit_at": _aware(record.first_commit_at),
                "merged_at": _aware(record.merged_at),
                "merge_sha": record.merge_sha,
                "commit_shas": list(record.commit_shas),
            }
        elif isinstance(record, ReleaseRecord):
            if not record.name or _too_long(record.name, 200) or _too_long(record.sha, 64):
                tally.bad(f"release {record.name[:200]!r}", "A release name must be 1 to 200 characters.")
                continue
            tally.seen(_aware(record.at))
            releases[record.name] = {"at": _aware(record.at), "sha": record.sha}
        elif isinstance(record, DeploymentRecord):
            if not record.external_id or _too_long(record.external_id, 100):
                tally.bad(
                    f"deployment {record.external_id[:100]!r}", "A deployment id must be 1 to 100 characters."
                )
                continue
            tally.seen(_aware(record.deployed_at))
            deployments[record.external_id] = {
                "run_id": record.run_id[:100],
                "service": record.service[:120],
                "environment": record.environment[:60],
                "deployed_at": _aware(record.deployed_at),
                "succeeded": record.succeeded,
                "commit_shas": list(record.commit_shas),
            }
        elif isinstance(record, IncidentRecord):
            if not record.external_id or _too_long(record.external_id, 100):
                tally.bad(
                    f"incident {record.external_id[:100]!r}", "An incident id must be 1 to 100 characters."
                )
                continue
            tally.seen(_aware(record.opened_at), _aware(record.resolved_at))
            incidents[record.external_id] = {
                "service": record.service[:120],
                "opened_at": _aware(record.opened_at),
                "resolved_at": _aware(record.resolved_at),
            }
            if record.deployment:
                if _too_long(record.deployment, 100):
                    tally.bad(
                        f"incident {record.external_id}", "The deployment id must be at most 100 characters."
                    )
                else:
                    causes[record.external_id] = record.deployment
        elif isinstance(record, BranchRecord):
            if not record.name or _too_long(record.name, 200) or _too_long(record.head_sha, 64):
                tally.bad(f"branch {record.name[:200]!r}", "A branch name must be 1 to 200 characters.")
                continue
            tally.seen(_aware(record.last_commit_at), _aware(record.deleted_at))
            tally.branches_listed.add(record.name)
            branches[record.name] = {
                "remote": record.remote,
                "head_sha": record.head_sha,
                "last_commit_at": _aware(record.last_commit_at),
                "deleted_at": _aware(record.deleted_at),
            }
        elif isinstance(record, BranchesComplete):
            tally.branches_complete = True

    scope = {"source": source}
    if items:
        links = _work_items(source, list(items))
        for key, values in items.items():
            if key in links:
                values["work_item_id"] = links[key]
        _store_items(source, items, tally)
    if transitions:
        _store_transitions(source, transitions, tally)
    _store(
        Commit,
        "commits",
        "sha",
        commits,
        scope,
        ("authored_at", "committed_at", "is_merge"),
        tally,
        ("authored_at", "committed_at"),
    )
    _store(
        PullRequest,
        "pull_requests",
        "number",
        pulls,
        scope,
        ("title", "created_at", "first_commit_at", "merged_at", "merge_sha", "commit_shas"),
        tally,
        ("created_at", "first_commit_at", "merged_at"),
    )
    _store(Release, "releases", "name", releases, scope, ("at", "sha"), tally, ("at",))
    _store(
        Deployment,
        "deployments",
        "external_id",
        deployments,
        scope,
        ("run_id", "service", "environment", "deployed_at", "succeeded", "commit_shas"),
        tally,
        ("deployed_at",),
    )
    _store(
        Incident,
        "incidents",
        "external_id",
        incidents,
        scope,
        ("service", "opened_at", "resolved_at"),
        tally,
        ("opened_at", "resolved_at"),
    )
    if causes:
        _store_causes(source, causes)
    if causes or deployments:
        _link_incidents(source, set(causes.values()) | set(deployments), tally)
    if branches:
        _store_branches(source, branches, tally)


def _store_causes(source: DeliverySource, causes: dict[str, str]) -> None:
    """Keep the deployment each incident names (created, or changed when a newer export says otherwise)."""
    incident_ids = _ids(Incident, source, set(causes))
    known = {
        incident_id: (pk, name)
        for pk, incident_id, name in IncidentCause.objects.filter(
            incident_id__in=incident_ids.values()
        ).values_list("pk", "incident_id", "deployment_external_id")
    }
    new, changed = [], []
    for external_id, name in causes.items():
        incident_id = incident_ids.get(external_id)
        if incident_id is None:
            continue
        old = known.get(incident_id)
        if old is None:
            new.append(IncidentCause(incident_id=incident_id, source=source, deployment_external_id=name))
        elif old[1] != name:
            changed.append(IncidentCause(pk=old[0], deployment_external_id=name))
    IncidentCause.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    IncidentCause.objects.bulk_update(changed, ["deployment_external_id"], batch_size=1000)


def _link_incidents(source: DeliverySource, names: set[str], tally: _Tally) -> None:
    """Link the incidents whose named cause is one of these deployment ids, once that deployment is
    known (two queries, then one update per incident whose link changes)."""
    ordered = sorted(names)
    wanted = [
        row
        for start in range(0, len(ordered), 900)
        for row in IncidentCause.objects.filter(
            source=source, deployment_external_id__in=ordered[start : start + 900]
        ).values_list("incident_id", "deployment_external_id", "incident__deployment_id")
    ]
    if not wanted:
        return
    found = {
        external_id: (pk, at)
        for external_id, pk, at in Deployment.objects.filter(
            source=source, external_id__in={name for _, name, _ in wanted}
        ).values_list("external_id", "pk", "deployed_at")
    }
    linked = 0
    for incident_id, name, current in wanted:
        target = found.get(name)
        if target is None or target[0] == current:
            continue
        Incident.objects.filter(pk=incident_id).update(deployment_id=target[0])
        tally.changes.touch(target[1])  # the deployment's week: its change failure rate
        linked += 1
    if linked:
        tally.created["incident_links"] += linked


def _store_branches(source: DeliverySource, branches: dict[str, dict[str, Any]], tally: _Tally) -> None:
    """Create or update the listed branches; every listed one is seen now (and live, unless the record
    says it was deleted)."""
    known: dict[str, dict[str, Any]] = {
        row["name"]: dict(row)
        for start in range(0, len(branches), 900)
        for row in Branch.objects.filter(source=source, name__in=list(branches)[start : start + 900]).values(
            "pk", "name", "remote", "head_sha", "last_commit_at", "deleted_at"
        )
    }
    new, changed, seen = [], [], []
    fields = ("remote", "head_sha", "last_commit_at", "deleted_at")
    for name, values in branches.items():
        old = known.get(name)
        if old is None:
            new.append(Branch(source=source, name=name, first_seen_at=tally.now, seen_at=tally.now, **values))
            tally.changes.touch(values["last_commit_at"])
        elif any(values[f] != old[f] for f in fields):
            changed.append(Branch(pk=old["pk"], seen_at=tally.now, **values))
            tally.changes.touch(values["last_commit_at"], old["last_commit_at"], values["deleted_at"])
        else:
            seen.append(old["pk"])
    if new:
        Branch.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
        tally.created["branches"] += len(new)
    if changed:
        Branch.objects.bulk_update(changed, [*fields, "seen_at"], batch_size=1000)
        tally.created["branches_updated"] += len(changed)
    for start in range(0, len(seen), 900):
        Branch.objects.filter(pk__in=seen[start : start + 900]).update(seen_at=tally.now)
    tally.unchanged += len(seen)


def _mark_deleted_branches(source: DeliverySource, tally: _Tally) -> None:
    """After a full listing: the source's live branches that were not listed are gone (kept, marked)."""
    gone = [
        pk
        for pk, name in Branch.objects.filter(source=source, deleted_at__isnull=True).values_list(
            "pk", "name"
        )
        if name not in tally.branches_listed
    ]
    for start in range(0, len(gone), 900):
        Branch.objects.filter(pk__in=gone[start : start + 900]).update(deleted_at=tally.now)
    if gone:
        tally.created["branches_deleted"] += len(gone)
        tally.changes.touch(tally.now)


def _ids(model: type[models.Model], source: DeliverySource, keys: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 900):
        found.update(
            model._default_manager.filter(
                source=source, external_id__in=ordered[start : start + 900]
            ).values_list("external_id", "pk")
        )
    return found


def _work_items(source: DeliverySource, keys: list[str]) -> dict[str, int]:
    """Vision work items of the source's product whose external key is one of these item ids."""
    if source.product_id is None:
        return {}
    found: dict[str, int] = {}
    for start in range(0, len(keys), 900):
        found.update(
            WorkItem.objects.filter(
                organisation_id=source.organisation_id,
                product_id=source.product_id,
                external_key__in=keys[start : start + 900],
            ).values_list("external_key", "pk")
        )
    return found


def _store_items(source: DeliverySource, items: dict[str, dict[str, Any]], tally: _Tally) -> None:
    scope = {"source": source, "organisation_id": source.organisation_id}
    # The link is kept once made: a later import without a match does not unlink.
    linked = {k: v for k, v in items.items() if "work_item_id" in v}
    plain = {k: v for k, v in items.items() if "work_item_id" not in v}
    fields = ("title", "item_type", "labels", "created_at")
    _store(DeliveryItem, "items", "external_id", plain, scope, fields, tally, ("created_at",))
    _store(
        DeliveryItem, "items", "external_id", linked, scope, (*fields, "work_item_id"), tally, ("created_at",)
    )


def _store_transitions(source: DeliverySource, transitions: list[TransitionRecord], tally: _Tally) -> None:
    wanted = {t.item_external_id for t in transitions}
    ids = _item_ids(source, wanted)
    missing = wanted - set(ids)
    if missing:  # bare items for transitions of items the source does not know (documented above)
        first: dict[str, dt.datetime] = {}
        for t in transitions:
            at = _aware(t.at)
            assert at is not None
            if t.item_external_id in missing and (
                t.item_external_id not in first or at < first[t.item_external_id]
            ):
                first[t.item_external_id] = at
        DeliveryItem.objects.bulk_create(
            [
                DeliveryItem(
                    organisation_id=source.organisation_id, source=source, external_id=key, created_at=at
                )
                for key, at in first.items()
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        tally.created["items"] += len(first)
        ids.update(_item_ids(source, missing))
    rows: dict[tuple[int, dt.datetime, str], str] = {}
    for t in transitions:
        at = _aware(t.at)
        assert at is not None
        rows[(ids[t.item_external_id], at, t.to_state)] = t.from_state
    known: set[tuple[int, dt.datetime, str]] = set()
    item_ids = sorted({key[0] for key in rows})
    for start in range(0, len(item_ids), 900):
        for item_id, at, to_state in StateTransition.objects.filter(
            item_id__in=item_ids[start : start + 900]
        ).values_list("item_id", "at", "to_state"):
            known.add((item_id, at, to_state))
    new = [
        StateTransition(item_id=item_id, at=at, to_state=to_state, from_state=from_state)
        for (item_id, at, to_state), from_state in rows.items()
        if (item_id, at, to_state) not in known
    ]
    if new:
        StateTransition.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
        tally.created["transitions"] += len(new)
        tally.changes.touch(*(t.at for t in new))
    tally.unchanged += len(rows) - len(new)


def _item_ids(source: DeliverySource, keys: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 900):
        found.update(
            DeliveryItem.objects.filter(
                source=source, external_id__in=ordered[start : start + 900]
            ).values_list("external_id", "pk")
        )
    return found


# --- the whole stream -----------------------------------------------------------------------------


def _batches(records: Iterable[Record | BadRecord], tally: _Tally, size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        if isinstance(record, BadRecord):
            tally.bad(record.location, record.message)
            continue
        if not isinstance(record, RECORD_TYPES):
            tally.bad(type(record).__name__, "Not a delivery record.")
            continue
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest(
    source: DeliverySource,
    records: Iterable[Record | BadRecord],
    *,
    run: ImportRun,
    progress: Progress | None = None,
    total: int = 0,
    batch_size: int = BATCH_SIZE,
    changes: Changes | None = None,
) -> ImportRun:
    """Store the records for the source and finish the run (succeeded; failed, then re-raised, on an
    unexpected error). `progress(done, total)` is called after each batch with the records read so far
    (`total` is the caller's estimate, 0 when unknown). `changes`, when given, is filled with the
    earliest time a new or changed record touches (for the feed)."""
    tally = _Tally(created=Counter(), errors=[], changes=changes if changes is not None else Changes())
    done = 0
    try:
        for batch in _batches(records, tally, batch_size):
            with transaction.atomic():
                _store_batch(source, batch, tally)
            done += len(batch)
            if progress is not None:
                progress(done, max(total, done))
        if tally.branches_complete:
            with transaction.atomic():
                _mark_deleted_branches(source, tally)
    except Exception:
        _finish(run, tally, ImportStatus.FAILED)
        raise
    _finish(run, tally, ImportStatus.SUCCEEDED)
    return run


def _finish(run: ImportRun, tally: _Tally, status: str) -> None:
    run.created = dict(sorted(tally.created.items()))
    run.unchanged = tally.unchanged
    run.errors = list(tally.errors or [])
    run.error_count = tally.error_count
    run.window_start = tally.start
    run.window_end = tally.end
    run.status = status
    run.finished_at = timezone.now()
    run.save()
