"""Value: Evidence-Based Management measures, their observations, data sources and investment."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Goal, Product


# Choices live at module level so each has a distinct name in the OpenAPI schema.
class KVA(models.TextChoices):
    CURRENT_VALUE = "current_value", "Current Value"
    UNREALIZED_VALUE = "unrealized_value", "Unrealized Value"
    TIME_TO_MARKET = "time_to_market", "Time-to-Market"
    ABILITY_TO_INNOVATE = "ability_to_innovate", "Ability to Innovate"


class MeasureDirection(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"


class MeasureSource(models.TextChoices):
    MANUAL = "manual", "Manual entry"
    API = "api", "API push"
    FILE = "file", "CSV/Excel import"
    SQL = "sql", "SQL query"
    COMPUTED = "computed", "Computed from other measures"


class DataSourceKind(models.TextChoices):
    """Where a data source's queries run (issue 14). The label says which engines CI runs for real and
    which are compiled only (their SQL checked against golden files; a site plugs the driver in)."""

    DUCKDB = "duckdb", "DuckDB (embedded; DuckDB, Parquet and CSV files)"
    POSTGRES = "postgres", "PostgreSQL"
    SPARK = "spark", "Apache Spark (Spark Connect URL or local session; tested on a real engine)"
    CHDB = "chdb", "chDB (ClickHouse embedded; Parquet and CSV files; tested on a real engine)"
    CLICKHOUSE = "clickhouse", "ClickHouse server (by URL; its SQL is tested through chDB)"
    TRINO = "trino", "Trino (compiled only; a driver the site installs)"
    BIGQUERY = "bigquery", "BigQuery (compiled only; a driver the site installs)"
    SNOWFLAKE = "snowflake", "Snowflake (compiled only; a driver the site installs)"


class CatalogueMeasure(models.Model):
    """An example Key Value Measure from the EBM guide, seeded for every organisation (editable there),
    from which a product adopts its measures. Custom measures need no catalogue entry."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="measure_catalogue")
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    kva = models.CharField(max_length=30, choices=KVA.choices)
    description = models.TextField(blank=True)
    unit = models.CharField(max_length=30, blank=True)
    direction = models.CharField(
        max_length=10, choices=MeasureDirection.choices, default=MeasureDirection.HIGHER
    )

    class Meta:
        ordering = ("kva", "name", "id")
        constraints = [models.UniqueConstraint(fields=("organisation", "key"), name="unique_catalogue_key")]

    def __str__(self) -> str:
        return self.name


