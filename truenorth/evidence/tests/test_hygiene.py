"""Exposure and assignment hygiene on real engines (DuckDB and PostgreSQL) against the pandas reference:
units assigned to more than one variation are excluded from every metric and counted (never twice)."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from truenorth.evidence import reference
from truenorth.evidence.compile import (
    EXCLUDED,
    QUANTILE_FUNCTIONS,
    Tables,
    compile_experiment,
    compile_quantiles,
    quantile_levels,
)
from truenorth.evidence.metrics import Denominator, Metric, MetricError, Selection, metric_from_dict
from truenorth.evidence.run import (
    DuckDBEngine,
    Engine,
    Evidence,
    PostgresEngine,
    QueryFailed,
    compare_to_control,
    run_experiment,
)
from truenorth.evidence.synthetic import (
    EVENT_NAMES,
    EXPERIMENT,
    create_postgres_tables,
    generate,
    standard_metrics,
)
from truenorth.stats.quantile import QuantileStats

from .conftest import rows_close

PG = os.environ.get("HYGIENE_PG", "postgresql://postgres@127.0.0.1:5432/test_hygiene")
METRICS = standard_metrics()
#: Units given a second assignment row in the other variation, and units given the same one twice.
MULTI, DUPLICATED = 37, 25


def frames(events: int = 20_000, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The synthetic experiment as pandas frames, with some units assigned to both variations (a
    later row in the other variation) and some assigned twice to the same one (not excluded)."""
    assignments, ev = next(iter(generate(events, seed=seed, chunk_units=10**9)))
    a = pd.DataFrame(
        {
            "unit_id": assignments["unit_id"],
            "experiment": EXPERIMENT,
            "variation": assignments["variation"].astype(str),
            "first_exposure_at": assignments["first_exposure_at"],
        }
    )
    names = np.array(EVENT_NAMES)
    e = pd.DataFrame(
        {
            "unit_id": ev["unit_id"],
            "at": ev["at"],
            "name": names[ev["name"].astype(np.int64)],
            "value": np.where(np.isnan(ev["value"]), np.nan, ev["value"]),
        }
    )
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(a), MULTI + DUPLICATED, replace=False)
    multi = a.iloc[picked[:MULTI]].copy()
    multi["variation"] = np.where(multi["variation"] == "control", "treatment", "control")
    multi["first_exposure_at"] = multi["first_exposure_at"] + pd.Timedelta(hours=5)
    same = a.iloc[picked[MULTI:]].copy()
    same["first_exposure_at"] = same["first_exposure_at"] + pd.Timedelta(days=2)
    other = a.iloc[:50].copy()
    other["experiment"] = "another-experiment"
    other["variation"] = "control"
    return pd.concat([a, multi, same, other], ignore_index=True), e


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return frames()


@pytest.fixture(scope="module")
def duck_dir(tmp_path_factory: pytest.TempPathFactory, data: tuple[pd.DataFrame, pd.DataFrame]) -> Path:
    directory = tmp_path_factory.mktemp("hygiene")
    a, e = data
    a.to_parquet(directory / "assignments.parquet")
    e.to_parquet(directory / "events.parquet")
    return directory


@pytest.fixture(scope="module")
def pg_tables(data: tuple[pd.DataFrame, pd.DataFrame]) -> Iterator[Tables]:
    schema = f"hygiene_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(PG, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG}: {exc}")
    try:
        with conn.cursor() as cur:
            create_postgres_tables(cur, schema)
            for frame, name in zip(data, ("assignments", "events"), strict=True):
                buffer = io.StringIO()
                frame.to_csv(buffer, header=False, index=False)
                statement = psycopg.sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv)").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(name)
                )
                with cur.copy(statement) as copy:
                    copy.write(buffer.getvalue())
        yield Tables(assignments=f"{schema}.assignments", events=f"{schema}.events")
    finally:
        conn.execute(
            psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema))
        )
        conn.close()


def summary(
    engine: Engine, metrics: Any = METRICS, tables: Tables | None = None
) -> tuple[Evidence, dict[str, Any]]:
    evidence = run_experiment(engine, EXPERIMENT, metrics, tables=tables)
    names = ("units", *evidence.query.columns)
    rows = {str(r[0]): dict(zip(names, r[1:], strict=True)) for r in engine.fetch(evidence.query.sql)}
    return evidence, rows


