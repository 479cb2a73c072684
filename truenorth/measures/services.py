"""Value: the EBM catalogue, measures, observations (append-only), staleness, balance, investment.

Every rule of the pillar lives here; web views, the API and the CLI call these functions.
Reads take the caller's Membership (which fixes the organisation: nothing outside it is ever found);
writes also take the acting User, need a member (stakeholders read only) and record history.
Observations are never edited or deleted: a correction is a new row that supersedes the old one.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import number as _number
from truenorth.core.validate import observed_time as _observed_time
from truenorth.core.validate import optional_number as _optional_number
from truenorth.core.validate import parse_number
from truenorth.core.validate import required_date as _required_date
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.measures import maths
from truenorth.measures.catalogue import CATALOGUE
from truenorth.measures.models import (
    KVA,
    CatalogueMeasure,
    DataSource,
    Investment,
    Measure,
    MeasureDirection,
    MeasureSource,
    Observation,
    ObservationBatch,
    ValueSettings,
)
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.orgs.services import require_role
from truenorth.strategy.models import Goal, Product, TargetMeasure

MEASURE_FIELDS = (
    "name",
    "kva",
    "product",
    "unit",
    "direction",
    "owner",
    "cadence_days",
    "description",
    "source",
    "data_source",
    "query",
    "formula",
    "baseline",
    "target",
    "target_date",
    "catalogue_key",
    "archived_at",
)
INVESTMENT_FIELDS = (
    "product",
    "goal",
    "period_start",
    "period_end",
    "amount",
    "people",
    "daily_rate",
    "currency",
    "note",
)
# update_measure: the fields it takes, and those that `clear` may empty.
UPDATABLE = {
    "name",
    "kva",
    "product_id",
    "unit",
    "direction",
    "owner_id",
    "cadence_days",
    "description",
    "source",
    "data_source_id",
    "query",
    "formula",
    "baseline",
    "target",
    "target_date",
    "catalogue_key",
}
CLEARABLE = {"product_id", "owner_id", "data_source_id", "baseline", "target", "target_date"}
MAX_TEXT = 5000
MAX_CADENCE_DAYS = 366
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
DUPLICATE_CHECK_CHUNK = 500
BULK_BATCH = 1000


# --- small validators ---------------------------------------------------------------------------


def parse_timestamp(value: Any) -> dt.datetime:
    """An aware datetime from ISO 8601 text, a date (midnight UTC) or a datetime (naive = UTC)."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    else:
        text = "" if value is None else str(value).strip()
        if not text:
            raise ValueError("A time is required.")
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"'{text[:50]}' is not an ISO 8601 time (use e.g. 2026-01-31 or 2026-01-31T09:30:00Z)."
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when


def _timestamp(value: Any, field: str, *, now: dt.datetime | None = None) -> dt.datetime:
    try:
        when = parse_timestamp(value)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    return _observed_time(when, field, now=now)  # not before 1900, not in the future


def _cadence(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"'{value}' is not a whole number of days.", field="cadence_days") from None
    if not math.isfinite(number) or number != int(number):
        raise ValidationFailed(f"'{value}' is not a whole number of days.", field="cadence_days")
    if not 1 <= number <= MAX_CADENCE_DAYS:
        raise ValidationFailed(
            f"Cadence must be between 1 and {MAX_CADENCE_DAYS} days.", field="cadence_days"
        )
    return int(number)


# Measures whose values a refresh writes: no manual or pushed single values (corrections still allowed).
FED_SOURCES = (MeasureSource.SQL, MeasureSource.COMPUTED)


def require_writer(membership: Membership) -> None:
    require_role(membership, Role.MEMBER)


def require_query_author(membership: Membership) -> None:
    """SQL runs as the data source's role: only admins write it (and define sources); members choose
    among the SQL measures and refresh them."""
    if membership.role not in (Role.ADMIN, Role.OWNER):
        raise Forbidden(
            "Only an admin can choose what runs on a data source (a measure's SQL query, an experiment's "
            "evidence settings)."
        )


