"""Same numbers everywhere (issue 14, capability 6).

For the planted-effect data set (`truenorth.evidence.synthetic`), every engine returns the same
per-variation units, counts and sums from the one compiled query — exactly for counts and for sums of
integer-valued quantities (every engine sums them as doubles, exact below 2**53), within 1e-9 relative
for sums of floating values (summation order differs between engines and between Spark's partitions) —
and therefore the same results (`compare_to_control`).

The reference is DuckDB over the Parquet directory (`truenorth.evidence.run.DuckDBEngine`); the others
are reached through the connector registry (`truenorth.engines.registry.connect`), as a data source
would: DuckDB over the same files, PostgreSQL (the same generated chunks loaded with COPY), Spark in
local mode and ClickHouse embedded (chDB) over the same Parquet files. The events are written as
several Parquet parts so the parallel engines merge partial aggregates.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from psycopg import sql as pgsql

from truenorth.evidence.compile import EXCLUDED, Tables
from truenorth.evidence.metrics import Metric, Selection
from truenorth.evidence.run import DuckDBEngine, Evidence, PostgresEngine, compare_to_control, run_experiment
from truenorth.evidence.synthetic import (
    EXPERIMENT,
    copy_to_postgres,
    create_postgres_tables,
    generate,
    standard_metrics,
    write_parquet,
)

#: About 2,900 units and 60,000 events: every metric has thousands of non-zero units per variation.
EVENTS = 60_000
SEED = 23
#: Events split into this many Parquet parts (Spark reads them as as many partitions).
PARTS = 4
#: The planted-effect metrics and the hygiene ones (issue 14, capability 5): exact quantiles, a
#: conversion window with a delay, an exposure window; multi-assigned units are added to the data below.
METRICS: list[Metric] = [
    *standard_metrics(),
    Metric("order_value_p50", "quantile", Selection(("purchase",), window_days=7), quantile=0.5),
    Metric("order_value_p90", "quantile", Selection(("purchase",), window_days=7), quantile=0.9),
    Metric("order_value_p99", "quantile", Selection(("purchase",)), quantile=0.99),
    Metric(
        "late_conversion",
        "proportion",
        Selection(("purchase",), window_days=7, delay_hours=24),
        covariate_days=14,
    ),
    Metric(
        "cohort_page_views",
        "count",
        Selection(("page_view",), window_days=14),
        exposure_start="2026-01-03",
        exposure_end="2026-01-10 12:00:00",
    ),
]
#: Units assigned twice: to the other variation (excluded and counted) and to the same one again,
#: later (kept, first exposure the earlier). A unit id modulo these, and the second row's delay.
OTHER_VARIATION, SAME_VARIATION = (97, 5, 1), (89, 3, 2)
#: Per-unit aggregations whose values are integers (so their sums, squares and products are too).
INTEGER_AGGREGATIONS = frozenset({"count", "proportion"})
FLOAT_RTOL = 1e-9
#: The results compared between engines (all derived from the summary rows).
RESULT_FIELDS = (
    "effect",
    "effect_relative",
    "ci_low",
    "ci_high",
    "ci_low_relative",
    "ci_high_relative",
    "se",
    "p_value",
)


def exact_columns(metrics: list[Metric]) -> set[str]:
    """The summary columns that hold integers (counts, and sums of counts and 0/1 flags)."""
    out = {"units", EXCLUDED}
    for m in metrics:
        y = m.aggregation in INTEGER_AGGREGATIONS
        out.add(f"{m.name}__n")
        if y:
            out |= {f"{m.name}__sum", f"{m.name}__sum_squares"}
            if m.covariate_days is not None:
                out |= {
                    f"{m.name}__pre_sum",
                    f"{m.name}__pre_sum_squares",
                    f"{m.name}__post_pre_sum_of_products",
                }
        if m.denominator is not None and m.denominator.aggregation in INTEGER_AGGREGATIONS:
            out |= {f"{m.name}__d_sum", f"{m.name}__d_sum_squares"}
            if y:
                out.add(f"{m.name}__m_d_sum_of_products")
    return out


@dataclass
class Summary:
    """One engine's answer: the raw rows of each query it ran, keyed by their variation (and whether
    they are the excluded units' row), and the evidence built from them."""

    rows: dict[str, dict[str, float | None]]
    evidence: Evidence


