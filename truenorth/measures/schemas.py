"""Value API schemas: what the measures API (truenorth/measures/api.py) reads and answers.

Input schemas refuse unknown fields and NUL characters in text (PostgreSQL cannot store them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.utils import timezone
from ninja import Schema
from pydantic import Field, field_validator

from truenorth.core.schemas import ObjectId, StrictSchema
from truenorth.measures import services
from truenorth.measures.models import (
    KVA,
    DataSourceKind,
    MeasureDirection,
    MeasureSource,
)

MAX_LIST = 1000
MAX_BATCH = 10_000
VERSION_HELP = "Required: the version you read; a stale one is refused with 409."


# --- output schemas -------------------------------------------------------------------------------


class MeasureUserRef(Schema):
    id: int
    email: str
    name: str


class CatalogueOut(Schema):
    id: int
    key: str
    name: str
    kva: str
    description: str
    unit: str
    direction: str


class MeasureOut(Schema):
    id: int
    product: int | None = Field(description="None for an organisation-wide measure.")
    name: str
    kva: str
    unit: str
    direction: str
    owner: MeasureUserRef | None
    cadence_days: int
    description: str
    source: str
    data_source: int | None
    query: str
    formula: str
    baseline: float | None
    target: float | None
    target_date: dt.date | None
    catalogue_key: str
    created_at: dt.datetime
    archived_at: dt.datetime | None
    version: int
    latest_value: float | None = Field(description="The latest current (not superseded) observation.")
    latest_observed_at: dt.datetime | None
    stale: bool = Field(description="Stale evidence: no observation within its cadence.")
    last_refreshed_at: dt.datetime | None = Field(description="SQL and computed measures: the last refresh.")
    last_refresh_error: str = Field(description="Why the last refresh failed; empty when it worked.")


class ObservationOut(Schema):
    id: int
    measure: int
    value: float
    observed_at: dt.datetime
    source: str
    note: str
    batch: int | None
    supersedes: int | None
    superseded: bool
    recorded_by: str | None
    recorded_at: dt.datetime


class BatchOut(Schema):
    batch: int = Field(description="The batch id.")
    idempotency_key: str
    created: int = Field(description="Observations this request saved (0 when replayed).")
    rows: int = Field(description="Observations in the batch.")
    replayed: bool = Field(description="True: the key was seen before and nothing new was saved.")


class RowErrorOut(Schema):
    line: int | None = Field(description="Line number in the file (1 = the header).")
    field: str | None
    message: str


class PreviewRowOut(Schema):
    line: int
    measure: str
    observed_at: str
    value: str
    note: str


class ImportPreviewOut(Schema):
    total: int = Field(description="Data rows checked (the whole file unless `more`).")
    valid: int = Field(description="Rows that would be saved.")
    invalid: int = Field(description="Rows with an error (listed in errors).")
    more: bool = Field(description="The file has more rows than the preview checked; the import checks all.")
    rows: list[PreviewRowOut] = Field(description="The first rows of the file, as read.")
    errors: list[RowErrorOut]
    measures: dict[str, int] = Field(description="Rows per matched measure name.")


class KvaBalanceOut(Schema):
    product: int
    counts: dict[str, int] = Field(description="Live measures per Key Value Area.")
    missing: list[str] = Field(description="Key Value Areas with no measure: the product cannot see them.")
    balanced: bool


class InvestmentOut(Schema):
    id: int
    product: int
    goal: int | None
    period_start: dt.date
    period_end: dt.date
    amount: float | None
    people: float | None
    daily_rate: float | None
    currency: str
    note: str
    created_at: dt.datetime
    created_by: str | None


class ValueMeasureOut(Schema):
    product: int
    value_measure: int | None


class MeasureRef(Schema):
    id: int
    name: str
    unit: str
    direction: str


class ROIPointOut(Schema):
    period: dt.date = Field(description="The first day of the month.")
    invested: float = Field(description="Invested in that month.")
    value: float | None = Field(description="The value measure's value in force at the end of the month.")


class ROIOut(Schema):
    product: int
    since: dt.date | None
    until: dt.date | None
    currency: str | None
    invested: float | None
    value_measure: MeasureRef | None
    value_start: float | None
    value_end: float | None
    value_delta: float | None
    improvement: float | None = Field(description="The value's change in its better direction.")
    delta_per_unit: float | None = Field(description="Improvement per unit of currency invested.")
    series: list[ROIPointOut]
    reason: str = Field(description="Why a figure is unknown; empty when every figure is known.")


class DataSourceOut(Schema):
    id: int
    name: str
    kind: str
    dialect: str = Field(description="The SQL dialect evidence queries are compiled in for this kind.")
    tested_on_real_engine: bool = Field(
        description="Whether TrueNorth's CI runs this kind on the real engine (false: its SQL is only "
        "compiled and checked against golden files)."
    )
    config: dict[str, Any] = Field(
        description="Admins only (others get {}): DuckDB paths, the PostgreSQL address with its "
        "password masked, the other kinds' settings with every secret (password, token, key) masked. "
        "The stored secrets are never shown back."
    )
    timeout_seconds: int
    last_checked_at: dt.datetime | None
    last_error: str
    version: int
    measures: int = Field(description="Measures whose query runs against it.")


class SourceTestOut(Schema):
    ok: bool
    detail: str = Field(description="What was reached, or why it failed.")
    last_checked_at: dt.datetime | None


# --- input schemas --------------------------------------------------------------------------------


def no_nul(value: Any) -> Any:
    # PostgreSQL cannot store NUL characters in text: refuse them as bad input rather than fail later.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Must not contain NUL characters.")
    return value


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


class In(StrictSchema):
    """Input: unknown fields refused, and text without NUL characters."""

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return no_nul(value)


WHEN_HELP = "ISO 8601; without an offset: the server's time zone."


class MeasureIn(In):
    name: str = Field(min_length=1, max_length=120)
    kva: KVA
    product: ObjectId | None = Field(None, description="None: an organisation-wide measure.")
    unit: str = Field("", max_length=30)
    direction: MeasureDirection = MeasureDirection.HIGHER
    owner: ObjectId | None = Field(None, description="User id of a member.")
    cadence_days: int = Field(
        30, ge=1, le=services.MAX_CADENCE_DAYS, description="Expected days between observations."
    )
    description: str = Field("", max_length=services.MAX_TEXT)
    source: MeasureSource = MeasureSource.MANUAL
    data_source: ObjectId | None = Field(None, description="SQL measures: the data source to query.")
    query: str = Field("", max_length=20_000)
    formula: str = Field("", max_length=2_000)
    baseline: float | None = Field(None, allow_inf_nan=False)
    target: float | None = Field(None, allow_inf_nan=False)
    target_date: dt.date | None = None


class MeasurePatch(In):
    version: int = Field(description=VERSION_HELP)
    product: ObjectId | None = Field(None, description="Move it to another product; null: organisation-wide.")
    name: str | None = Field(None, min_length=1, max_length=120)
    kva: KVA | None = None
    unit: str | None = Field(None, max_length=30)
    direction: MeasureDirection | None = None
    owner: ObjectId | None = Field(None, description="User id of a member; null clears the owner.")
    cadence_days: int | None = Field(None, ge=1, le=services.MAX_CADENCE_DAYS)
    description: str | None = Field(None, max_length=services.MAX_TEXT)
    source: MeasureSource | None = None
    data_source: ObjectId | None = None
    query: str | None = Field(None, max_length=20_000)
    formula: str | None = Field(None, max_length=2_000)
    baseline: float | None = Field(None, allow_inf_nan=False)
    target: float | None = Field(None, allow_inf_nan=False)
    target_date: dt.date | None = None


class AdoptIn(In):
    catalogue: ObjectId = Field(description="The catalogue entry's id.")
    product: ObjectId = Field(description="The product that adopts it.")


class ObservationIn(In):
    value: float = Field(allow_inf_nan=False)
    observed_at: dt.datetime | None = Field(None, description=f"Defaults to now. {WHEN_HELP}")
    note: str = Field("", max_length=500)

    @field_validator("observed_at", mode="after")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        return aware(value)


class BatchRowIn(In):
    measure: ObjectId
    value: float = Field(allow_inf_nan=False)
    observed_at: dt.datetime = Field(description=WHEN_HELP)
    note: str = Field("", max_length=500)

    @field_validator("observed_at", mode="after")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        aware_value = aware(value)
        assert aware_value is not None
        return aware_value


class BatchIn(In):
    idempotency_key: str = Field(
        "",
        max_length=200,
        description="Choose one per batch: a retry with the same key saves nothing twice.",
    )
    observations: list[BatchRowIn] = Field(min_length=1, max_length=MAX_BATCH)


class CorrectionIn(In):
    value: float = Field(allow_inf_nan=False)
    note: str = Field("", max_length=500)


class InvestmentIn(In):
    period_start: dt.date
    period_end: dt.date
    amount: float | None = Field(None, ge=0, allow_inf_nan=False, description="Money spent; or give people.")
    people: float | None = Field(None, gt=0, allow_inf_nan=False, description="Full-time people.")
    daily_rate: float | None = Field(None, ge=0, allow_inf_nan=False, description="Cost per person-day.")
    currency: str = Field("EUR", min_length=3, max_length=3)
    goal: ObjectId | None = Field(None, description="The goal this investment serves.")
    note: str = Field("", max_length=500)


class ValueMeasureIn(In):
    value_measure: ObjectId | None = Field(description="The measure of value delivered; null clears it.")


class DataSourceIn(In):
    name: str = Field(min_length=1, max_length=120)
    kind: DataSourceKind
    config: dict[str, Any] = Field(
        description="Connection settings of the kind, stored encrypted (secrets never shown back): "
        'duckdb {"path", "files"}; postgres {"dsn": "postgres://…"}; spark {"url": "sc://host:15002"} or '
        '{"master": "local[2]"}, with "tables": {name: path}; chdb {"tables": {name: path}}; clickhouse '
        '{"url": "https://host:8443", "username", "password", "database"}; trino/bigquery/snowflake '
        '{"driver": a name the server offers, "params": {…}}. Paths lie in the organisation\'s directory.'
    )
    timeout_seconds: int = Field(30, ge=1, le=600)


class DataSourcePatch(In):
    version: int = Field(description=VERSION_HELP)
    name: str | None = Field(None, min_length=1, max_length=120)
    config: dict[str, Any] | None = Field(
        None, description="Replaces the stored settings; a secret left as ******** keeps the stored one."
    )
    timeout_seconds: int | None = Field(None, ge=1, le=600)


class MeasureVersionQuery(Schema):
    version: int = Field(description=VERSION_HELP)


class MeasureFilter(Schema):
    product: ObjectId | None = None
    kva: KVA | None = None
    stale: bool | None = Field(None, description="true: only stale measures; false: only fresh ones.")
    include_archived: bool = False
    limit: int = Field(500, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class ObservationFilter(Schema):
    include_superseded: bool = Field(False, description="Also the observations later corrections replaced.")
    since: dt.datetime | None = Field(None, description=WHEN_HELP)
    until: dt.datetime | None = Field(None, description=WHEN_HELP)
    limit: int = Field(500, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class MeasureExportFilter(Schema):
    format: Literal["csv", "json"] = "csv"


class MeasureImportFilter(Schema):
    preview: bool = Field(False, description="true: parse and check only; nothing is saved.")
    idempotency_key: str = Field("", max_length=200, description="A retried import with it saves nothing.")

    @field_validator("idempotency_key", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return no_nul(value)


class PeriodFilter(Schema):
    since: dt.date | None = None
    until: dt.date | None = None


class MeasureListFilter(Schema):
    limit: int = Field(200, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)
