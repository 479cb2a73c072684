"""Run compiled evidence queries where the events live and turn the summary rows into statistics.

An `Engine` is anything with a SQLGlot ``dialect`` name and a ``fetch(sql)`` returning rows as tuples;
`DuckDBEngine` (a DuckDB file, or a directory of Parquet/CSV files registered as views) and
`PostgresEngine` (psycopg, read-only transaction, statement timeout) are the built-in ones. A new engine
(ClickHouse, Trino, BigQuery, Spark) is a class with those two members: the SQL comes from
`compile_experiment(..., dialect=engine.dialect)` unchanged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from truenorth.core.errors import DomainError, ValidationFailed
from truenorth.engines.base import MAX_BYTES, MAX_ROWS, EngineError, Limits, NotReadOnly, first_line
from truenorth.engines.duckdb_engine import MAX_MEMORY_LIMIT_MB, DuckDBConnector
from truenorth.engines.postgres_engine import PostgresConnector
from truenorth.evidence.compile import (
    EXCLUDED,
    CompiledQuery,
    Tables,
    compile_experiment,
    compile_quantiles,
)
from truenorth.evidence.metrics import Metric
from truenorth.stats.quantile import QuantileStats
from truenorth.stats.summary import Comparison, CupedStats, FloatArray, MeanStats, RatioStats, as_array

Stats = MeanStats | RatioStats | CupedStats | QuantileStats


class QueryFailed(ValidationFailed):
    """The engine refused or failed the query (missing table, bad column, timeout, unreachable)."""


class Engine(Protocol):
    """Where raw events live. ``fetch`` runs one read-only query and returns its rows; ``dialect``
    (an attribute or a class variable, such as a `truenorth.engines` connector's) names its SQLGlot
    dialect."""

    @property
    def dialect(self) -> str: ...

    def fetch(self, sql: str) -> list[tuple[Any, ...]]: ...


_VIEW_SUFFIXES = {".parquet": "read_parquet", ".csv": "read_csv_auto"}


class DuckDBEngine(DuckDBConnector):
    """Embedded DuckDB over a ``.duckdb`` file (opened read-only) or a directory whose ``NAME.parquet``
    / ``NAME.csv`` files (or ``NAME/`` directories of Parquet parts) become views called ``NAME``.

    The `truenorth.engines` DuckDB connector (read-only check, ``lock_configuration``, a watchdog that
    interrupts the query at the timeout, row/byte caps), for the operator's own process (CLI,
    benchmarks): files named by the mapping may be anywhere, so file access is not confined here; the
    web side confines it through `truenorth.measures.sources`. Engine errors keep DuckDB's first line,
    which `truenorth.evidence.mapping.explain` turns into the mapping field to fix."""

    def __init__(
        self, source: str | Path, *, threads: int | None = None, timeout_seconds: float = 3600
    ) -> None:
        self.source = Path(source)
        if not self.source.exists():
            raise QueryFailed(f"no such DuckDB file or directory: {self.source}", field="source")
        config: dict[str, Any] = (
            {"tables": _views(self.source), "files": [str(self.source)]}
            if self.source.is_dir()
            else {"path": str(self.source.resolve())}
        )
        super().__init__(
            config,
            Limits(timeout_seconds=timeout_seconds, max_rows=MAX_ROWS, max_bytes=MAX_BYTES),
            threads=threads or os.cpu_count(),
            memory_limit_mb=MAX_MEMORY_LIMIT_MB,
            confine_files=False,
        )
        try:
            self.connect()
        except EngineError as exc:
            raise QueryFailed(f"cannot open {self.source}: {exc.message}", field="source") from None

    def translate(self, exc: BaseException) -> EngineError:
        translated = super().translate(exc)
        if type(translated) is EngineError:  # a query error: DuckDB's own words, for `explain`
            return EngineError(f"DuckDB could not run the evidence query: {first_line(exc)}")
        return translated

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return super().fetch(sql)
        except NotReadOnly as exc:
            raise QueryFailed(f"read-only: {exc.message}", field=exc.field) from None
        except EngineError as exc:
            raise QueryFailed(exc.message, field=exc.field) from None


def _views(directory: Path) -> dict[str, str]:
    """``NAME.parquet`` / ``NAME.csv`` files and ``NAME/`` directories of Parquet parts → views."""
    views: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        if path.is_dir() and any(path.glob("*.parquet")):
            name = path.name
        elif path.suffix.lower() in _VIEW_SUFFIXES:
            name = path.stem
        else:
            continue
        if name.isascii() and name.isidentifier():
            views.setdefault(name, str(path.resolve()))
    return views


class PostgresEngine(PostgresConnector):
    """PostgreSQL through the `truenorth.engines` connector: read-only session and transaction, the
    statement timeout on the server and a watchdog that cancels on the server, row/byte caps. One
    connection per query (``fetch``), as a CLI run needs."""

    def __init__(self, dsn: str, *, timeout_seconds: int = 300, search_path: str | None = None) -> None:
        config: dict[str, Any] = {"dsn": dsn, "search_path": search_path} if search_path else {"dsn": dsn}
        super().__init__(
            config, Limits(timeout_seconds=timeout_seconds, max_rows=MAX_ROWS, max_bytes=MAX_BYTES)
        )
        self.dsn = dsn

    def translate(self, exc: BaseException) -> EngineError:
        translated = super().translate(exc)
        if type(translated) is EngineError:  # a query error: PostgreSQL's own words, for `explain`
            translated = EngineError(first_line(exc))
        return type(translated)(
            f"PostgreSQL could not run the evidence query: {translated.message}", field=translated.field
        )

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            with self:
                return super().fetch(sql)
        except NotReadOnly as exc:
            raise QueryFailed(f"read-only: {exc.message}", field=exc.field) from None
        except EngineError as exc:
            raise QueryFailed(exc.message, field=exc.field) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Evidence:
    """Summary statistics of one experiment: units per variation and, per metric, per variation;
    ``excluded_units``: units assigned to more than one variation, left out of every count and metric."""

    experiment: str
    units: dict[str, int]
    metrics: dict[str, dict[str, Stats]]
    query: CompiledQuery
    excluded_units: int = 0
    #: The second query of quantile metrics (`compile_quantiles`), when there are any.
    quantile_query: CompiledQuery | None = None


def stats_from_row(metric: Metric, row: dict[str, float]) -> Stats:
    """The statistics object for ``metric`` from one summary row (keys ``{metric}__{stat}``)."""

    def get(stat: str) -> FloatArray:
        value = row[f"{metric.name}__{stat}"]
        return as_array(0.0 if value is None else float(value))

    proportion = metric.aggregation == "proportion"
    post = MeanStats(get("n"), get("sum"), get("sum_squares"), proportion)
    if metric.aggregation == "ratio":
        return RatioStats(
            get("n"),
            get("sum"),
            get("sum_squares"),
            get("d_sum"),
            get("d_sum_squares"),
            get("m_d_sum_of_products"),
        )
    if metric.covariate_days is not None:
        pre = MeanStats(get("n"), get("pre_sum"), get("pre_sum_squares"), proportion)
        return CupedStats(post, pre, get("post_pre_sum_of_products"))
    return post


def run_experiment(
    engine: Engine,
    experiment: str,
    metrics: Sequence[Metric],
    *,
    tables: Tables | None = None,
) -> Evidence:
    """Compile ``metrics`` for ``engine``'s dialect, run the one query there, and return the statistics.
    Quantile metrics take a second small query (`compile_quantiles`): their bracketing levels depend on
    the number of values per variation, which the first query counts."""
    query = compile_experiment(list(metrics), experiment, dialect=engine.dialect, tables=tables)
    rows = engine.fetch(query.sql)
    names = ("variation", "units", *query.columns)
    units: dict[str, int] = {}
    excluded = 0
    counts: dict[str, dict[str, float]] = {}
    by_metric: dict[str, dict[str, Stats]] = {m.name: {} for m in metrics}
    for raw in rows:
        if len(raw) != len(names):
            raise QueryFailed(f"the evidence query returned {len(raw)} columns, expected {len(names)}")
        row = dict(zip(names, raw, strict=True))
        if row[EXCLUDED]:  # the units assigned to more than one variation: counted, never analysed
            excluded += int(row["units"] or 0)
            continue
        variation = str(row["variation"])
        units[variation] = int(row["units"] or 0)
        for m in metrics:
            if m.aggregation == "quantile":
                counts.setdefault(m.name, {})[variation] = float(row[f"{m.name}__n"] or 0.0)
            else:
                by_metric[m.name][variation] = stats_from_row(m, row)
    if not units:
        also = f" ({excluded} units are assigned to more than one variation)" if excluded else ""
        raise QueryFailed(
            f"experiment {experiment!r} has no assigned units in the assignments table{also}",
            field="experiment",
        )
    quantile_query = None
    if counts:
        quantile_query = compile_quantiles(metrics, experiment, counts, dialect=engine.dialect, tables=tables)
        for variation, stats in _quantile_stats(engine, quantile_query, counts).items():
            for name, value in stats.items():
                by_metric[name][variation] = value
    return Evidence(
        experiment=experiment,
        units=units,
        metrics=by_metric,
        query=query,
        excluded_units=excluded,
        quantile_query=quantile_query,
    )


def _quantile_stats(
    engine: Engine, query: CompiledQuery, counts: dict[str, dict[str, float]]
) -> dict[str, dict[str, QuantileStats]]:
    """Per variation and quantile metric, the summary `truenorth.stats.quantile` consumes."""
    names = ("variation", *query.columns)
    out: dict[str, dict[str, QuantileStats]] = {}
    rows = {}
    for raw in engine.fetch(query.sql):
        if len(raw) != len(names):
            raise QueryFailed(f"the quantile query returned {len(raw)} columns, expected {len(names)}")
        rows[str(raw[0])] = dict(zip(names, raw, strict=True))
    for m in query.metrics:
        assert m.quantile is not None
        for i, variation in enumerate(sorted(counts.get(m.name, {}))):
            n = counts[m.name][variation]
            row = rows.get(variation, {})

            def get(column: str, row: dict[str, Any] = row) -> float:
                value = row.get(column)
                return math.nan if value is None else float(value)

            out.setdefault(variation, {})[m.name] = QuantileStats(
                as_array(n),
                as_array(m.quantile),
                as_array(get(f"{m.name}__quantile")),
                as_array(get(f"{m.name}__lower__{i}")),
                as_array(get(f"{m.name}__upper__{i}")),
                as_array(n),
            )
    return out


def srm_p_value(observed: dict[str, int], expected_weights: dict[str, float] | None = None) -> float:
    """Sample ratio mismatch: the chi-squared p-value of observed units per variation against the
    planned allocation (equal when not given), by `truenorth.stats.srm`. Below 0.001 the assignment
    is suspect."""
    from truenorth.stats import srm

    names = sorted(observed)
    weights = expected_weights or dict.fromkeys(names, 1.0)
    if set(weights) != set(names):
        raise DomainError(
            f"planned variations {sorted(weights)} do not match the observed ones {names}", field="variations"
        )
    if len(names) < 2:
        raise DomainError("an SRM check needs at least two variations with units", field="variations")
    result = srm.check([observed[n] for n in names], [weights[n] for n in names])
    if bool(result.not_enough_data):
        raise DomainError(f"no SRM check: {result.reason}", field="variations")
    return float(result.p_value)


def compare_to_control(
    evidence: Evidence, control: str, *, alpha: float = 0.05, cuped: bool = True
) -> dict[str, dict[str, Comparison]]:
    """Frequentist results per metric and treatment variation against ``control`` (Welch, proportion,
    delta-method ratio, or CUPED when the metric has a covariate and ``cuped`` is true)."""
    from truenorth.stats import frequentist, quantile

    if control not in evidence.units:
        raise DomainError(
            f"no variation {control!r}; the experiment has {sorted(evidence.units)}", field="control"
        )
    results: dict[str, dict[str, Comparison]] = {}
    for name, per_variation in evidence.metrics.items():
        a = per_variation[control]
        results[name] = {}
        for variation, b in per_variation.items():
            if variation == control:
                continue
            if isinstance(a, RatioStats) and isinstance(b, RatioStats):
                results[name][variation] = frequentist.ratio(a, b, alpha=alpha)
            elif isinstance(a, CupedStats) and isinstance(b, CupedStats):
                results[name][variation] = (
                    frequentist.cuped(a, b, alpha=alpha)
                    if cuped
                    else frequentist.welch(a.post, b.post, alpha=alpha)
                )
            elif isinstance(a, MeanStats) and isinstance(b, MeanStats):
                results[name][variation] = frequentist.welch(a, b, alpha=alpha)
            elif isinstance(a, QuantileStats) and isinstance(b, QuantileStats):
                results[name][variation] = quantile.welch(a, b, alpha=alpha)
    return results