class _Recording:
    """An evidence engine that keeps the rows it returned, so each query runs once per engine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect
        self.results: list[list[tuple[Any, ...]]] = []

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        rows = list(self.engine.fetch(sql))
        self.results.append(rows)
        return rows


def _key(query: int, variation: Any, row: Mapping[str, Any]) -> str:
    excluded = " (excluded)" if row.get(EXCLUDED) else ""
    return f"query {query}: {variation}{excluded}"


def summarise(engine: Any, tables: Tables | None = None, metrics: list[Metric] = METRICS) -> Summary:
    recording = _Recording(engine)
    evidence = run_experiment(recording, EXPERIMENT, metrics, tables=tables)
    queries = [evidence.query]
    quantile_query = getattr(evidence, "quantile_query", None)
    if quantile_query is not None:
        queries.append(quantile_query)
    assert len(recording.results) == len(queries)
    rows: dict[str, dict[str, float | None]] = {}
    for i, (query, result) in enumerate(zip(queries, recording.results, strict=True)):
        names = ("variation", "units", *query.columns) if i == 0 else ("variation", *query.columns)
        for raw in result:
            row = {n: None if v is None else float(v) for n, v in zip(names[1:], raw[1:], strict=True)}
            key = _key(i, raw[0] if raw[0] is not None else "-", row)
            assert key not in rows, key
            rows[key] = row
    return Summary(rows, evidence)


def differences(got: Summary, expected: Summary, metrics: list[Metric] = METRICS) -> list[str]:
    """Every summary value or result that differs beyond the tolerance, described."""
    exact = exact_columns(metrics)
    out: list[str] = []
    if set(got.rows) != set(expected.rows):
        return [f"variations {sorted(got.rows)} != {sorted(expected.rows)}"]
    for variation, row in expected.rows.items():
        for column, want in row.items():
            have = got.rows[variation][column]
            if want is None or have is None:
                if want is not have:
                    out.append(f"{variation}.{column}: {have!r} != {want!r}")
            elif column in exact:
                if have != want:
                    out.append(f"{variation}.{column}: {have!r} != {want!r} (exact)")
            elif not np.isclose(have, want, rtol=FLOAT_RTOL, atol=0.0):
                out.append(
                    f"{variation}.{column}: {have!r} != {want!r} (relative {abs(have / want - 1):.1e})"
                )
    if (got.evidence.units, got.evidence.excluded_units) != (
        expected.evidence.units,
        expected.evidence.excluded_units,
    ):
        out.append(f"units {got.evidence.units} != {expected.evidence.units} (or the excluded units differ)")
    got_results = compare_to_control(got.evidence, "control")
    for name, per in compare_to_control(expected.evidence, "control").items():
        for variation, want_c in per.items():
            have_c = got_results[name][variation]
            assert have_c.method == want_c.method, (name, have_c.method, want_c.method)
            for attr in RESULT_FIELDS:
                a, b = float(getattr(have_c, attr)), float(getattr(want_c, attr))
                if not np.isclose(a, b, rtol=FLOAT_RTOL, atol=0.0, equal_nan=True):
                    out.append(f"result {name}/{variation}.{attr}: {a!r} != {b!r}")
    return out


# -- the data set, once per module ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``assignments.parquet`` and ``events/part-N.parquet`` (the same rows as one file, in parts)."""
    whole = tmp_path_factory.mktemp("same_numbers_whole")
    write_parquet(whole, EVENTS, seed=SEED)
    directory = tmp_path_factory.mktemp("same_numbers")
    assignments = pq.read_table(whole / "assignments.parquet")
    pq.write_table(pa.concat_tables([assignments, *_twice(assignments)]), directory / "assignments.parquet")
    events = pq.read_table(whole / "events.parquet")
    (directory / "events").mkdir()
    step = -(-events.num_rows // PARTS)
    for i in range(PARTS):
        pq.write_table(events.slice(i * step, step), directory / "events" / f"part-{i}.parquet")
    return directory


def _twice(assignments: pa.Table) -> list[pa.Table]:
    """The second assignment rows of `OTHER_VARIATION` and `SAME_VARIATION` units."""
    out = []
    for (modulo, remainder, hours), other in ((OTHER_VARIATION, True), (SAME_VARIATION, False)):
        ids = assignments["unit_id"].to_numpy()
        rows = assignments.filter(pa.array(ids % modulo == remainder))
        variation = rows["variation"]
        if other:
            variation = pc.if_else(pc.equal(variation, "control"), "treatment", "control")
        exposed = pc.add(rows["first_exposure_at"], pa.scalar(hours * 3_600_000_000, pa.duration("us")))
        out.append(rows.set_column(2, "variation", variation).set_column(3, "first_exposure_at", exposed))
    return out


def table_paths(directory: Path) -> dict[str, str]:
    return {"assignments": str(directory / "assignments.parquet"), "events": str(directory / "events")}


@pytest.fixture(scope="module")
def reference(parquet_dir: Path) -> Summary:
    engine = DuckDBEngine(parquet_dir)
    try:
        return summarise(engine)
    finally:
        engine.close()


def test_the_reference_is_not_vacuous(reference: Summary) -> None:
    """Both variations, thousands of units, every metric with non-zero integer and floating sums."""
    assert {"query 0: control", "query 0: treatment"} <= set(reference.rows)
    exact = exact_columns(METRICS)
    for key in ("query 0: control", "query 0: treatment"):
        row = reference.rows[key]
        assert row["units"] is not None and row["units"] > 1000
        for column, value in row.items():
            if column == EXCLUDED:
                continue
            assert value is not None and value > 0, column
            if column in exact:
                assert float(value).is_integer(), column
    control = reference.rows["query 0: control"]
    floats = set(control) - exact
    # The hygiene metrics have something to compare: excluded units, quantiles, narrower windows.
    assert reference.evidence.excluded_units > 0
    assert "query 0: - (excluded)" in reference.rows
    for level in ("p50", "p90", "p99"):
        assert (reference.rows["query 1: control"][f"order_value_{level}__quantile"] or 0) > 0
    assert 0 < (control["cohort_page_views__n"] or 0) < (control["units"] or 0)
    assert 0 < (control["late_conversion__sum"] or 0) < (control["conversion__sum"] or 0)
    assert floats >= {"revenue__sum", "order_value__sum", "revenue__post_pre_sum_of_products"}


def _connect(kind: str, config: Mapping[str, Any]) -> Any:
    from truenorth.engines.registry import connect

    return connect(kind, dict(config))


# -- PostgreSQL ----------------------------------------------------------------------------------------


def _postgres_url() -> str:
    for variable in ("TRUENORTH_EVIDENCE_POSTGRES", "DATABASE_URL"):
        url = os.environ.get(variable, "")
        if url.startswith(("postgres://", "postgresql://")):
            return url
    return "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[tuple[str, str]]:
    """The same generated chunks as the Parquet files, loaded with COPY into a scratch schema."""
    url = _postgres_url()
    try:
        conn = psycopg.connect(url, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL is not reachable at {url}: {exc}")
    schema = f"same_numbers_{uuid.uuid4().hex[:10]}"
    try:
        with conn.cursor() as cur:
            create_postgres_tables(cur, schema)
            for assignments, events in generate(EVENTS, seed=SEED):
                copy_to_postgres(cur, schema, assignments, events)
            for (modulo, remainder, hours), other in ((OTHER_VARIATION, True), (SAME_VARIATION, False)):
                variation = "CASE variation WHEN 'control' THEN 'treatment' ELSE 'control' END"
                cur.execute(
                    pgsql.SQL(
                        "INSERT INTO {}.assignments SELECT unit_id, experiment, {}, first_exposure_at + {} "
                        "FROM {}.assignments WHERE unit_id % {} = {}"
                    ).format(
                        pgsql.Identifier(schema),
                        pgsql.SQL(variation if other else "variation"),
                        pgsql.Literal(f"{hours} hours"),
                        pgsql.Identifier(schema),
                        pgsql.Literal(modulo),
                        pgsql.Literal(remainder),
                    )
                )
        yield url, schema
    finally:
        conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(schema)))
        conn.close()


