"""The table/column mapping: a non-default mapping (renamed tables and columns, Parquet files, reserved
words) gives the same numbers as today's names on DuckDB and PostgreSQL; names are quoted, never pasted;
engine errors name the mapping field to fix (never "Did you mean …"); auto-discovery."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import psycopg
import pytest

from truenorth.evidence.compile import Tables, compile_experiment
from truenorth.evidence.mapping import (
    discovered_metrics,
    distinct_names_sql,
    explain,
    mapping_of,
    tables_from_mapping,
    with_flag,
)
from truenorth.evidence.metrics import MetricError
from truenorth.evidence.run import DuckDBEngine, PostgresEngine, QueryFailed, run_experiment
from truenorth.evidence.synthetic import EXPERIMENT, standard_metrics

from .conftest import rows_close

METRICS = standard_metrics()
#: Every name differs from the defaults; "order" and "select" are reserved words, "Arm" is mixed case.
RENAMED = {
    "assignments": {
        "table": "exposures.parquet",
        "unit": "user_id",
        "variation": "Arm",
        "exposed_at": "seen_at",
        "experiment": "select",
    },
    "events": {"table": "clicks.parquet", "unit": "uid", "name": "kind", "value": "order", "at": "ts"},
}


def write_renamed(source: Path, target: Path) -> None:
    """The synthetic experiment's tables as Parquet files with every column renamed (duckdb COPY)."""
    target.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(":memory:") as con:
        con.execute(
            f"""COPY (SELECT unit_id AS user_id, variation AS "Arm", first_exposure_at AS seen_at,
                       experiment AS "select" FROM read_parquet('{source / "assignments.parquet"}'))
                TO '{target / "exposures.parquet"}' (FORMAT parquet)"""
        )
        con.execute(
            f"""COPY (SELECT unit_id AS uid, name AS kind, value AS "order", "at" AS ts
                      FROM read_parquet('{source / "events.parquet"}'))
                TO '{target / "clicks.parquet"}' (FORMAT parquet)"""
        )


def _summary(engine, tables=None):
    evidence = run_experiment(engine, EXPERIMENT, METRICS, tables=tables)
    names = ("variation", "units", *evidence.query.columns)
    return {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in engine.fetch(evidence.query.sql)}


