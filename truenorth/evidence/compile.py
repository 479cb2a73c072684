"""Compile metric definitions into one SQL query per experiment, in any SQLGlot dialect.

The query is written once, in DuckDB's dialect, from pieces SQLGlot renders (quoted identifiers, escaped
string literals, validated predicates), then parsed and generated for the target dialect. Adding an
engine is therefore a dialect name here plus an `Engine` in `run.py`; the SQL is never rewritten per
engine, except that a quantile aggregate becomes the dialect's own (`QUANTILE_FUNCTIONS`).

Shape (one scan of the events joined to the experiment's assignments):

1. ``exposures``, ``a``: the experiment's units (one row per unit) with their variation, first exposure,
   the bounds of every conversion window (exposure + delay, exposure + window) and a 0/1 flag per
   exposure window (first exposed in [start, end)), computed once per unit, not once per event. A unit
   assigned to more than one variation is *excluded*: its variation is NULL and ``excluded`` is 1, so it
   counts in no variation's metrics (never twice) and its own summary row says how many there are.
2. ``j``: the experiment's units joined to their events, with one boolean column per distinct event
   condition (event names, period relative to exposure, predicate).
3. ``u``: one row per unit, a column per distinct per-unit quantity, by conditional aggregation over its
   events (events from exposure + delay, before exposure + window; units without events count 0 for
   count, sum and proportion; NULL — left out — for mean).
4. per variation: units, and per metric n, sum, sum of squares, plus the denominator's sums and the
   cross-product for ratios and the covariate's sums and cross-product for CUPED; the last column,
   ``excluded``, is 0 on those rows and 1 on the one row (variation NULL) of the excluded units.
   A unit outside a metric's exposure window has a NULL value for it (left out of its n).

Quantile metrics: the query above counts their values per variation (``n``); `compile_quantiles` then
builds the second query (same CTEs, no per-unit step) returning per variation the quantile and the two
bracketing quantiles at the levels `quantile_levels` derives from that n — still only summary rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from truenorth.evidence.metrics import Metric, MetricError, Selection, parse_predicate

#: Dialects tested against a real engine; any other SQLGlot dialect name is accepted for transpiling.
ENGINE_DIALECTS = ("duckdb", "postgres")
_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62}){0,2}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
#: A table may also be one Parquet or CSV file (read by DuckDB): a path ending in one of these.
FILE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv")
_FILE = re.compile(r"^[^\x00-\x1f*?\[\]{}]{1,500}$")
TABLE_FIELDS = ("assignments", "events")
#: The last summary column: 1 on the row of the units assigned to more than one variation (their
#: ``variation`` is NULL; they count in no metric), 0 on every variation's row.
EXCLUDED = "excluded"
COLUMN_FIELDS = (
    "unit_id",
    "experiment",
    "variation",
    "first_exposure_at",
    "event_unit_id",
    "at",
    "name",
    "value",
)


def is_file(spec: str) -> bool:
    """Whether a table spec names a Parquet/CSV file rather than a ``[schema.]table``."""
    return spec.lower().endswith(FILE_SUFFIXES)


@dataclass(frozen=True)
class Tables:
    """Where a user's data lives: for each of the two tables a name (``[catalog.][schema.]table``) or a
    Parquet/CSV file path (DuckDB only; callers resolve and check paths before compiling), and their
    column names. The defaults are the historic names, so a settings without a mapping keeps working."""

    assignments: str = "assignments"
    events: str = "events"
    unit_id: str = "unit_id"
    experiment: str = "experiment"
    variation: str = "variation"
    first_exposure_at: str = "first_exposure_at"
    event_unit_id: str = "unit_id"
    at: str = "at"
    name: str = "name"
    value: str = "value"

    def __post_init__(self) -> None:
        for attr in TABLE_FIELDS:
            spec = getattr(self, attr)
            if not isinstance(spec, str):
                raise MetricError(f"{spec!r} is not a table name", field=f"tables.{attr}")
            if is_file(spec):
                if not _FILE.match(spec):
                    raise MetricError(
                        f"{spec[:80]!r} is not a file name (one .parquet or .csv file, no wildcards)",
                        field=f"tables.{attr}",
                    )
            elif not _QUALIFIED.match(spec):
                raise MetricError(
                    f"{spec[:80]!r} is not a table name ([schema.]table of letters, digits and _) "
                    f"nor a .parquet/.csv file",
                    field=f"tables.{attr}",
                )
        for attr in COLUMN_FIELDS:
            value = getattr(self, attr)
            if not isinstance(value, str) or not _COLUMN.match(value):
                raise MetricError(
                    f"{str(value)[:80]!r} is not a column name (letters, digits and _)",
                    field=f"tables.{attr}",
                )

    def source_sql(self, attr: str, dialect: str) -> str:
        """The FROM item of table ``attr``: a quoted table name, or DuckDB's reader of the file."""
        return table_sql(getattr(self, attr), dialect, field=f"tables.{attr}")


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def quoted_column(name: str, dialect: str) -> str:
    """A column name quoted for ``dialect`` (validate it with `Tables` first)."""
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def quoted_table(name: str, dialect: str) -> str:
    """A ``[catalog.][schema.]table`` name quoted for ``dialect`` (validate it with `Tables` first)."""
    return ".".join(quoted_column(part, dialect) for part in name.split("."))