def test_postgres_returns_the_same_numbers(postgres_schema: tuple[str, str], reference: Summary) -> None:
    url, schema = postgres_schema
    assert not differences(summarise(PostgresEngine(url, search_path=schema)), reference)
    tables = Tables(assignments=f"{schema}.assignments", events=f"{schema}.events")
    assert not differences(summarise(PostgresEngine(url), tables), reference)


def test_the_postgres_connector_returns_the_same_numbers(
    postgres_schema: tuple[str, str], reference: Summary
) -> None:
    url, schema = postgres_schema
    with _connect("postgres", {"dsn": url, "search_path": schema}) as connector:
        got = summarise(connector)
    assert not differences(got, reference)


def test_the_duckdb_connector_returns_the_same_numbers(parquet_dir: Path, reference: Summary) -> None:
    with _connect("duckdb", {"path": "", "tables": table_paths(parquet_dir)}) as connector:
        got = summarise(connector)
    assert not differences(got, reference)


# -- Spark (local mode) and ClickHouse (chDB) ----------------------------------------------------------


@pytest.fixture(scope="module")
def spark_connector(parquet_dir: Path) -> Iterator[Any]:
    """One connector (and one SparkSession: the connector module keeps one per process) per module."""
    connector = _connect("spark", {"master": "local[2]", "tables": table_paths(parquet_dir)})
    with connector:
        yield connector


@pytest.mark.spark
def test_spark_returns_the_same_numbers(spark_connector: Any, reference: Summary) -> None:
    assert not differences(summarise(spark_connector), reference)


@pytest.mark.clickhouse
def test_chdb_returns_the_same_numbers(parquet_dir: Path, reference: Summary) -> None:
    with _connect("chdb", {"tables": table_paths(parquet_dir)}) as connector:
        got = summarise(connector)
    assert not differences(got, reference)


def test_differences_sees_a_changed_count_and_a_changed_float(reference: Summary) -> None:
    """The comparison itself: one unit more, or a float sum off by 1e-8 relative, is a difference."""
    rows = {v: dict(r) for v, r in reference.rows.items()}
    control, treatment = rows["query 0: control"], rows["query 0: treatment"]
    control["purchases__sum"] = (control["purchases__sum"] or 0) + 1
    revenue = treatment["revenue__sum"] or 0.0
    treatment["revenue__sum"] = revenue * (1 + 1e-8)
    nudged = Summary(rows, reference.evidence)
    found = differences(nudged, reference)
    assert any(d.startswith("query 0: control.purchases__sum") and "(exact)" in d for d in found)
    assert any(d.startswith("query 0: treatment.revenue__sum") for d in found)
    treatment["revenue__sum"] = revenue * (1 + 1e-12)  # within 1e-9: summation order
    control["purchases__sum"] = reference.rows["query 0: control"]["purchases__sum"]
    assert not differences(Summary(rows, reference.evidence), reference)