def _member_user(membership: Membership, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    owner = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if owner is None:
        raise ValidationFailed("No such member in this organisation.", field="owner")
    if not owner.can_write:
        raise ValidationFailed("A stakeholder cannot own a measure; choose a member.", field="owner")
    return owner.user


def _product(membership: Membership, product_id: int | None, field: str = "product") -> Product | None:
    if product_id is None:
        return None
    product = Product.objects.filter(pk=product_id, organisation_id=membership.organisation_id).first()
    if product is None:
        raise ValidationFailed("No such product in this organisation.", field=field)
    return product


def _get_product(membership: Membership, product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id, organisation_id=membership.organisation_id).first()
    if product is None:
        raise NotFound("No such product.")
    return product


def _data_source(membership: Membership, data_source_id: int | None) -> DataSource | None:
    if data_source_id is None:
        return None
    source = DataSource.objects.filter(pk=data_source_id, organisation_id=membership.organisation_id).first()
    if source is None:
        raise ValidationFailed("No such data source in this organisation.", field="data_source")
    return source


def data_source_of(membership: Membership, data_source_id: int | None) -> DataSource | None:
    """The organisation's data source with that id (None for None); 422 on field data_source otherwise."""
    return _data_source(membership, data_source_id)


def _check_formula(formula: str) -> None:
    from truenorth.measures import formula as formula_module  # written alongside; imported lazily

    formula_module.parse(formula)


# --- the catalogue ------------------------------------------------------------------------------


def seed_catalogue(organisation: Organisation) -> int:
    """Give the organisation every EBM example measure it lacks (by key); returns how many were added."""
    have = set(CatalogueMeasure.objects.filter(organisation=organisation).values_list("key", flat=True))
    missing = [
        CatalogueMeasure(
            organisation=organisation,
            key=e.key,
            name=e.name,
            kva=e.kva,
            description=e.description,
            unit=e.unit,
            direction=e.direction,
        )
        for e in CATALOGUE
        if e.key not in have
    ]
    if missing:
        CatalogueMeasure.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def catalogue_of(membership: Membership) -> QuerySet[CatalogueMeasure]:
    return CatalogueMeasure.objects.filter(organisation_id=membership.organisation_id).order_by(
        "kva", "name", "id"
    )


# --- measures -----------------------------------------------------------------------------------


def measures_of(
    membership: Membership,
    *,
    product_id: int | None = None,
    kva: str | None = None,
    include_archived: bool = False,
) -> QuerySet[Measure]:
    qs = Measure.objects.filter(organisation_id=membership.organisation_id).select_related(
        "product", "owner", "data_source"
    )
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    if kva is not None:
        qs = qs.filter(kva=_choice(kva, KVA.values, "kva"))
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    return qs.order_by("kva", "name", "id")


def get_measure(membership: Membership, measure_id: int) -> Measure:
    measure = (
        Measure.objects.select_related("product", "owner", "data_source", "organisation")
        .filter(pk=measure_id, organisation_id=membership.organisation_id)
        .first()
    )
    if measure is None:
        raise NotFound("No such measure.")
    return measure


def _measure_snapshot(measure: Measure) -> dict[str, Any]:
    data = snapshot(measure, MEASURE_FIELDS)
    data["owner"] = measure.owner.email if measure.owner else None
    return data


def _check_name_free(measure: Measure) -> None:
    clash = Measure.objects.filter(
        organisation_id=measure.organisation_id, product=measure.product, name__iexact=measure.name
    )
    if measure.pk:
        clash = clash.exclude(pk=measure.pk)
    if clash.exists():
        where = f"in {measure.product.name}" if measure.product else "at the organisation level"
        raise Conflict(f"A measure called “{measure.name}” already exists {where}.", field="name")


def _check_source(measure: Measure) -> None:
    """The definition a measure's source needs: SQL a data source and a query, computed a formula."""
    if measure.source == MeasureSource.SQL:
        if measure.data_source_id is None:
            raise ValidationFailed("A SQL measure needs a data source.", field="data_source")
        if not measure.query:
            raise ValidationFailed("A SQL measure needs a query.", field="query")
        from truenorth.measures import sources  # sources imports this module

        assert measure.data_source is not None
        sources.check_query(measure.data_source, measure.query)  # e.g. DuckDB: one SELECT; field "query"
    if measure.source == MeasureSource.COMPUTED:
        if not measure.formula:
            raise ValidationFailed("A computed measure needs a formula.", field="formula")
        _check_formula(measure.formula)


def _save_new(measure: Measure) -> None:
    try:
        with transaction.atomic():
            measure.save()
    except IntegrityError:
        raise Conflict(f"A measure called “{measure.name}” already exists.", field="name") from None


@transaction.atomic
def create_measure(
    membership: Membership,
    actor: User,
    *,
    name: str,
    kva: str,
    product_id: int | None = None,
    unit: str = "",
    direction: str = MeasureDirection.HIGHER,
    owner_id: int | None = None,
    cadence_days: int = 30,
    description: str = "",
    source: str = MeasureSource.MANUAL,
    data_source_id: int | None = None,
    query: str = "",
    formula: str = "",
    baseline: float | None = None,
    target: float | None = None,
    target_date: dt.date | str | None = None,
    catalogue_key: str = "",
) -> Measure:
    """A measure of a product (or of the whole organisation when product_id is None)."""
    require_writer(membership)
    product = _product(membership, product_id)
    if product is not None and product.archived_at is not None:
        raise ValidationFailed("This product is archived.", field="product")
    source = _choice(source, MeasureSource.values, "source")
    if source == MeasureSource.SQL:
        require_query_author(membership)
    measure = Measure(
        organisation_id=membership.organisation_id,
        product=product,
        name=_text(name, "name", required=True, max_length=120),
        kva=_choice(kva, KVA.values, "kva"),
        unit=_text(unit, "unit", max_length=30),
        direction=_choice(direction, MeasureDirection.values, "direction"),
        owner=_member_user(membership, owner_id),
        cadence_days=_cadence(cadence_days),
        description=_text(description, "description"),
        source=source,
        data_source=_data_source(membership, data_source_id) if source == MeasureSource.SQL else None,
        query=_text(query, "query", max_length=20000) if source == MeasureSource.SQL else "",
        formula=_text(formula, "formula", max_length=2000) if source == MeasureSource.COMPUTED else "",
        baseline=_optional_number(baseline, "baseline"),
        target=_optional_number(target, "target"),
        target_date=_date(target_date, "target_date"),
        catalogue_key=_text(catalogue_key, "catalogue_key", max_length=60),
    )
    if source != MeasureSource.SQL and (data_source_id is not None or (query or "").strip()):
        raise ValidationFailed("Only a SQL measure has a data source and a query.", field="source")
    if source != MeasureSource.COMPUTED and (formula or "").strip():
        raise ValidationFailed("Only a computed measure has a formula.", field="source")
    _check_source(measure)
    _check_name_free(measure)
    _save_new(measure)
    record(
        membership.organisation,
        measure,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, _measure_snapshot(measure)),
    )
    return measure


