"""The compiled query gives the same summaries on DuckDB and PostgreSQL as a plain pandas computation."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest

from truenorth.evidence import reference
from truenorth.evidence.compile import Tables
from truenorth.evidence.metrics import Metric, Selection
from truenorth.evidence.run import DuckDBEngine, PostgresEngine, QueryFailed, run_experiment
from truenorth.evidence.synthetic import EXPERIMENT, create_postgres_tables, generate, standard_metrics
from truenorth.stats.summary import CupedStats, MeanStats, RatioStats

from .conftest import rows_close

PG = "postgresql://postgres@127.0.0.1:5432/test"
METRICS = standard_metrics()
FILTERED = [Metric("big_orders", "sum", Selection(("purchase",), where="value >= 60 AND NOT value > 200"))]


def _rows(engine, metrics, tables=None):
    evidence = run_experiment(engine, EXPERIMENT, metrics, tables=tables)
    names = ("variation", "units", *evidence.query.columns)
    rows = engine.fetch(evidence.query.sql)
    return evidence, {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in rows}


def test_duckdb_on_parquet_matches_pandas(small_parquet):
    engine = DuckDBEngine(small_parquet)
    evidence, rows = _rows(engine, METRICS)
    expected = reference.summarise(
        pd.read_parquet(small_parquet / "assignments.parquet"),
        pd.read_parquet(small_parquet / "events.parquet"),
        EXPERIMENT,
        METRICS,
    )
    assert set(rows) == set(expected) == {"control", "treatment"}
    for variation in rows:
        assert not rows_close(rows[variation], expected[variation]), variation
    # The statistics objects carry the same numbers.
    revenue = evidence.metrics["revenue"]["control"]
    assert isinstance(revenue, CupedStats)
    assert float(revenue.post.sum) == pytest.approx(expected["control"]["revenue__sum"])
    ratio = evidence.metrics["revenue_per_page_view"]["treatment"]
    assert isinstance(ratio, RatioStats)
    assert float(ratio.d_sum) == pytest.approx(expected["treatment"]["revenue_per_page_view__d_sum"])
    assert evidence.units == {v: int(r["units"]) for v, r in expected.items()}


def test_duckdb_file_engine_opens_read_only(tmp_path, small_parquet):
    import duckdb

    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        for name in ("assignments", "events"):
            con.execute(
                f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{small_parquet / name}.parquet')"
            )
    engine = DuckDBEngine(path)
    _, rows = _rows(engine, METRICS)
    _, expected = _rows(DuckDBEngine(small_parquet), METRICS)
    assert set(rows) == set(expected)
    for variation in rows:
        assert not rows_close(rows[variation], expected[variation]), variation
    with pytest.raises(QueryFailed, match="read-only"):
        engine.fetch("DROP TABLE events")


@pytest.fixture(scope="module")
def postgres_schema():
    schema = f"evidence_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(PG, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG}: {exc}")
    try:
        with conn.cursor() as cur:
            from truenorth.evidence.synthetic import copy_to_postgres

            create_postgres_tables(cur, schema)
            for assignments, events in generate(40_000, seed=11):
                copy_to_postgres(cur, schema, assignments, events)
        yield schema
    finally:
        conn.execute(
            psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema))
        )
        conn.close()


def test_postgres_matches_duckdb_and_pandas(postgres_schema, small_parquet):
    tables = Tables(assignments=f"{postgres_schema}.assignments", events=f"{postgres_schema}.events")
    _, pg_rows = _rows(PostgresEngine(PG), METRICS + FILTERED, tables)
    _, duck_rows = _rows(DuckDBEngine(small_parquet), METRICS + FILTERED)
    assert set(pg_rows) == set(duck_rows)
    for variation in pg_rows:
        assert not rows_close(pg_rows[variation], duck_rows[variation]), variation
    assert pg_rows["control"]["big_orders__sum"] > 0


def test_postgres_runs_read_only(postgres_schema):
    engine = PostgresEngine(PG, search_path=postgres_schema)
    with pytest.raises(QueryFailed, match="read-only"):
        engine.fetch("DELETE FROM events")
    assert engine.fetch("SELECT count(*) FROM events")[0][0] > 0


def test_a_missing_table_is_a_clear_error_on_duckdb(tmp_path):
    (tmp_path / "unrelated.txt").write_text("x")
    with pytest.raises(QueryFailed, match=r"DuckDB could not run the evidence query: .*assignments"):
        run_experiment(DuckDBEngine(tmp_path), EXPERIMENT, METRICS)


def test_a_missing_table_is_a_clear_error_on_postgres(postgres_schema):
    tables = Tables(assignments=f"{postgres_schema}.nope", events=f"{postgres_schema}.events")
    with pytest.raises(QueryFailed, match=r"PostgreSQL could not run the evidence query: .*nope"):
        run_experiment(PostgresEngine(PG), EXPERIMENT, METRICS, tables=tables)


def test_a_missing_source_or_experiment_is_a_clear_error(tmp_path, small_parquet):
    with pytest.raises(QueryFailed, match="no such DuckDB file"):
        DuckDBEngine(tmp_path / "missing.duckdb")
    with pytest.raises(QueryFailed, match="no assigned units"):
        run_experiment(DuckDBEngine(small_parquet), "no-such-experiment", METRICS)


def test_an_unreachable_postgres_is_a_clear_error():
    with pytest.raises(QueryFailed, match="PostgreSQL could not run"):
        PostgresEngine("postgresql://postgres@127.0.0.1:1/test").fetch("SELECT 1")


def test_units_without_events_count_as_zero(tmp_path):
    import duckdb

    path = tmp_path / "tiny.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE assignments(unit_id INT, experiment TEXT, variation TEXT, first_exposure_at TIMESTAMP)"
        )
        con.execute('CREATE TABLE events(unit_id INT, "at" TIMESTAMP, name TEXT, value DOUBLE)')
        con.execute(
            "INSERT INTO assignments VALUES (1,'x','a','2026-01-01'),(2,'x','a','2026-01-01'),(3,'x','b','2026-01-01')"
        )
        # Unit 1: one purchase before exposure (ignored), one at exposure, one after the 7-day window.
        con.execute(
            "INSERT INTO events VALUES (1,'2025-12-31','purchase',5),(1,'2026-01-01','purchase',10),"
            "(1,'2026-01-09','purchase',20),(3,'2026-01-02','purchase',7)"
        )
    metrics = [
        Metric("revenue", "sum", Selection(("purchase",), window_days=7), covariate_days=7),
        Metric("conversion", "proportion", Selection(("purchase",), window_days=7)),
        Metric("order_value", "mean", Selection(("purchase",))),
    ]
    evidence = run_experiment(DuckDBEngine(path), "x", metrics)
    revenue = evidence.metrics["revenue"]["a"]
    assert isinstance(revenue, CupedStats)
    assert (float(revenue.post.n), float(revenue.post.sum), float(revenue.pre.sum)) == (2, 10, 5)
    conversion, mean, revenue_b = (
        evidence.metrics["conversion"]["a"],
        evidence.metrics["order_value"]["a"],
        evidence.metrics["revenue"]["b"],
    )
    assert (
        isinstance(conversion, MeanStats)
        and isinstance(mean, MeanStats)
        and isinstance(revenue_b, CupedStats)
    )
    assert float(conversion.sum) == 1
    assert (float(mean.n), float(mean.sum)) == (1, 15)  # unit 2 has no purchase: left out of the mean
    assert np.isclose(float(revenue_b.post.sum), 7)