def check_against_reference(
    evidence: Evidence, rows: dict[str, Any], data: Any, metrics: Any = METRICS
) -> None:
    assignments, events = data
    expected = reference.summarise(assignments, events, EXPERIMENT, metrics)
    assert set(rows) == set(expected) == {"control", "treatment", "None"}
    assert rows["None"]["units"] == expected["None"]["units"] == MULTI
    assert rows["None"][EXCLUDED] == 1
    for variation in ("control", "treatment"):
        assert not rows_close(rows[variation], expected[variation]), variation
    assert evidence.excluded_units == MULTI
    assert set(evidence.units) == {"control", "treatment"}
    assert evidence.units == {v: int(expected[v]["units"]) for v in ("control", "treatment")}


def test_multi_assigned_units_are_excluded_and_counted_on_duckdb(duck_dir, data):
    evidence, rows = summary(DuckDBEngine(duck_dir))
    check_against_reference(evidence, rows, data)
    # Not double-counted: every unit of the experiment is in exactly one of the three groups.
    a = data[0]
    distinct = a[a["experiment"] == EXPERIMENT]["unit_id"].nunique()
    assert sum(evidence.units.values()) + evidence.excluded_units == distinct


def test_multi_assigned_units_are_excluded_and_counted_on_postgres(pg_tables, data):
    evidence, rows = summary(PostgresEngine(PG), tables=pg_tables)
    check_against_reference(evidence, rows, data)


def test_without_multi_assigned_units_nothing_is_excluded(small_parquet):
    evidence = run_experiment(DuckDBEngine(small_parquet), EXPERIMENT, METRICS)
    assert evidence.excluded_units == 0
    assert set(evidence.units) == {"control", "treatment"}


def test_an_experiment_whose_units_are_all_multi_assigned_says_so(tmp_path):
    import duckdb

    path = tmp_path / "all_multi.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE assignments AS SELECT * FROM (VALUES (1, 'x', 'control', TIMESTAMP '2026-01-01'),"
            " (1, 'x', 'treatment', TIMESTAMP '2026-01-02')) t(unit_id, experiment, variation, first_exposure_at)"
        )
        con.execute(
            "CREATE TABLE events AS SELECT * FROM (VALUES (1, TIMESTAMP '2026-01-03', 'purchase', 5.0))"
            ' t(unit_id, "at", name, value)'
        )
    with pytest.raises(QueryFailed, match="1 units are assigned to more than one variation"):
        run_experiment(DuckDBEngine(path), "x", METRICS[:1])


# --- exposure and conversion windows ---------------------------------------------------------------

WINDOWED = [
    Metric(
        "late_purchases",
        "count",
        Selection(("purchase",), window_days=7, delay_hours=36),
        exposure_start="2026-01-04",
        exposure_end="2026-01-11T12:00:00",
    ),
    Metric("early_revenue", "sum", Selection(("purchase",), delay_hours=6), exposure_end="2026-01-08"),
    Metric(
        "revenue_per_view_window",
        "ratio",
        Selection(("purchase",), window_days=3, delay_hours=1),
        denominator=Denominator("count", Selection(("page_view",), window_days=3)),
        exposure_start="2026-01-05 00:00:00",
    ),
    Metric(
        "conversion_late",
        "proportion",
        Selection(("purchase",), delay_hours=24),
        covariate_days=7,
        exposure_start="2026-01-03",
    ),
    Metric("mean_late", "mean", Selection(("purchase",), delay_hours=48), exposure_end="2026-01-09"),
]


def test_windows_match_the_reference_on_duckdb(duck_dir, data):
    evidence, rows = summary(DuckDBEngine(duck_dir), WINDOWED)
    check_against_reference(evidence, rows, data, WINDOWED)
    # The exposure window leaves units out of the metric's n, not out of the experiment.
    assert rows["control"]["late_purchases__n"] < rows["control"]["units"]
    assert 0 < rows["control"]["late_purchases__sum"] < rows["control"]["early_revenue__n"] * 10


def test_windows_match_the_reference_on_postgres(pg_tables, data):
    evidence, rows = summary(PostgresEngine(PG), WINDOWED, tables=pg_tables)
    check_against_reference(evidence, rows, data, WINDOWED)


