"""Observations, append-only: batches (all or none, idempotent), single values, corrections."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import number as _number
from truenorth.core.validate import parse_number
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.measures.models import Measure, MeasureSource, Observation, ObservationBatch
from truenorth.measures.rollups import write_observations
from truenorth.measures.services._common import FED_SOURCES, _timestamp
from truenorth.measures.services.measures import get_measure
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer

DUPLICATE_CHECK_CHUNK = 500
BULK_BATCH = 1000


@dataclass
class ObservationIn:
    measure_id: int
    value: Any
    observed_at: Any
    note: str = ""


@dataclass
class BatchResult:
    batch: ObservationBatch
    created: int
    replayed: bool


@dataclass
class CleanRow:
    """A row that passed validation, ready to store."""

    index: int
    measure: Measure
    value: float
    observed_at: dt.datetime
    note: str


def clean_rows(
    organisation_id: int,
    rows: Sequence[ObservationIn],
    *,
    now: dt.datetime | None = None,
    check_existing: bool = True,
    measures: Mapping[int, Measure] | None = None,
) -> tuple[list[CleanRow], dict[int, dict[str, str]]]:
    """Validate rows: (the good ones, {row index: {field: message}} for the bad ones).

    A row is bad when its measure is not a live measure of the organisation, its value is not a finite
    number, its time is not ISO 8601 or lies in the future, or its measure already has a (current)
    observation at that exact time, in the database (unless check_existing is False) or earlier in the
    same rows. A fixed number of queries for any number of rows (duplicates are checked in chunks)."""
    now = now or timezone.now()
    errors: dict[int, dict[str, str]] = defaultdict(dict)
    if measures is None:
        ids = set()
        for row in rows:
            try:
                ids.add(int(row.measure_id))
            except (TypeError, ValueError):
                continue
        measures = {
            m.pk: m
            for m in Measure.objects.filter(organisation_id=organisation_id, pk__in=ids).select_related(
                "product"
            )
        }
    clean: list[CleanRow] = []
    seen: set[tuple[int, dt.datetime]] = set()
    for index, row in enumerate(rows):
        bad: dict[str, str] = {}
        measure = None
        try:
            measure = measures.get(int(row.measure_id))
        except (TypeError, ValueError):
            measure = None
        if measure is None:
            bad["measure_id"] = f"No such measure: {str(row.measure_id)[:50]!r}."
        elif measure.archived_at is not None:
            bad["measure_id"] = f"“{measure.name}” is archived: restore it to record observations."
        value = when = None
        try:
            value = parse_number(row.value)
        except (ValueError, OverflowError) as exc:
            bad["value"] = str(exc)
        try:
            when = _timestamp(row.observed_at, "observed_at", now=now)
        except ValidationFailed as exc:
            bad["observed_at"] = exc.message
        note = "" if row.note is None else str(row.note).strip()
        if len(note) > 500:
            bad["note"] = f"Must be at most 500 characters (got {len(note)})."
        if measure is not None and when is not None and "measure_id" not in bad:
            if (measure.pk, when) in seen:
                bad["observed_at"] = (
                    f"“{measure.name}” has another row at {when.isoformat()} in this batch; "
                    "to correct a value, supersede it."
                )
            seen.add((measure.pk, when))
        if bad:
            errors[index] = bad
        else:
            assert measure is not None and value is not None and when is not None
            clean.append(CleanRow(index, measure, value, when, note))
    if check_existing and clean:
        for dup in existing_duplicates(clean):
            errors[dup.index]["observed_at"] = (
                f"“{dup.measure.name}” already has a value at {dup.observed_at.isoformat()}; "
                "to correct a value, supersede it."
            )
        clean = [r for r in clean if r.index not in errors]
    return clean, dict(errors)


def existing_duplicates(rows: Sequence[CleanRow]) -> list[CleanRow]:
    """The rows whose measure already has a current observation at exactly their time."""
    taken: set[tuple[int, dt.datetime]] = set()
    times = sorted({r.observed_at for r in rows})
    measure_ids = {r.measure.pk for r in rows}
    for start in range(0, len(times), DUPLICATE_CHECK_CHUNK):
        chunk = times[start : start + DUPLICATE_CHECK_CHUNK]
        taken.update(
            (mid, when.astimezone(dt.UTC))
            for mid, when in Observation.objects.filter(
                measure_id__in=measure_ids, superseded=False, observed_at__in=chunk
            ).values_list("measure_id", "observed_at")
        )
    return [r for r in rows if (r.measure.pk, r.observed_at.astimezone(dt.UTC)) in taken]


def _describe(value: float, when: dt.datetime) -> str:
    return f"{value:g} at {when.isoformat()}"


def _history_for_batch(
    membership: Membership, actor: User | None, rows: Sequence[CleanRow], batch: ObservationBatch
) -> None:
    by_measure: dict[int, list[CleanRow]] = defaultdict(list)
    for row in rows:
        by_measure[row.measure.pk].append(row)
    for group in by_measure.values():
        measure = group[0].measure
        text = (
            _describe(group[0].value, group[0].observed_at)
            if len(group) == 1
            else f"{len(group)} values from {min(r.observed_at for r in group).date()} to "
            f"{max(r.observed_at for r in group).date()}"
        )
        record(
            membership.organisation,
            measure,
            actor,
            HistoryEntry.Action.UPDATED,
            {"observation": {"old": None, "new": f"{text} ({batch.get_source_display()}, batch {batch.pk})"}},
        )


def batch_digest(rows: Sequence[CleanRow], source: str) -> str:
    """SHA-256 of a batch's validated rows (measure, value, UTC time, note) and source, in row order."""
    canonical = [
        [r.measure.pk, repr(float(r.value)), r.observed_at.astimezone(dt.UTC).isoformat(), r.note]
        for r in rows
    ]
    text = json.dumps([source, canonical], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(batch: ObservationBatch, digest: str | None) -> BatchResult:
    """The answer to a key used before: replayed when the rows are the same, 409 when they differ."""
    if digest is not None and batch.payload_hash and batch.payload_hash != digest:
        raise Conflict(
            f"The idempotency key “{batch.idempotency_key}” was already used for a batch with different "
            "rows; nothing was saved. Use a new key for new data.",
            field="idempotency_key",
        )
    return BatchResult(batch, 0, True)


def find_batch(
    membership: Membership,
    idempotency_key: str,
    *,
    rows: Sequence[CleanRow] | None = None,
    source: str = "",
) -> ObservationBatch | None:
    """The batch stored earlier with this key, if any. Given the rows (and source) about to be stored
    under it, a batch with different rows is a Conflict (409) rather than a silent replay."""
    if not idempotency_key:
        return None
    earlier = ObservationBatch.objects.filter(
        organisation_id=membership.organisation_id, idempotency_key=idempotency_key
    ).first()
    if earlier is not None and rows is not None:
        _replay(earlier, batch_digest(rows, source or earlier.source))
    return earlier


def _duplicate_conflict(rows: Sequence[CleanRow]) -> Conflict:
    taken = existing_duplicates(rows)
    first = taken[0] if taken else None
    where = (
        f"“{first.measure.name}” already has a value at {first.observed_at.isoformat()}"
        if first
        else "another value was stored at the same time"
    )
    return Conflict(
        f"{where} (stored meanwhile by another request); nothing was saved. To correct a value, "
        "supersede it.",
        field="observed_at",
    )


def store_batch(
    membership: Membership,
    actor: User | None,
    rows: Sequence[CleanRow],
    *,
    source: str,
    idempotency_key: str = "",
) -> BatchResult:
    """Store validated rows as one batch, all or none. A key already used with the same rows returns that
    batch (replayed); with different rows it is a Conflict (409). A value that another writer stored
    meanwhile at the same measure and time (the database's unique index) is a Conflict too."""
    digest = batch_digest(rows, source)
    with transaction.atomic():
        try:
            with transaction.atomic():
                batch = ObservationBatch.objects.create(
                    organisation_id=membership.organisation_id,
                    idempotency_key=idempotency_key,
                    source=source,
                    rows=len(rows),
                    payload_hash=digest,
                    created_by=actor,
                )
        except IntegrityError:
            earlier = find_batch(membership, idempotency_key)
            if earlier is None:  # pragma: no cover - the unique constraint is the only integrity rule
                raise
            return _replay(earlier, digest)
        try:
            write_observations(  # the daily roll-ups too (rollups.py), in this transaction
                [
                    Observation(
                        measure=r.measure,
                        value=r.value,
                        observed_at=r.observed_at,
                        source=source,
                        note=r.note,
                        batch=batch,
                        recorded_by=actor,
                    )
                    for r in rows
                ],
                batch_size=BULK_BATCH,
            )
        except IntegrityError:
            raise _duplicate_conflict(rows) from None  # leaving the block rolls the batch back
        _history_for_batch(membership, actor, rows, batch)
    return BatchResult(batch, len(rows), False)


def clean_idempotency_key(value: Any) -> str:
    return _text(value, "idempotency_key", max_length=200)


def add_observations(
    membership: Membership,
    actor: User,
    rows: Sequence[ObservationIn],
    *,
    source: str,
    idempotency_key: str = "",
) -> BatchResult:
    """Record many observations: all of them or, if any row is bad, none (errors name each bad row as
    rows[i].field). A key used before in this organisation returns that earlier batch, creating nothing."""
    require_writer(membership)
    source = _choice(source, MeasureSource.values, "source")
    key = clean_idempotency_key(idempotency_key)
    if not rows:
        raise ValidationFailed("The batch has no rows.", field="rows")
    earlier = find_batch(membership, key)
    # A replay is compared with the batch stored under its key (store_batch), so its rows are not
    # refused for being stored already.
    clean, errors = clean_rows(membership.organisation_id, rows, check_existing=earlier is None)
    if errors and earlier is None and key:
        # A batch stored under this key since we looked (a concurrent request) makes its rows "stored
        # already" here: the key decides instead, as for a replay (store_batch: same rows replayed, else 409).
        earlier = find_batch(membership, key)
        if earlier is not None:
            clean, errors = clean_rows(membership.organisation_id, rows, check_existing=False)
    if errors:
        flat = {
            f"rows[{index}].{name}": message
            for index in sorted(errors)
            for name, message in errors[index].items()
        }
        first = next(iter(flat))
        raise ValidationFailed(
            f"{len(errors)} of {len(rows)} rows are invalid, so nothing was saved (first: {first}: "
            f"{flat[first]})",
            field=first,
            errors=flat,
        )
    for row in clean:
        if row.measure.source in FED_SOURCES and row.measure.source != source:
            raise ValidationFailed(
                f"“{row.measure.name}” is fed by {row.measure.get_source_display().lower()}: its values come "
                "from refreshing it, not from a batch; nothing was saved.",
                field=f"rows[{row.index}].measure",
            )
    return store_batch(membership, actor, clean, source=source, idempotency_key=key)


def add_observation(
    membership: Membership,
    actor: User,
    measure_id: int,
    value: Any,
    *,
    observed_at: Any = None,
    note: str = "",
    source: str = MeasureSource.MANUAL,
    idempotency_key: str = "",
) -> Observation:
    """Record one value of a measure (now, unless observed_at says when). With an idempotency key
    already used, the observation stored under it is returned and nothing is recorded twice."""
    require_writer(membership)
    measure = get_measure(membership, measure_id)
    source = _choice(source, MeasureSource.values, "source")
    if measure.source in FED_SOURCES and source != measure.source:
        raise ValidationFailed(
            f"“{measure.name}” is fed by {measure.get_source_display().lower()}: its values come from "
            "refreshing it, not from manual entry. Refresh it, or correct a value it has.",
            field="value",
        )
    now = timezone.now()
    clean, errors = clean_rows(
        membership.organisation_id,
        [ObservationIn(measure.pk, value, now if observed_at in (None, "") else observed_at, note)],
        now=now,
        measures={measure.pk: measure},
    )
    if errors:
        name, message = next(iter(errors[0].items()))
        raise ValidationFailed(message, field=name)
    earlier = find_batch(membership, idempotency_key) if idempotency_key else None
    if earlier is not None:
        return Observation.objects.filter(batch=earlier).get()
    result = store_batch(membership, actor, clean, source=source, idempotency_key=idempotency_key)
    return Observation.objects.filter(batch=result.batch).get()


def _get_observation(membership: Membership, observation_id: int) -> Observation:
    observation = (
        Observation.objects.select_for_update()
        .filter(pk=observation_id, measure__organisation_id=membership.organisation_id)
        .first()
    )
    if observation is None:
        raise NotFound("No such observation.")
    return observation


@transaction.atomic
def correct_observation(
    membership: Membership, actor: User, observation_id: int, value: Any, *, note: str = ""
) -> Observation:
    """Supersede an observation with a corrected value at the same time; both rows are kept."""
    require_writer(membership)
    old = _get_observation(membership, observation_id)
    if old.superseded:
        raise Conflict(
            "This observation has already been corrected; correct the latest value instead.", field="value"
        )
    number = _number(value, "value")
    assert number is not None
    measure = get_measure(membership, old.measure_id)
    note = _text(note, "note", max_length=500)
    # write_observations marks the old row superseded first (the database holds one current value per
    # measure and time), then stores the new one and recomputes that day's roll-up.
    try:
        (new,) = write_observations(
            [
                Observation(
                    measure=measure,
                    value=number,
                    observed_at=old.observed_at,
                    source=MeasureSource.MANUAL,
                    note=note,
                    supersedes=old,
                    recorded_by=actor,
                )
            ],
            supersede=[old],
        )
    except IntegrityError:
        raise Conflict("This observation has already been corrected.", field="value") from None
    record(
        membership.organisation,
        measure,
        actor,
        HistoryEntry.Action.UPDATED,
        {
            "observation": {
                "old": _describe(old.value, old.observed_at),
                "new": _describe(new.value, new.observed_at) + " (correction)",
            }
        },
    )
    return new


def observations_of(
    membership: Membership,
    measure_id: int,
    *,
    include_superseded: bool = False,
    since: Any = None,
    until: Any = None,
) -> QuerySet[Observation]:
    """A measure's observations, newest first; superseded (corrected) ones only when asked for."""
    measure = get_measure(membership, measure_id)
    qs = Observation.objects.filter(measure=measure)
    if not include_superseded:
        qs = qs.filter(superseded=False)
    if since not in (None, ""):
        qs = qs.filter(observed_at__gte=_timestamp(since, "since"))
    if until not in (None, ""):
        qs = qs.filter(observed_at__lte=_timestamp(until, "until"))
    return qs.order_by("-observed_at", "-id")


def record_refresh(measure: Measure, *, ok: bool, error: str = "") -> None:
    """Note the outcome of a SQL or computed refresh (shown on the measure page and in `truenorth check`)."""
    measure.last_refreshed_at = timezone.now()
    measure.last_refresh_error = "" if ok else (error.strip() or "The refresh failed.")[:5000]
    Measure.objects.filter(pk=measure.pk).update(
        last_refreshed_at=measure.last_refreshed_at, last_refresh_error=measure.last_refresh_error
    )