def adopt_catalogue_measure(
    membership: Membership, actor: User, catalogue_id: int, product_id: int | None
) -> Measure:
    """A product (or the organisation, with product_id None) starts tracking a catalogue measure."""
    require_writer(membership)
    entry = CatalogueMeasure.objects.filter(
        pk=catalogue_id, organisation_id=membership.organisation_id
    ).first()
    if entry is None:
        raise NotFound("No such catalogue measure.")
    return create_measure(
        membership,
        actor,
        name=entry.name,
        kva=entry.kva,
        product_id=product_id,
        unit=entry.unit,
        direction=entry.direction,
        description=entry.description,
        catalogue_key=entry.key,
    )


def _locked_measure(membership: Membership, measure_id: int, version: int | None) -> Measure:
    get_measure(membership, measure_id)
    measure = (
        Measure.objects.select_for_update(of=("self",)).select_related("product", "owner").get(pk=measure_id)
    )
    _check_version(measure, version)
    return measure


@transaction.atomic
def update_measure(
    membership: Membership,
    actor: User,
    measure_id: int,
    *,
    version: int | None = None,
    clear: Iterable[str] = (),
    **fields: Any,
) -> Measure:
    """Change the given fields (the names create_measure takes); None leaves a field alone.

    To empty a nullable field, name it in `clear` (product_id, owner_id, data_source_id, baseline,
    target, target_date); "" for baseline, target or target_date empties it too. Changing the source
    away from SQL (or computed) drops the query and data source (or the formula); the history keeps
    them. A stale version is a 409."""
    require_writer(membership)
    unknown = set(fields) - UPDATABLE
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"'{name}' cannot be changed here.", field=name)
    clear = set(clear)
    if clear - CLEARABLE:
        name = sorted(clear - CLEARABLE)[0]
        raise ValidationFailed(f"'{name}' cannot be emptied.", field=name)
    measure = _locked_measure(membership, measure_id, version)
    before = _measure_snapshot(measure)
    given = {k: v for k, v in fields.items() if v is not None}
    given.update(dict.fromkeys(clear))
    for key, value in given.items():
        if key == "name":
            measure.name = _text(value, "name", required=True, max_length=120)
        elif key == "kva":
            measure.kva = _choice(value, KVA.values, "kva")
        elif key == "product_id":
            product = _product(membership, value)
            if product is not None and product.archived_at is not None:
                raise ValidationFailed("This product is archived.", field="product")
            measure.product = product
        elif key == "unit":
            measure.unit = _text(value, "unit", max_length=30)
        elif key == "direction":
            measure.direction = _choice(value, MeasureDirection.values, "direction")
        elif key == "owner_id":
            measure.owner = _member_user(membership, value)
        elif key == "cadence_days":
            measure.cadence_days = _cadence(value)
        elif key == "description":
            measure.description = _text(value, "description")
        elif key == "source":
            measure.source = _choice(value, MeasureSource.values, "source")
        elif key == "data_source_id":
            measure.data_source = _data_source(membership, value)
        elif key == "query":
            measure.query = _text(value, "query", max_length=20000)
        elif key == "formula":
            measure.formula = _text(value, "formula", max_length=2000)
        elif key in ("baseline", "target"):
            setattr(measure, key, _optional_number(value, key))
        elif key == "target_date":
            measure.target_date = _date(value, "target_date")
        elif key == "catalogue_key":
            measure.catalogue_key = _text(value, "catalogue_key", max_length=60)
    if measure.source != MeasureSource.SQL:
        if ("query" in given and measure.query) or ("data_source_id" in given and measure.data_source_id):
            raise ValidationFailed("Only a SQL measure has a data source and a query.", field="source")
        measure.query, measure.data_source = "", None
    if measure.source != MeasureSource.COMPUTED:
        if "formula" in given and measure.formula:
            raise ValidationFailed("Only a computed measure has a formula.", field="source")
        measure.formula = ""
    after = _measure_snapshot(measure)
    if measure.source == MeasureSource.SQL and any(
        before.get(key) != after.get(key) for key in ("source", "data_source", "query")
    ):
        require_query_author(membership)
    _check_source(measure)
    _check_name_free(measure)
    changes = diff(before, _measure_snapshot(measure))
    if changes:
        measure.version += 1
        try:
            with transaction.atomic():
                measure.save()
        except IntegrityError:
            raise Conflict(f"A measure called “{measure.name}” already exists.", field="name") from None
        record(membership.organisation, measure, actor, HistoryEntry.Action.UPDATED, changes)
    return measure


