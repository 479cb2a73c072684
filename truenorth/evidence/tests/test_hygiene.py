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
from truenorth.evidence.compile import EXCLUDED, Tables
from truenorth.evidence.run import DuckDBEngine, Engine, Evidence, PostgresEngine, QueryFailed, run_experiment
from truenorth.evidence.synthetic import (
    EVENT_NAMES,
    EXPERIMENT,
    create_postgres_tables,
    generate,
    standard_metrics,
)

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
    expected = reference.summarise(*data, EXPERIMENT, metrics)
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