@pytest.fixture(scope="module")
def renamed(small_parquet, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("renamed")
    write_renamed(small_parquet, directory)
    return directory


def test_a_renamed_mapping_on_parquet_files_gives_the_same_numbers_as_the_default_names(renamed, small_parquet):
    tables = tables_from_mapping(RENAMED)
    absolute = Tables(
        **{**tables.__dict__, "assignments": str(renamed / "exposures.parquet"), "events": str(renamed / "clicks.parquet")}
    )
    mapped = _summary(DuckDBEngine(renamed), absolute)
    default = _summary(DuckDBEngine(small_parquet))
    assert set(mapped) == set(default) == {"control", "treatment"}
    for variation in mapped:
        assert not rows_close(mapped[variation], default[variation]), variation


def test_renamed_tables_inside_a_duckdb_file_give_the_same_numbers(renamed, small_parquet, tmp_path):
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(f"CREATE TABLE raw.exposures AS SELECT * FROM read_parquet('{renamed / 'exposures.parquet'}')")
        con.execute(f"CREATE TABLE raw.clicks AS SELECT * FROM read_parquet('{renamed / 'clicks.parquet'}')")
    mapping = {
        "assignments": {**RENAMED["assignments"], "table": "raw.exposures"},
        "events": {**RENAMED["events"], "table": "raw.clicks"},
    }
    mapped = _summary(DuckDBEngine(path), tables_from_mapping(mapping))
    default = _summary(DuckDBEngine(small_parquet))
    for variation in default:
        assert not rows_close(mapped[variation], default[variation]), variation


def test_mapped_names_are_quoted_identifiers_and_file_paths_escaped_literals():
    tables = Tables(assignments="it's here.parquet", unit_id="select", variation="Arm")
    sql = compile_experiment(METRICS[:1], EXPERIMENT, tables=tables).sql
    assert "READ_PARQUET('it''s here.parquet')" in sql
    assert '"select" AS unit_id' in sql and 'MIN("Arm") AS variation' in sql
    for hostile in ('events"; DROP TABLE x; --', "events; DROP TABLE x", "a.b.c.d", "x' OR 1=1"):
        with pytest.raises(MetricError):
            tables_from_mapping({"events": {"table": hostile}})
    with pytest.raises(MetricError) as caught:
        tables_from_mapping({"events": {"value": 'v"; DROP TABLE events; --'}})
    assert caught.value.field == "mapping.events.value" and "event value column" in caught.value.message
    with pytest.raises(MetricError, match="wildcards"):
        tables_from_mapping({"events": {"table": "parts/*.parquet"}})


def test_a_mapping_round_trips_and_keeps_the_defaults_for_what_it_leaves_out():
    tables = tables_from_mapping({"events": {"table": "clicks", "at": "ts"}})
    assert tables == Tables(events="clicks", at="ts")
    assert mapping_of(tables, only_changed=True) == {"assignments": {}, "events": {"table": "clicks", "at": "ts"}}
    assert tables_from_mapping(mapping_of(tables)) == tables
    assert tables_from_mapping(None) == Tables() == tables_from_mapping({})
    with pytest.raises(MetricError, match="unknown keys"):
        tables_from_mapping({"events": {"timestamp": "ts"}})


def test_a_file_on_postgresql_is_refused_before_any_sql():
    with pytest.raises(MetricError, match="files are read by a DuckDB data source") as caught:
        compile_experiment(METRICS, EXPERIMENT, dialect="postgres", tables=Tables(events="clicks.parquet"))
    assert caught.value.field == "tables.events"


# --- errors translated into what to fix -----------------------------------------------------------


def _duckdb_error(engine, tables) -> str:
    with pytest.raises(QueryFailed) as caught:
        run_experiment(engine, EXPERIMENT, METRICS, tables=tables)
    return caught.value.message


def test_a_missing_table_names_the_mapping_field_never_did_you_mean(tmp_path):
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE pg_settings_like (x INT)")
    raw = _duckdb_error(DuckDBEngine(path), Tables())
    attr, message = explain(raw, Tables(), "events.duckdb")
    assert attr == "assignments"
    assert message == "no table `assignments` in events.duckdb: set the assignment table in Evidence settings"
    # The engine's exact wording from the issue.
    attr, message = explain(
        'DuckDB could not run: Catalog Error: Table with name assignments does not exist! Did you mean "pg_settings"?',
        Tables(),
        "events.duckdb",
    )
    assert attr == "assignments" and "Did you mean" not in message and "pg_settings" not in message


def test_a_missing_column_names_the_column_field_of_the_right_table(renamed):
    files = {"assignments": str(renamed / "exposures.parquet"), "events": str(renamed / "clicks.parquet")}
    good = tables_from_mapping(RENAMED).__dict__
    cases = [
        ("first_exposure_at", "exposed", "exposure time column"),
        ("variation", "arm_x", "variation column"),
        ("experiment", "test", "experiment key column"),
        ("value", "amount", "event value column"),
        ("at", "timestamp", "event timestamp column"),
        ("event_unit_id", "unit", "event unit column"),
        ("name", "event", "event name column"),
    ]
    for attr, wrong, label in cases:
        tables = Tables(**{**good, **files, attr: wrong})
        raw = _duckdb_error(DuckDBEngine(renamed), tables)
        found, message = explain(raw, tables, "clicks directory")
        assert found == attr, (attr, raw)
        assert f"no column `{wrong}`" in message and f"set the {label} in Evidence settings" in message
        assert "Did you mean" not in message and "Candidate" not in message


def test_a_missing_file_names_the_table_field_and_the_cli_says_which_flag(tmp_path):
    tables = Tables(assignments=str(tmp_path / "nope.parquet"))
    raw = _duckdb_error(DuckDBEngine(tmp_path), tables)
    attr, message = explain(raw, Tables(assignments="nope.parquet"), "the data directory", fix=with_flag)
    assert attr == "assignments"
    assert message.startswith("no file `nope.parquet` in the data directory: set the assignment table with --assignments")


def test_postgresql_wording_is_translated_too():
    tables = Tables(assignments="raw.exposures", value="amount")
    attr, message = explain('relation "raw.exposures" does not exist LINE 5: FROM raw.exposures', tables, "“Warehouse”")
    assert (attr, message) == ("assignments", "no table `raw.exposures` in “Warehouse”: set the assignment table in Evidence settings")
    attr, message = explain('column e.amount does not exist HINT: Perhaps you meant "e.value"', tables, "“Warehouse”")
    assert attr == "value" and "event value column" in message and "Perhaps" not in message


def test_auto_discovery_is_a_count_and_a_conversion_per_event_name(renamed):
    tables = Tables(events=str(renamed / "clicks.parquet"), name="kind")
    names = [r[0] for r in DuckDBEngine(renamed).fetch(distinct_names_sql(tables, "duckdb"))]
    metrics = discovered_metrics(names)
    assert [m.name for m in metrics][:2] == ["page_view_count", "page_view_converted"]
    assert {m.aggregation for m in metrics} == {"count", "proportion"}
    with pytest.raises(MetricError, match="no event names"):
        discovered_metrics([])


# --- PostgreSQL (when DATABASE_URL is one) --------------------------------------------------------


@pytest.fixture
def postgres_renamed(renamed):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not a PostgreSQL database")
    schema = f"mapping_{uuid.uuid4().hex[:10]}"
    conn = psycopg.connect(url, connect_timeout=3, autocommit=True)
    try:
        with duckdb.connect(":memory:") as con:
            exposures = con.execute(f"SELECT * FROM read_parquet('{renamed / 'exposures.parquet'}')").fetchall()
            clicks = con.execute(f"SELECT * FROM read_parquet('{renamed / 'clicks.parquet'}')").fetchall()
        ident = psycopg.sql.Identifier(schema)
        conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(ident))
        conn.execute(
            psycopg.sql.SQL(
                'CREATE TABLE {}.exposures (user_id bigint, "Arm" text, seen_at timestamp, "select" text)'
            ).format(ident)
        )
        conn.execute(
            psycopg.sql.SQL('CREATE TABLE {}.clicks (uid bigint, kind text, "order" double precision, ts timestamp)').format(ident)
        )
        with conn.cursor() as cur:
            with cur.copy(psycopg.sql.SQL("COPY {}.exposures FROM STDIN").format(ident)) as copy:
                for row in exposures:
                    copy.write_row(row)
            with cur.copy(psycopg.sql.SQL("COPY {}.clicks FROM STDIN").format(ident)) as copy:
                for row in clicks:
                    copy.write_row(row)
        yield url, schema
    finally:
        conn.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))
        conn.close()


def test_a_renamed_mapping_on_postgresql_gives_the_same_numbers(postgres_renamed, small_parquet):
    url, schema = postgres_renamed
    mapping = {
        "assignments": {**RENAMED["assignments"], "table": f"{schema}.exposures"},
        "events": {**RENAMED["events"], "table": f"{schema}.clicks"},
    }
    mapped = _summary(PostgresEngine(url), tables_from_mapping(mapping))
    default = _summary(DuckDBEngine(small_parquet))
    for variation in default:
        assert not rows_close(mapped[variation], default[variation]), variation
    wrong = tables_from_mapping({**mapping, "events": {**mapping["events"], "value": "amount"}})
    with pytest.raises(QueryFailed) as caught:
        run_experiment(PostgresEngine(url), EXPERIMENT, METRICS, tables=wrong)
    attr, message = explain(caught.value.message, wrong, "Warehouse")
    assert attr == "value" and "set the event value column in Evidence settings" in message
