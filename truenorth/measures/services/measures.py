"""Measures: define, change and archive them (their history is recorded)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import optional_number as _optional_number
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.measures.models import KVA, CatalogueMeasure, Measure, MeasureDirection, MeasureSource
from truenorth.measures.services._common import (
    _cadence,
    _check_formula,
    _data_source,
    _member_user,
    _product,
    require_query_author,
)
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer

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