def archive_measure(
    membership: Membership, actor: User, measure_id: int, *, archived: bool = True, version: int | None = None
) -> Measure:
    """Archive (or restore) a measure; its observations are kept either way. A stale version is a 409."""
    require_writer(membership)
    with transaction.atomic():
        measure = _locked_measure(membership, measure_id, version)
        if (measure.archived_at is not None) == archived:
            return measure
        before = _measure_snapshot(measure)
        measure.archived_at = timezone.now() if archived else None
        measure.version += 1
        measure.save(update_fields=["archived_at", "version"])
        record(
            membership.organisation,
            measure,
            actor,
            HistoryEntry.Action.UPDATED,
            diff(before, _measure_snapshot(measure)),
        )
    return measure


# --- observations -------------------------------------------------------------------------------


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
            with transaction.atomic():
                Observation.objects.bulk_create(
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
    # The old row stops being current first: the database holds one current value per measure and time.
    # (Setting `superseded` is the one change its append-only trigger allows.)
    Observation.objects.filter(pk=old.pk).update(superseded=True)
    old.superseded = True
    try:
        with transaction.atomic():
            new = Observation.objects.create(
                measure=measure,
                value=number,
                observed_at=old.observed_at,
                source=MeasureSource.MANUAL,
                note=note,
                supersedes=old,
                recorded_by=actor,
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


# --- staleness and balance ----------------------------------------------------------------------


def with_last_observed(qs: QuerySet[Measure]) -> QuerySet[Measure]:
    """Annotate `last_observed_at`: the time of each measure's latest current observation (one query)."""
    return qs.annotate(
        last_observed_at=Max("observations__observed_at", filter=Q(observations__superseded=False))
    )


def with_latest(qs: QuerySet[Measure]) -> QuerySet[Measure]:
    """Annotate each measure's latest current observation (value and time) in the same query."""
    current = Observation.objects.filter(measure=OuterRef("pk"), superseded=False).order_by(
        "-observed_at", "-id"
    )
    return qs.annotate(
        latest_value=Subquery(current.values("value")[:1]),
        latest_at=Subquery(current.values("observed_at")[:1]),
    )

def stale_measures(
    membership: Membership, *, now: dt.datetime | None = None, product_id: int | None = None
) -> list[Measure]:
    """Live measures whose last observation is older than their cadence (or that have none)."""
    now = now or timezone.now()
    qs = with_last_observed(measures_of(membership, product_id=product_id))
    return [m for m in qs if maths.is_stale(getattr(m, "last_observed_at", None), m.cadence_days, now)]


def kva_balance(membership: Membership, product_id: int) -> dict[str, int]:
    """Live measures of the product per Key Value Area (every area present, 0 when empty)."""
    _get_product(membership, product_id)
    counts = dict(
        Measure.objects.filter(
            organisation_id=membership.organisation_id, product_id=product_id, archived_at__isnull=True
        )
        .values_list("kva")
        .annotate(n=Count("id"))
        .values_list("kva", "n")
    )
    return {kva: counts.get(kva, 0) for kva in KVA.values}


def missing_kvas(membership: Membership, product_id: int) -> list[str]:
    """The Key Value Areas the product has no live measure in (EBM looks at all four together)."""
    return [kva for kva, n in kva_balance(membership, product_id).items() if n == 0]


# --- goal targets that track a measure ----------------------------------------------------------


@transaction.atomic
def link_target(membership: Membership, actor: User, target_id: int, measure_id: int | None) -> TargetMeasure:
    """Make a goal's target measure take its values from a measure (None: back to its own values)."""
    require_writer(membership)
    target = (
        TargetMeasure.objects.select_related("goal")
        .filter(pk=target_id, goal__organisation_id=membership.organisation_id)
        .first()
    )
    if target is None:
        raise NotFound("No such target measure.")
    measure = None
    if measure_id is not None:
        measure = Measure.objects.filter(pk=measure_id, organisation_id=membership.organisation_id).first()
        if measure is None:
            raise ValidationFailed("No such measure in this organisation.", field="measure")
    old = target.measure
    if old == measure:
        return target
    target.measure = measure
    target.save(update_fields=["measure"])
    record(
        membership.organisation,
        target.goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {
            f"target {target.name}: measure": {
                "old": str(old) if old else None,
                "new": str(measure) if measure else None,
            }
        },
    )
    return target


# --- investment and return ----------------------------------------------------------------------


def invested(investment: Investment) -> float:
    """The investment's amount, or people x daily rate x working days of its period."""
    if investment.amount is not None:
        return investment.amount
    days = maths.working_days(investment.period_start, investment.period_end)
    return (investment.people or 0.0) * (investment.daily_rate or 0.0) * days


@transaction.atomic
def add_investment(
    membership: Membership,
    actor: User,
    product_id: int,
    *,
    period_start: Any,
    period_end: Any,
    amount: Any = None,
    people: Any = None,
    daily_rate: Any = None,
    currency: str = "EUR",
    goal_id: int | None = None,
    note: str = "",
) -> Investment:
    """Money (amount) or effort (people x daily rate over the period's working days) put into a product."""
    require_writer(membership)
    product = _get_product(membership, product_id)
    start = _required_date(period_start, "period_start")
    end = _required_date(period_end, "period_end")
    if end < start:
        raise ValidationFailed("The period must not end before it starts.", field="period_end")
    amount_n = _optional_number(amount, "amount")
    people_n = _optional_number(people, "people")
    rate_n = _optional_number(daily_rate, "daily_rate")
    effort = people_n is not None or rate_n is not None
    if amount_n is not None and effort:
        raise ValidationFailed("Give either an amount or people and a daily rate, not both.", field="amount")
    if amount_n is None and not effort:
        raise ValidationFailed("Give an amount, or people and a daily rate.", field="amount")
    if amount_n is not None and amount_n < 0:
        raise ValidationFailed("An amount cannot be negative.", field="amount")
    if effort:
        if people_n is None:
            raise ValidationFailed("How many people (full-time equivalents)?", field="people")
        if rate_n is None:
            raise ValidationFailed("What does one person cost per day?", field="daily_rate")
        if people_n <= 0:
            raise ValidationFailed("People must be more than 0.", field="people")
        if rate_n < 0:
            raise ValidationFailed("A daily rate cannot be negative.", field="daily_rate")
        if maths.working_days(start, end) == 0:
            raise ValidationFailed("The period has no working day (Monday to Friday).", field="period_end")
    currency = _text(currency, "currency", required=True, max_length=3).upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise ValidationFailed("A currency is a three-letter ISO 4217 code such as EUR.", field="currency")
    goal = None
    if goal_id is not None:
        goal = Goal.objects.filter(pk=goal_id, organisation_id=membership.organisation_id).first()
        if goal is None:
            raise ValidationFailed("No such goal in this organisation.", field="goal")
        if goal.product_id != product.pk:
            raise ValidationFailed(f"That goal is not one of {product.name}'s goals.", field="goal")
    investment = Investment.objects.create(
        organisation_id=membership.organisation_id,
        product=product,
        goal=goal,
        period_start=start,
        period_end=end,
        amount=amount_n,
        people=people_n,
        daily_rate=rate_n,
        currency=currency,
        note=_text(note, "note", max_length=500),
        created_by=actor,
    )
    record(
        membership.organisation,
        investment,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, snapshot(investment, INVESTMENT_FIELDS)),
    )
    return investment


def investments_of(membership: Membership, product_id: int) -> QuerySet[Investment]:
    product = _get_product(membership, product_id)
    return Investment.objects.filter(
        organisation_id=membership.organisation_id, product=product
    ).select_related("goal")


def value_measure_of(membership: Membership, product_id: int) -> Measure | None:
    _get_product(membership, product_id)
    settings = ValueSettings.objects.filter(product_id=product_id).select_related("value_measure").first()
    return settings.value_measure if settings else None


@transaction.atomic
def set_value_measure(
    membership: Membership, actor: User, product_id: int, measure_id: int | None
) -> ValueSettings:
    """Choose the measure that stands for "value delivered" by the product (None: no value measure)."""
    require_writer(membership)
    product = _get_product(membership, product_id)
    measure = None
    if measure_id is not None:
        measure = Measure.objects.filter(pk=measure_id, organisation_id=membership.organisation_id).first()
        if measure is None:
            raise ValidationFailed("No such measure in this organisation.", field="value_measure")
        if measure.product_id not in (None, product.pk):
            raise ValidationFailed(
                f"Choose a measure of {product.name} (or of the whole organisation).", field="value_measure"
            )
    settings, _ = ValueSettings.objects.select_for_update().get_or_create(product=product)
    old = settings.value_measure
    if old != measure:
        settings.value_measure = measure
        settings.save(update_fields=["value_measure"])
        record(
            membership.organisation,
            product,
            actor,
            HistoryEntry.Action.UPDATED,
            {"value measure": {"old": str(old) if old else None, "new": str(measure) if measure else None}},
        )
    return settings


class ROIPoint(NamedTuple):
    period: dt.date  # the first day of the month
    invested: float  # invested in that month (investments spread over their periods)
    value: float | None  # the value measure's value in force at the end of the month


@dataclass
class ROI:
    """Are we getting a return? Investment in a window against the change of the value measure."""

    since: dt.date | None
    until: dt.date | None
    currency: str | None
    invested: float | None
    value_measure: Measure | None
    value_start: float | None
    value_end: float | None
    value_delta: float | None
    # value_delta in the good direction (positive = better), and per unit of currency invested
    improvement: float | None
    delta_per_unit: float | None
    series: list[ROIPoint] = field(default_factory=list)
    reason: str = ""


def _share_in(investment: Investment, start: dt.date, end: dt.date) -> float:
    """The part of an investment that falls in [start, end]: by working days for effort, by calendar
    days for amounts."""
    lo, hi = max(start, investment.period_start), min(end, investment.period_end)
    if hi < lo:
        return 0.0
    if investment.amount is not None:
        total_days = (investment.period_end - investment.period_start).days + 1
        return investment.amount * ((hi - lo).days + 1) / total_days
    days = maths.working_days(lo, hi)
    return (investment.people or 0.0) * (investment.daily_rate or 0.0) * days


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    out = []
    first = start.replace(day=1)
    while first <= end:
        following = (first + dt.timedelta(days=32)).replace(day=1)
        out.append((first, following - dt.timedelta(days=1)))
        first = following
    return out


def _end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


def _value_at(points: Sequence[tuple[dt.datetime, float]], moment: dt.datetime) -> float | None:
    value = None
    for when, v in points:
        if when > moment:
            break
        value = v
    return value


def return_on_investment(
    membership: Membership, product_id: int, *, since: Any = None, until: Any = None
) -> ROI:
    """Investment in [since, until] (default: from the first investment to today) against the change in
    the value measure over the same window: its value in force at the start (or, failing that, its
    first value in the window) and at the end. Fields without evidence are None; `reason` says why."""
    product = _get_product(membership, product_id)
    investments = list(Investment.objects.filter(product=product).order_by("period_start", "id"))
    measure = value_measure_of(membership, product.pk)
    start = _date(since, "since")
    end = _date(until, "until") or timezone.now().date()
    if start is None and investments:
        start = investments[0].period_start
    reasons: list[str] = []
    if start is not None and end < start:
        raise ValidationFailed("The period must not end before it starts.", field="until")
    roi = ROI(start, end, None, None, measure, None, None, None, None, None)
    in_window = [
        i for i in investments if start is not None and i.period_end >= start and i.period_start <= end
    ]
    if not in_window:
        reasons.append("No investment is recorded for this product in the period.")
    else:
        currencies = sorted({i.currency for i in in_window})
        if len(currencies) > 1:
            reasons.append(
                f"Investments are in several currencies ({', '.join(currencies)}), so they cannot be added up."
            )
        else:
            assert start is not None
            roi.currency = currencies[0]
            roi.invested = sum(_share_in(i, start, end) for i in in_window)
    points: list[tuple[dt.datetime, float]] = []
    if measure is None:
        reasons.append("No value measure is chosen for this product.")
    elif start is not None:
        base = Observation.objects.filter(measure=measure, superseded=False)
        before = (
            base.filter(observed_at__lt=dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC))
            .order_by("-observed_at", "-id")
            .values_list("observed_at", "value")
            .first()
        )
        inside = list(
            base.filter(
                observed_at__gte=dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC),
                observed_at__lte=_end_of_day(end),
            )
            .order_by("observed_at", "id")
            .values_list("observed_at", "value")
        )
        points = ([before] if before else []) + inside
        if len(points) < 2:
            reasons.append(
                f"“{measure.name}” has {'no observation' if not points else 'only one observation'} "
                "in the period, so its change is unknown."
            )
        else:
            roi.value_start, roi.value_end = points[0][1], points[-1][1]
            roi.value_delta = roi.value_end - roi.value_start
            roi.improvement = (
                -roi.value_delta if measure.direction == MeasureDirection.LOWER else roi.value_delta
            )
            if roi.invested:
                roi.delta_per_unit = roi.improvement / roi.invested
            elif roi.invested == 0:
                reasons.append("Nothing was invested in the period, so there is no return per unit.")
    elif start is None:
        reasons.append("Give the start of the period.")
    if start is not None:
        for first, last in _months(start, end):
            spent = sum(_share_in(i, max(first, start), min(last, end)) for i in in_window)
            roi.series.append(ROIPoint(first, spent, _value_at(points, _end_of_day(min(last, end)))))
    roi.reason = " ".join(reasons)
    return roi