def table_sql(spec: str, dialect: str, *, field: str = "tables") -> str:
    """A FROM item for ``spec`` in ``dialect``: a quoted ``[schema.]table``, or for a Parquet/CSV file
    ``read_parquet('path')`` / ``read_csv_auto('path')`` (the path an escaped literal; DuckDB only)."""
    if not is_file(spec):
        return quoted_table(spec, dialect)
    if dialect != "duckdb":
        raise MetricError(
            f"{spec[:80]!r} is a file: files are read by a DuckDB data source; on {dialect} name a table",
            field=field,
        )
    reader = "read_parquet" if spec.lower().endswith(".parquet") else "read_csv_auto"
    return exp.func(reader, exp.Literal.string(spec)).sql(dialect="duckdb")


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


def _days(n: int) -> str:
    return f"INTERVAL '{int(n)}' DAY"


def _hours(n: int) -> str:
    return f"INTERVAL '{int(n)}' HOUR"


def _timestamp(text: str) -> str:
    """A validated ``YYYY-MM-DD HH:MM:SS`` (metrics.timestamp_text) as a TIMESTAMP literal."""
    return f"CAST({_literal(text)} AS TIMESTAMP)"


def quantile_levels(nu: float, n: float) -> tuple[float, float]:
    """The levels of the order statistics bracketing the ``nu`` quantile of ``n`` values:
    ``nu ∓ z_{0.975}·sqrt(nu(1 - nu)/n)``, clipped to [0, 1] (`truenorth.stats.quantile`'s input)."""
    if n <= 0:
        return nu, nu
    half = _Z * math.sqrt(nu * (1 - nu) / n)
    return max(0.0, nu - half), min(1.0, nu + half)


#: z_{0.975} (as truenorth.stats.quantile.Z; kept here so the pure compile layer needs no scipy).
_Z = 1.959963984540054

#: How each dialect computes a quantile of a column's non-NULL values (all linear interpolation
#: between order statistics, i.e. numpy's default "linear" / R type 7, unless marked approximate).
QUANTILE_FUNCTIONS: dict[str, str] = {
    "duckdb": "QUANTILE_CONT(x, p): exact",
    "postgres": "PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x): exact",
    "snowflake": "PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x): exact",
    "spark": "PERCENTILE(x, p): exact (collects each group's values in memory)",
    "databricks": "PERCENTILE(x, p): exact (collects each group's values in memory)",
    "clickhouse": "quantileExactInclusive(p)(x): exact",
    "trino": "APPROX_PERCENTILE(x, p): approximate (a sketch; no exact bound documented)",
    "presto": "APPROX_PERCENTILE(x, p): approximate (a sketch; no exact bound documented)",
    "athena": "APPROX_PERCENTILE(x, p): approximate (a sketch; no exact bound documented)",
}