class DataSource(models.Model):
    """A database a measure's SQL query runs against. Its connection settings are encrypted at rest."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="data_sources")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=DataSourceKind.choices)
    # Fernet token of a JSON object (e.g. {"path": "..."} or {"dsn": "postgres://..."}); never shown back.
    config_encrypted = models.TextField()
    timeout_seconds = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(default=timezone.now)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=("organisation", "name"), name="unique_data_source_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Measure(models.Model):
    """A Key Value Measure: what we observe, in which Key Value Area, how often and from where."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="measures")
    # None: an organisation-wide measure; otherwise the product it measures.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, null=True, blank=True, related_name="measures"
    )
    name = models.CharField(max_length=120)
    kva = models.CharField(max_length=30, choices=KVA.choices)
    unit = models.CharField(max_length=30, blank=True)
    direction = models.CharField(
        max_length=10, choices=MeasureDirection.choices, default=MeasureDirection.HIGHER
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cadence_days = models.PositiveSmallIntegerField(
        default=30, help_text="Expected days between observations."
    )
    description = models.TextField(blank=True, help_text="How it is measured.")
    source = models.CharField(max_length=20, choices=MeasureSource.choices, default=MeasureSource.MANUAL)
    data_source = models.ForeignKey(
        DataSource, on_delete=models.PROTECT, null=True, blank=True, related_name="measures"
    )
    # For SQL measures: a read-only query returning one row per observation: (observed_at, value).
    query = models.TextField(blank=True)
    # For computed measures: an expression over other measures' names in this organisation, e.g.
    # `revenue / employees` (names are slugs of measure names; see measures.formula).
    formula = models.TextField(blank=True)
    baseline = models.FloatField(null=True, blank=True)
    target = models.FloatField(null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    # From the EBM catalogue seeded for every organisation (a template key), or "" for custom measures.
    catalogue_key = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Refresh state for SQL and computed measures (the failure is shown on the measure page and in
    # `truenorth check`; existing observations are kept).
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_refresh_error = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("kva", "name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("organisation", "product", "name"), name="unique_measure_name_per_product"
            ),
            models.UniqueConstraint(
                fields=("organisation", "name"),
                condition=models.Q(product__isnull=True),
                name="unique_organisation_measure_name",
            ),
        ]
        indexes = [models.Index(fields=("organisation", "product", "kva"))]

    def __str__(self) -> str:
        return self.name


class ObservationBatch(models.Model):
    """One ingestion (API batch, file import, SQL refresh): all of its rows land, or none.

    A client-chosen idempotency key makes a retried batch a no-op instead of a double count."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=20, choices=MeasureSource.choices)
    rows = models.PositiveIntegerField(default=0)
    # SHA-256 of the batch's rows (services.batch_digest): a key reused with other rows is a 409, not a
    # silent replay. Blank for batches stored before it existed (their key replays as before).
    payload_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("organisation", "idempotency_key"),
                condition=~models.Q(idempotency_key=""),
                name="unique_batch_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.rows} rows)"


class Observation(models.Model):
    """A value of a measure at a time. Append-only: a correction is a new row that supersedes this one.

    The database refuses UPDATE (except `superseded` false → true) and DELETE (migration 0004), and
    holds at most one current (not superseded) value per measure and time."""

    # PROTECT: evidence is never deleted along with its measure (measures are archived instead).
    measure = models.ForeignKey(Measure, on_delete=models.PROTECT, related_name="observations")
    value = models.FloatField()
    observed_at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=MeasureSource.choices, default=MeasureSource.MANUAL)
    note = models.CharField(max_length=500, blank=True)
    batch = models.ForeignKey(
        ObservationBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="observations"
    )
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    # Denormalised for fast "current" queries: True once a later correction supersedes this row.
    superseded = models.BooleanField(default=False)
    # PROTECT: setting it to NULL would rewrite evidence (deactivate people instead of deleting them).
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-observed_at", "-id")
        constraints = [
            # Two concurrent writers cannot both store a value of a measure at the same time.
            models.UniqueConstraint(
                fields=("measure", "observed_at"),
                condition=models.Q(superseded=False),
                name="unique_current_observation",
            ),
        ]
        indexes = [
            # Covers the value dashboard's per-bucket means: they are read from the index alone.
            models.Index(
                fields=("measure", "superseded", "observed_at", "value"),
                name="measures_observation_dashboard",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value:g} at {self.observed_at:%Y-%m-%d}"


class Investment(models.Model):
    """Money or effort put into a product (optionally a goal) over a period."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="investments")
    goal = models.ForeignKey(
        Goal, on_delete=models.SET_NULL, null=True, blank=True, related_name="investments"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    # Either an amount, or people x rate (per day) x working days in the period.
    amount = models.FloatField(null=True, blank=True)
    people = models.FloatField(null=True, blank=True)
    daily_rate = models.FloatField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-period_start", "-id")

    def __str__(self) -> str:
        return f"Investment in {self.product} from {self.period_start} to {self.period_end}"


class ValueSettings(models.Model):
    """Per product: which measure is "the value delivered" when comparing with investment."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="value_settings")
    value_measure = models.ForeignKey(
        Measure, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Value settings of {self.product}"


class DailyRollup(models.Model):
    """A measure's current observations on one local day (settings.TIME_ZONE): count, sum, min, max.

    Derived data for the value dashboard (measures/rollups.py): every row equals an aggregate of the
    append-only observations, kept right in the same transaction as every write (a correction
    recomputes its day), and rebuilt from them by `truenorth measure rollups --rebuild`. Days without
    a current observation have no row."""

    # CASCADE: derived rows, never evidence (a measure with observations cannot be deleted anyway).
    # No index of its own: the unique (measure, day) index serves lookups by measure.
    measure = models.ForeignKey(Measure, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    count = models.PositiveIntegerField()
    total = models.FloatField()
    low = models.FloatField()
    high = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=("measure", "day"), name="unique_rollup_day")]
        indexes = [
            # Covers the dashboard's per-bucket sums: read from the index alone.
            models.Index(fields=("measure", "day", "count", "total"), name="measures_rollup_dashboard"),
        ]

    def __str__(self) -> str:
        return f"{self.count} values on {self.day:%Y-%m-%d}"


class RollupState(models.Model):
    """One row: the time zone whose local days the roll-ups were built in, and when they were rebuilt
    (`truenorth check` warns when TIME_ZONE has changed since)."""

    time_zone = models.CharField(max_length=64)
    rebuilt_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Roll-ups in {self.time_zone}"
