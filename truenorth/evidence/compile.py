"""Compile metric definitions into one SQL query per experiment, in any SQLGlot dialect.

The query is written once, in DuckDB's dialect, from pieces SQLGlot renders (quoted identifiers, escaped
string literals, validated predicates), then parsed and generated for the target dialect. Adding an
engine is therefore a dialect name here plus an `Engine` in `run.py`; the SQL is never rewritten per
engine.

Shape (one scan of the events joined to the experiment's assignments):

1. ``exposures``, ``a``: the experiment's units (one row per unit) with their variation, first exposure
   and the bounds of every window (computed once per unit, not once per event). A unit assigned to more
   than one variation is *excluded*: its variation is NULL and ``excluded`` is 1, so it counts in no
   variation's metrics (never twice) and its own summary row says how many such units there are.
2. ``j``: the experiment's units joined to their events, with one boolean column per distinct event
   condition (event names, period relative to exposure, predicate).
3. ``u``: one row per unit, a column per distinct per-unit quantity, by conditional aggregation over its
   events (events at/after exposure, within the window; units without events count 0 for count, sum
   and proportion; NULL — left out — for mean).
4. per variation: units, and per metric n, sum, sum of squares, plus the denominator's sums and the
   cross-product for ratios and the covariate's sums and cross-product for CUPED; the last column,
   ``excluded``, is 0 on those rows and 1 on the one row (variation NULL) of the excluded units.
"""

from __future__ import annotations

import re
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
    joined rows (``c0``, ``c1``, …) and each distinct per-unit aggregate one column of ``u`` (``q0``, …),
    so metrics sharing a selection (revenue and revenue per page view, say) share the work."""

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
        """Window bounds are computed once per unit (in ``a``), not once per event."""
        return self.bounds.setdefault(sql, f"b{len(self.bounds)}")

    def per_unit(self, aggregation: str, select: Selection, *, pre_days: int | None = None) -> str:
        """The (quoted) alias of the per-unit column aggregating ``select``'s events."""
        flag = self.condition(select, pre_days=pre_days)
        if aggregation == "count":
            sql = f"COUNT(CASE WHEN {flag} THEN 1 END)"
        elif aggregation in ("sum", "ratio"):
            sql = f"COALESCE(SUM(CASE WHEN {flag} THEN value END), 0)"
        elif aggregation == "proportion":
            sql = f"MAX(CASE WHEN {flag} THEN 1 ELSE 0 END)"
        else:  # mean
            sql = f"AVG(CASE WHEN {flag} THEN value END)"
        return self.unit_columns.setdefault(f"CAST({sql} AS DOUBLE)", f"q{len(self.unit_columns)}")

    def stat(self, metric: str, stat: str, sql: str) -> None:
        alias = Column(metric, stat).alias
        self.summary_columns.append(f"CAST({sql} AS DOUBLE) AS {_ident(alias)}")
        self.outputs.append(alias)

    def metric(self, m: Metric) -> None:
        y = self.per_unit(m.aggregation, m.select)
        self.stat(m.name, "n", f"COUNT({y})")
        self.stat(m.name, "sum", f"SUM({y})")
        self.stat(m.name, "sum_squares", f"SUM({y} * {y})")
        if m.denominator is not None:
            d = self.per_unit(m.denominator.aggregation, m.denominator.select)
            self.stat(m.name, "d_sum", f"SUM({d})")
            self.stat(m.name, "d_sum_squares", f"SUM({d} * {d})")
            self.stat(m.name, "m_d_sum_of_products", f"SUM({y} * {d})")
        if m.covariate_days is not None:
            x = self.per_unit(m.aggregation, m.select, pre_days=m.covariate_days)
            self.stat(m.name, "pre_sum", f"SUM({x})")
            self.stat(m.name, "pre_sum_squares", f"SUM({x} * {x})")
            self.stat(m.name, "post_pre_sum_of_products", f"SUM({y} * {x})")


@dataclass(frozen=True)
class CompiledQuery:
    """The SQL for one experiment and the names of the summary columns it returns (after ``variation``
    and ``units``), in order; the last one is `EXCLUDED`."""

    sql: str
    dialect: str
    columns: tuple[str, ...]
    metrics: tuple[Metric, ...]


def compile_experiment(
    metrics: list[Metric] | tuple[Metric, ...],
    experiment: str,
    *,
    dialect: str = "duckdb",
    tables: Tables | None = None,
) -> CompiledQuery:
    """One query computing every metric's summary statistics per variation of ``experiment``."""
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
    b = _Builder(t)
    for m in metrics:
        b.metric(m)
    event_names = sorted({n for m in metrics for s in _selections(m) for n in s.events})
    bound_sql = "".join(f", {sql} AS {alias}" for sql, alias in b.bounds.items())
    flag_sql = ",\n         ".join(f"{sql} AS {alias}" for sql, alias in b.conditions.items())
    unit_sql = ",\n         ".join(f"{sql} AS {alias}" for sql, alias in b.unit_columns.items())
    summary_sql = ",\n       ".join(b.summary_columns)
    # Every user-supplied piece above is rendered by SQLGlot (quoted identifiers, escaped literals,
    # validated predicates); the query is parsed again below before it is generated for the dialect.
    sql = f"""
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
  SELECT a.unit_id AS unit_id, a.variation AS variation, a.excluded AS excluded, e.{_ident(t.value)} AS value,
         {flag_sql}
  FROM a
  LEFT JOIN {table_sql(t.events, "duckdb", field="tables.events")} AS e
    ON e.{_ident(t.event_unit_id)} = a.unit_id
   AND e.{_ident(t.name)} IN ({", ".join(_literal(n) for n in event_names)})
),
u AS (
  SELECT variation, excluded,
         {unit_sql}
  FROM j
  GROUP BY unit_id, variation, excluded
)
SELECT CAST(variation AS VARCHAR) AS variation,
       CAST(COUNT(*) AS DOUBLE) AS units,
       {summary_sql},
       CAST(excluded AS DOUBLE) AS {_ident(EXCLUDED)}
FROM u
GROUP BY variation, excluded
ORDER BY excluded, variation
"""  # noqa: S608
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        rendered = tree.sql(dialect=dialect, pretty=True)
    except (SqlglotError, ValueError) as exc:  # an unknown dialect, or a bug in the builder
        raise MetricError(f"cannot produce SQL for dialect {dialect!r}: {exc}", field="dialect") from None
    return CompiledQuery(
        sql=rendered, dialect=dialect, columns=(*b.outputs, EXCLUDED), metrics=tuple(metrics)
    )


def _selections(m: Metric) -> list[Selection]:
    return [m.select] + ([m.denominator.select] if m.denominator is not None else [])