def quantile_sql(dialect: str) -> Callable[[exp.Expression], exp.Expression]:
    """A SQLGlot transform turning the builder's ``QUANTILE_CONT(x, p)`` (exp.PercentileCont) into the
    quantile aggregate of ``dialect`` (`QUANTILE_FUNCTIONS`); refuses a dialect without one."""
    if dialect not in QUANTILE_FUNCTIONS:
        raise MetricError(
            f"quantile metrics are not computed on {dialect}; engines with a quantile aggregate: "
            f"{', '.join(sorted(QUANTILE_FUNCTIONS))}",
            field="aggregation",
        )

    def transform(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.PercentileCont) or dialect == "duckdb":
            return node
        value, level = node.this, node.expression
        if dialect in ("postgres", "snowflake"):
            return exp.WithinGroup(
                this=exp.PercentileCont(this=level),
                expression=exp.Order(expressions=[exp.Ordered(this=value)]),
            )
        if dialect in ("spark", "databricks"):
            return exp.Quantile(this=value, quantile=level)
        if dialect == "clickhouse":
            return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[level], params=[value])
        return exp.ApproxQuantile(this=value, quantile=level)

    return transform


@dataclass(frozen=True)
class Column:
    """One output column of the summary query: ``metric`` and the statistic it holds."""

    metric: str
    stat: str

    @property
    def alias(self) -> str:
        return f"{self.metric}__{self.stat}"


