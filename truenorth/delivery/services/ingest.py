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
- `run.window_start`/`window_end` span every timestamp the run read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.delivery.importers.base import (
    RECORD_TYPES,
    BadRecord,
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
    Commit,
    DeliveryItem,
    DeliverySource,
    Deployment,
    ImportRun,
    ImportStatus,
    Incident,
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
class _Tally:
    created: Counter[str]
    unchanged: int = 0
    errors: list[dict[str, str]] | None = None
    error_count: int = 0
    start: dt.datetime | None = None
    end: dt.datetime | None = None

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
) -> None:
    """Create the rows whose key is new, update the known ones whose mutable fields differ."""
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

    scope = {"source": source}
    if items:
        links = _work_items(source, list(items))
        for key, values in items.items():
            if key in links:
                values["work_item_id"] = links[key]
        _store_items(source, items, tally)
    if transitions:
        _store_transitions(source, transitions, tally)
    _store(Commit, "commits", "sha", commits, scope, ("authored_at", "committed_at", "is_merge"), tally)
    _store(
        PullRequest,
        "pull_requests",
        "number",
        pulls,
        scope,
        ("title", "created_at", "first_commit_at", "merged_at", "merge_sha", "commit_shas"),
        tally,
    )
    _store(Release, "releases", "name", releases, scope, ("at", "sha"), tally)
    _store(
        Deployment,
        "deployments",
        "external_id",
        deployments,
        scope,
        ("run_id", "service", "environment", "deployed_at", "succeeded", "commit_shas"),
        tally,
    )
    _store(
        Incident, "incidents", "external_id", incidents, scope, ("service", "opened_at", "resolved_at"), tally
    )


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
    _store(DeliveryItem, "items", "external_id", plain, scope, fields, tally)
    _store(DeliveryItem, "items", "external_id", linked, scope, (*fields, "work_item_id"), tally)


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
) -> ImportRun:
    """Store the records for the source and finish the run (succeeded; failed, then re-raised, on an
    unexpected error). `progress(done, total)` is called after each batch with the records read so far
    (`total` is the caller's estimate, 0 when unknown)."""
    tally = _Tally(created=Counter(), errors=[])
    done = 0
    try:
        for batch in _batches(records, tally, batch_size):
            with transaction.atomic():
                _store_batch(source, batch, tally)
            done += len(batch)
            if progress is not None:
                progress(done, max(total, done))
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