# --- export -------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "measure_id",
    "measure",
    "product",
    "kva",
    "unit",
    "observation_id",
    "observed_at",
    "value",
    "source",
    "note",
    "superseded",
    "supersedes",
    "recorded_at",
)


def _cell(text: str) -> str:
    """Keep spreadsheets from running text as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_observations(membership: Membership, measure_id: int | None, fmt: str) -> str:
    """Every observation (superseded ones included, flagged) of one measure or of every measure."""
    fmt = _choice(fmt, ("csv", "json"), "format")
    if measure_id is not None:
        measures = [get_measure(membership, measure_id)]
    else:
        measures = list(measures_of(membership, include_archived=True).order_by("id"))
    by_id = {m.pk: m for m in measures}
    observations = (
        Observation.objects.filter(measure_id__in=list(by_id))
        .order_by("measure_id", "observed_at", "id")
        .values_list(
            "measure_id",
            "id",
            "observed_at",
            "value",
            "source",
            "note",
            "superseded",
            "supersedes_id",
            "recorded_at",
        )
    )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for mid, oid, at, value, source, note, superseded, supersedes, recorded in observations.iterator(
            2000
        ):
            m = by_id[mid]
            writer.writerow(
                [
                    mid,
                    _cell(m.name),
                    _cell(m.product.name) if m.product else "",
                    m.kva,
                    _cell(m.unit),
                    oid,
                    at.isoformat(),
                    repr(value),
                    source,
                    _cell(note),
                    "true" if superseded else "false",
                    supersedes or "",
                    recorded.isoformat(),
                ]
            )
        return out.getvalue()
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for mid, oid, at, value, source, note, superseded, supersedes, recorded in observations.iterator(2000):
        grouped[mid].append(
            {
                "id": oid,
                "observed_at": at.isoformat(),
                "value": value,
                "source": source,
                "note": note,
                "superseded": superseded,
                "supersedes": supersedes,
                "recorded_at": recorded.isoformat(),
            }
        )
    doc = {
        "measures": [
            {
                "id": m.pk,
                "name": m.name,
                "product": m.product.name if m.product else None,
                "kva": m.kva,
                "unit": m.unit,
                "direction": m.direction,
                "cadence_days": m.cadence_days,
                "description": m.description,
                "source": m.source,
                "baseline": m.baseline,
                "target": m.target,
                "target_date": m.target_date.isoformat() if m.target_date else None,
                "catalogue_key": m.catalogue_key,
                "archived": m.archived_at is not None,
                "observations": grouped.get(m.pk, []),
            }
            for m in measures
        ]
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