class _Builder:
    """Collects the query's pieces. Each distinct event condition becomes one boolean column of the
    joined rows (``c0``, ``c1``, …), each distinct exposure window a 0/1 column per unit (``w0``, …)
    and each distinct per-unit aggregate one column of ``u`` (``q0``, …), so metrics sharing a
    selection (revenue and revenue per page view, say) share the work."""

    def __init__(self, tables: Tables) -> None:
        self.t = tables
        self.conditions: dict[str, str] = {}
        self.bounds: dict[str, str] = {}
        self.unit_columns: dict[str, str] = {}
        self.summary_columns: list[str] = []
        self.outputs: list[str] = []

    def condition(self, select: Selection, *, pre_days: int | None = None) -> str:
        """The alias of the boolean column that is true for the events ``select`` counts."""
        t = self.t
        at, name = f"e.{_ident(t.at)}", f"e.{_ident(t.name)}"
        parts = [f"{name} IN ({', '.join(_literal(n) for n in select.events)})"]
        if pre_days is None:
            if select.delay_hours:
                parts.append(f"{at} >= a.{self.bound(f'exposed_at + {_hours(select.delay_hours)}')}")
            else:
                parts.append(f"{at} >= a.exposed_at")
            if select.window_days is not None:
                parts.append(f"{at} < a.{self.bound(f'exposed_at + {_days(select.window_days)}')}")
        else:
            parts.append(f"{at} >= a.{self.bound(f'exposed_at - {_days(pre_days)}')}")
            parts.append(f"{at} < a.exposed_at")
        if select.where is not None:
            tree = parse_predicate(select.where).copy()
            for column in tree.find_all(exp.Column):
                real = t.name if column.name == "name" else t.value
                column.replace(exp.column(exp.to_identifier(real, quoted=True), table="e"))
            parts.append(f"({tree.sql(dialect='duckdb')})")
        sql = " AND ".join(parts)
        return self.conditions.setdefault(sql, f"c{len(self.conditions)}")

    def bound(self, sql: str) -> str:
        """Window bounds (and exposure-window flags) are computed once per unit (in ``a``), not once
        per event."""
        return self.bounds.setdefault(sql, f"b{len(self.bounds)}")

    def exposure(self, m: Metric) -> str | None:
        """The alias of the unit's 0/1 column "first exposed in ``m``'s exposure window", if it has one."""
        parts = []
        if m.exposure_start is not None:
            parts.append(f"exposed_at >= {_timestamp(m.exposure_start)}")
        if m.exposure_end is not None:
            parts.append(f"exposed_at < {_timestamp(m.exposure_end)}")
        if not parts:
            return None
        return self.bound(f"CASE WHEN {' AND '.join(parts)} THEN 1 ELSE 0 END")

    def per_unit(
        self, aggregation: str, select: Selection, *, pre_days: int | None = None, exposure: str | None = None
    ) -> str:
        """The (quoted) alias of the per-unit column aggregating ``select``'s events (NULL for a unit
        outside the ``exposure`` window, so it is left out of the metric)."""
        flag = self.condition(select, pre_days=pre_days)
        if aggregation == "count":
            sql = f"COUNT(CASE WHEN {flag} THEN 1 END)"
        elif aggregation in ("sum", "ratio"):
            sql = f"COALESCE(SUM(CASE WHEN {flag} THEN value END), 0)"
        elif aggregation == "proportion":
            sql = f"MAX(CASE WHEN {flag} THEN 1 ELSE 0 END)"
        elif aggregation == "quantile":  # the unit's values (their number: the quantile's n)
            sql = f"COUNT(CASE WHEN {flag} THEN value END)"
        else:  # mean
            sql = f"AVG(CASE WHEN {flag} THEN value END)"
        if exposure is not None:
            sql = f"CASE WHEN MAX({exposure}) = 1 THEN {sql} END"
        return self.unit_columns.setdefault(f"CAST({sql} AS DOUBLE)", f"q{len(self.unit_columns)}")

    def stat(self, metric: str, stat: str, sql: str) -> None:
        alias = Column(metric, stat).alias
        self.summary_columns.append(f"CAST({sql} AS DOUBLE) AS {_ident(alias)}")
        self.outputs.append(alias)

    def metric(self, m: Metric) -> None:
        w = self.exposure(m)
        y = self.per_unit(m.aggregation, m.select, exposure=w)
        if m.aggregation == "quantile":  # the quantiles themselves: compile_quantiles, given n
            self.stat(m.name, "n", f"SUM({y})")
            return
        self.stat(m.name, "n", f"COUNT({y})")
        self.stat(m.name, "sum", f"SUM({y})")
        self.stat(m.name, "sum_squares", f"SUM({y} * {y})")
        if m.denominator is not None:
            d = self.per_unit(m.denominator.aggregation, m.denominator.select, exposure=w)
            self.stat(m.name, "d_sum", f"SUM({d})")
            self.stat(m.name, "d_sum_squares", f"SUM({d} * {d})")
            self.stat(m.name, "m_d_sum_of_products", f"SUM({y} * {d})")
        if m.covariate_days is not None:
            x = self.per_unit(m.aggregation, m.select, pre_days=m.covariate_days, exposure=w)
            self.stat(m.name, "pre_sum", f"SUM({x})")
            self.stat(m.name, "pre_sum_squares", f"SUM({x} * {x})")
            self.stat(m.name, "post_pre_sum_of_products", f"SUM({y} * {x})")

    def quantile(self, m: Metric, levels: Mapping[str, tuple[float, float]]) -> None:
        """``m``'s quantile and, per variation, its bracketing quantiles at that variation's levels
        (only that variation's events enter them, so the other groups aggregate nothing)."""
        assert m.quantile is not None
        flag = self.condition(m.select)
        w = self.exposure(m)
        where = f"{flag}" + (f" AND {w} = 1" if w is not None else "")
        self.stat(m.name, "quantile", f"QUANTILE_CONT(CASE WHEN {where} THEN value END, {m.quantile!r})")
        for i, (variation, (lower, upper)) in enumerate(sorted(levels.items())):
            mine = f"{where} AND variation = {_literal(variation)}"
            self.stat(m.name, f"lower__{i}", f"QUANTILE_CONT(CASE WHEN {mine} THEN value END, {lower!r})")
            self.stat(m.name, f"upper__{i}", f"QUANTILE_CONT(CASE WHEN {mine} THEN value END, {upper!r})")