def test_old_definitions_mean_the_same(duck_dir):
    """No delay and no exposure window: the SQL of a definition without the new fields is unchanged
    in meaning (delay 0 is the same query as no delay)."""
    plain = [Metric("p", "count", Selection(("purchase",), window_days=7))]
    zero = [Metric("p", "count", Selection(("purchase",), window_days=7, delay_hours=0))]
    assert compile_experiment(plain, EXPERIMENT).sql == compile_experiment(zero, EXPERIMENT).sql
    assert "CASE WHEN exposed_at" not in compile_experiment(plain, EXPERIMENT).sql


# --- quantiles --------------------------------------------------------------------------------------

QUANTILES = [
    Metric("order_p50", "quantile", Selection(("purchase",)), quantile=0.5),
    Metric("order_p90", "quantile", Selection(("purchase",), window_days=7, delay_hours=2), quantile=0.9),
    Metric("order_p99", "quantile", Selection(("purchase",)), quantile=0.99, exposure_start="2026-01-05"),
]


def check_quantiles(evidence: Evidence, data: Any) -> None:
    assignments, events = data
    expected = reference.quantiles(assignments, events, EXPERIMENT, QUANTILES)
    assert set(expected) == {"control", "treatment"}
    for m in QUANTILES:
        for variation, want in expected.items():
            got = evidence.metrics[m.name][variation]
            assert isinstance(got, QuantileStats)
            assert float(got.n) == want[f"{m.name}__n"] > 20
            assert float(got.nu) == m.quantile
            for stat, value in (("quantile", got.quantile), ("lower", got.lower), ("upper", got.upper)):
                assert float(value) == pytest.approx(want[f"{m.name}__{stat}"], rel=1e-12), (m.name, stat)
            assert float(got.lower) <= float(got.quantile) <= float(got.upper)
    # Against numpy directly, on all values pooled per variation (p50: no window, no exposure filter).
    a, e = data
    mine = a[a["experiment"] == EXPERIMENT].groupby("unit_id")["variation"].agg(["min", "nunique"])
    single = mine[mine["nunique"] == 1]["min"]
    first = a[a["experiment"] == EXPERIMENT].groupby("unit_id")["first_exposure_at"].min()
    p = e[(e["name"] == "purchase") & e["value"].notna() & e["unit_id"].isin(single.index)]
    p = p[p["at"] >= p["unit_id"].map(first)]
    for variation in ("control", "treatment"):
        values = p[p["unit_id"].map(single) == variation]["value"].to_numpy()
        median = evidence.metrics["order_p50"][variation]
        assert isinstance(median, QuantileStats)
        assert float(median.quantile) == pytest.approx(np.median(values))


def test_quantiles_match_numpy_on_duckdb(duck_dir, data):
    evidence = run_experiment(DuckDBEngine(duck_dir), EXPERIMENT, QUANTILES + METRICS[:1])
    check_quantiles(evidence, data)
    assert evidence.quantile_query is not None and "QUANTILE_CONT" in evidence.quantile_query.sql
    assert evidence.excluded_units == MULTI
    compared = compare_to_control(evidence, "control")
    assert set(compared["order_p90"]) == {"treatment"}


def test_quantiles_match_numpy_on_postgres(pg_tables, data):
    evidence = run_experiment(PostgresEngine(PG), EXPERIMENT, QUANTILES, tables=pg_tables)
    check_quantiles(evidence, data)
    assert evidence.quantile_query is not None and "PERCENTILE_CONT" in evidence.quantile_query.sql


def test_quantile_sql_per_dialect():
    n = {"order_p90": {"control": 1000.0, "treatment": 900.0}}
    expected = {
        "duckdb": "QUANTILE_CONT(",
        "postgres": "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY",
        "spark": "PERCENTILE(",
        "clickhouse": "quantileExactInclusive(0.9)(",
        "trino": "APPROX_PERCENTILE(",
        "snowflake": "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY",
    }
    for dialect, fragment in expected.items():
        sql = compile_quantiles(QUANTILES[1:2], EXPERIMENT, n, dialect=dialect).sql
        assert fragment in sql.replace("\n    ", " ").replace("\n", " "), dialect
        assert dialect in QUANTILE_FUNCTIONS
    with pytest.raises(MetricError) as caught:
        compile_experiment(QUANTILES[1:2], EXPERIMENT, dialect="bigquery")
    assert caught.value.field == "aggregation"
    lower, upper = quantile_levels(0.9, 1000)
    assert lower == pytest.approx(0.9 - 1.959963984540054 * (0.09 / 1000) ** 0.5)
    assert upper == pytest.approx(0.9 + 1.959963984540054 * (0.09 / 1000) ** 0.5)
    assert quantile_levels(0.99, 10) == (pytest.approx(0.99 - 1.96 * (0.0099 / 10) ** 0.5, abs=1e-4), 1.0)