@dataclass(frozen=True)
class CompiledQuery:
    """The SQL for one experiment and the names of the summary columns it returns (after ``variation``
    and ``units``), in order; the last one is `EXCLUDED`. For `compile_quantiles` the columns come
    after ``variation`` alone."""

    sql: str
    dialect: str
    columns: tuple[str, ...]
    metrics: tuple[Metric, ...]


def _check(metrics: Sequence[Metric], experiment: str, dialect: str, tables: Tables | None) -> Tables:
    t = tables or Tables()
    for attr in TABLE_FIELDS:
        try:
            table_sql(getattr(t, attr), dialect, field=f"tables.{attr}")  # a file on PostgreSQL is refused
        except (SqlglotError, ValueError) as exc:  # an unknown dialect
            raise MetricError(f"cannot produce SQL for dialect {dialect!r}: {exc}", field="dialect") from None
    if not metrics:
        raise MetricError("define at least one metric", field="metrics")
    if not isinstance(experiment, str) or not experiment or len(experiment) > 200:
        raise MetricError("name the experiment (at most 200 characters)", field="experiment")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise MetricError("metric names must be unique", field="metrics")
    if any(m.aggregation == "quantile" for m in metrics):
        quantile_sql(dialect)  # refuses a dialect without a quantile aggregate, before any query runs
    return t


def _units_sql(
    b: _Builder, t: Tables, experiment: str, metrics: Sequence[Metric], *, per_variation: bool = False
) -> str:
    """The shared CTEs: ``exposures`` and ``a`` (units, exclusion, bounds) and ``j`` (their events)."""
    event_names = sorted({n for m in metrics for s in _selections(m) for n in s.events})
    bound_sql = "".join(f", {sql} AS {alias}" for sql, alias in b.bounds.items())
    # The per-unit step groups by unit_id alone (variation and exclusion are re-attached per unit from
    # ``a``: a VARCHAR group key costs far more); the quantile query groups ``j`` by variation directly.
    variation_sql = ", a.variation AS variation, a.excluded AS excluded" if per_variation else ""
    unit_flags = "".join(
        f", a.{alias} AS {alias}" for sql, alias in b.bounds.items() if sql.startswith("CASE")
    )
    flag_sql = ",\n         ".join(f"{sql} AS {alias}" for sql, alias in b.conditions.items())
    # Every user-supplied piece is rendered by SQLGlot (quoted identifiers, escaped literals,
    # validated predicates); the query is parsed again before it is generated for the dialect.
    return f"""
WITH exposures AS (
  SELECT {_ident(t.unit_id)} AS unit_id, MIN({_ident(t.variation)}) AS variation,
         MAX({_ident(t.variation)}) AS last_variation, MIN({_ident(t.first_exposure_at)}) AS exposed_at
  FROM {table_sql(t.assignments, "duckdb", field="tables.assignments")} AS assignment_rows
  WHERE {_ident(t.experiment)} = {_literal(experiment)}
  GROUP BY {_ident(t.unit_id)}
),
a AS (
  SELECT unit_id, CASE WHEN variation = last_variation THEN variation END AS variation,
         CASE WHEN variation = last_variation THEN 0 ELSE 1 END AS excluded, exposed_at{bound_sql}
  FROM exposures
),
j AS (
  SELECT a.unit_id AS unit_id{variation_sql}{unit_flags},
         e.{_ident(t.value)} AS value,
         {flag_sql}
  FROM a
  LEFT JOIN {table_sql(t.events, "duckdb", field="tables.events")} AS e
    ON e.{_ident(t.event_unit_id)} = a.unit_id
   AND e.{_ident(t.name)} IN ({", ".join(_literal(n) for n in event_names)})
)"""  # noqa: S608


def _bigquery_instants(node: exp.Expression) -> exp.Expression:
    """BigQuery's TIMESTAMP is an instant and its DATETIME a wall-clock time, which do not compare: the
    exposure-window bounds (UTC time stamps, `_timestamp`) are cast to BigQuery's TIMESTAMP, not to the
    DATETIME a naive TIMESTAMP would become."""
    if (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Literal)
        and node.this.is_string
        and node.to.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ)
    ):
        return exp.Cast(this=node.this.copy(), to=exp.DataType.build("TIMESTAMPTZ"))
    return node


def _render(sql: str, dialect: str) -> str:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if tree.find(exp.PercentileCont) is not None:
            tree = tree.transform(quantile_sql(dialect))
        if dialect == "bigquery":
            tree = tree.transform(_bigquery_instants)
        return tree.sql(dialect=dialect, pretty=True)
    except (SqlglotError, ValueError) as exc:  # an unknown dialect, or a bug in the builder
        raise MetricError(f"cannot produce SQL for dialect {dialect!r}: {exc}", field="dialect") from None


def compile_experiment(
    metrics: list[Metric] | tuple[Metric, ...],
    experiment: str,
    *,
    dialect: str = "duckdb",
    tables: Tables | None = None,
) -> CompiledQuery:
    """One query computing every metric's summary statistics per variation of ``experiment`` (for a
    quantile metric only its n: the number of values; `compile_quantiles` computes the quantiles)."""
    t = _check(metrics, experiment, dialect, tables)
    b = _Builder(t)
    for m in metrics:
        b.metric(m)
    unit_sql = ",\n         ".join(f"{sql} AS {alias}" for sql, alias in b.unit_columns.items())
    ctes = _units_sql(b, t, experiment, metrics)
    summary_sql = ",\n       ".join(b.summary_columns)
    sql = f"""{ctes},
u AS (
  SELECT unit_id,
         {unit_sql}
  FROM j
  GROUP BY unit_id
)
SELECT CAST(a.variation AS VARCHAR) AS variation,
       CAST(COUNT(*) AS DOUBLE) AS units,
       {summary_sql},
       CAST(a.excluded AS DOUBLE) AS {_ident(EXCLUDED)}
FROM u
JOIN a ON a.unit_id = u.unit_id
GROUP BY a.variation, a.excluded
ORDER BY a.excluded, a.variation
"""  # noqa: S608
    return CompiledQuery(
        sql=_render(sql, dialect), dialect=dialect, columns=(*b.outputs, EXCLUDED), metrics=tuple(metrics)
    )


def compile_quantiles(
    metrics: Sequence[Metric],
    experiment: str,
    n: Mapping[str, Mapping[str, float]],
    *,
    dialect: str = "duckdb",
    tables: Tables | None = None,
) -> CompiledQuery:
    """The second, small query of quantile metrics: per variation, each quantile metric's quantile
    and the quantiles bracketing it at the levels `quantile_levels` gives for that variation's ``n``
    (``n[metric][variation]``, from `compile_experiment`'s rows). Columns after ``variation``:
    ``{metric}__quantile`` and per variation ``i`` (in sorted order of ``n[metric]``)
    ``{metric}__lower__{i}``, ``{metric}__upper__{i}``. Only those summary rows come back."""
    quantiles = [m for m in metrics if m.aggregation == "quantile"]
    t = _check(quantiles, experiment, dialect, tables)
    b = _Builder(t)
    for m in quantiles:
        assert m.quantile is not None
        levels = {v: quantile_levels(m.quantile, float(count)) for v, count in n.get(m.name, {}).items()}
        b.quantile(m, levels)
    ctes = _units_sql(b, t, experiment, quantiles, per_variation=True)
    summary_sql = ",\n       ".join(b.summary_columns)
    sql = f"""{ctes}
SELECT CAST(variation AS VARCHAR) AS variation,
       {summary_sql}
FROM j
WHERE excluded = 0
GROUP BY variation
ORDER BY variation
"""  # noqa: S608
    return CompiledQuery(
        sql=_render(sql, dialect), dialect=dialect, columns=tuple(b.outputs), metrics=tuple(quantiles)
    )


def _selections(m: Metric) -> list[Selection]:
    return [m.select] + ([m.denominator.select] if m.denominator is not None else [])