# --- definitions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "q", "aggregation": "quantile", "events": "purchase"}, "q.quantile"),
        ({"name": "q", "aggregation": "quantile", "events": "purchase", "quantile": 1.5}, "q.quantile"),
        ({"name": "q", "aggregation": "quantile", "events": "purchase", "quantile": "0.9"}, "q.quantile"),
        ({"name": "q", "aggregation": "quantile", "events": "purchase", "quantile": True}, "q.quantile"),
        ({"name": "q", "aggregation": "sum", "events": "purchase", "quantile": 0.9}, "q.quantile"),
        (
            {
                "name": "q",
                "aggregation": "quantile",
                "events": "purchase",
                "quantile": 0.9,
                "covariate_days": 7,
            },
            "q.covariate_days",
        ),
        ({"name": "w", "events": "purchase", "delay_hours": -1}, "w.delay_hours"),
        ({"name": "w", "events": "purchase", "delay_hours": 1.5}, "w.delay_hours"),
        ({"name": "w", "events": "purchase", "delay_hours": 48, "window_days": 2}, "w.delay_hours"),
        ({"name": "w", "events": "purchase", "exposure_start": "yesterday"}, "w.exposure_start"),
        ({"name": "w", "events": "purchase", "exposure_end": 20260101}, "w.exposure_end"),
        (
            {"name": "w", "events": "purchase", "exposure_start": "2026-02-01", "exposure_end": "2026-01-01"},
            "w.exposure_end",
        ),
        (
            {
                "name": "r",
                "aggregation": "ratio",
                "events": "purchase",
                "denominator": {"events": "page_view", "delay_hours": "soon"},
            },
            "r.denominator.delay_hours",
        ),
    ],
)
def test_bad_definitions_name_the_field(data, field):
    with pytest.raises(MetricError) as caught:
        metric_from_dict(data)
    assert caught.value.field == field


def test_definitions_with_the_new_fields_are_read_and_normalised():
    import datetime as dt

    m = metric_from_dict(
        {
            "name": "p90",
            "aggregation": "quantile",
            "quantile": 0.9,
            "events": ["purchase"],
            "window_days": 7,
            "delay_hours": 2,
            "exposure_start": dt.date(2026, 1, 2),
            "exposure_end": "2026-01-09T01:00:00+01:00",
        }
    )
    assert m.quantile == 0.9 and m.select.delay_hours == 2 and m.select.window_days == 7
    assert (m.exposure_start, m.exposure_end) == ("2026-01-02 00:00:00", "2026-01-09 00:00:00")
    with pytest.raises(MetricError):  # 1 is not a quantile level (0.001-0.999)
        metric_from_dict({"name": "q", "aggregation": "quantile", "events": "x", "quantile": 1})


# --- the same on Spark (local mode) and ClickHouse (chDB) ---------------------------------------------


def _tables(duck_dir: Path) -> dict[str, str]:
    return {name: str(duck_dir / f"{name}.parquet") for name in ("assignments", "events")}


@pytest.fixture(scope="module")
def spark(duck_dir: Path) -> Iterator[Any]:
    from truenorth.engines.registry import connect

    with connect("spark", {"master": "local[2]", "tables": _tables(duck_dir)}) as connector:
        yield connector


def _everything_matches(engine: Any, data: Any) -> None:
    evidence, rows = summary(engine, METRICS + WINDOWED)
    check_against_reference(evidence, rows, data, METRICS + WINDOWED)
    check_quantiles(run_experiment(engine, EXPERIMENT, QUANTILES), data)


@pytest.mark.spark
def test_exclusion_windows_and_quantiles_on_spark(spark, data):
    _everything_matches(spark, data)


@pytest.mark.clickhouse
def test_exclusion_windows_and_quantiles_on_chdb(duck_dir, data):
    from truenorth.engines.registry import connect

    with connect("chdb", {"tables": _tables(duck_dir)}) as connector:
        _everything_matches(connector, data)
