"""The DuckDB connector on a real DuckDB: read-only, confined to the source's files, cancelled at the
timeout, capped, and errors that name what to fix."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from truenorth.engines.base import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
)
from truenorth.engines.duckdb_engine import DuckDBConnector
from truenorth.engines.registry import connect


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "events.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute('CREATE TABLE events (unit_id INT, "at" TIMESTAMPTZ, value DOUBLE)')
        con.execute(
            "INSERT INTO events SELECT i, TIMESTAMPTZ '2026-01-01 12:00:00+02' + i * INTERVAL 1 HOUR, i * 1.5 "
            "FROM range(100) t(i)"
        )
    return path


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    path = tmp_path / "clicks.parquet"
    duckdb.execute(
        f"COPY (SELECT i AS unit, 'click' AS name FROM range(10) t(i)) TO '{path}' (FORMAT parquet)"
    )
    return path


class Unchecked(DuckDBConnector):
    """The connector without the read-only check, to prove the engine refuses on its own."""

    def check(self, sql: str) -> None:
        pass


def test_a_database_file_is_queried_and_timestamps_come_back_in_utc(database: Path):
    with connect("duckdb", {"path": str(database)}) as connector:
        rows = connector.fetch('SELECT unit_id, "at", value FROM events ORDER BY unit_id LIMIT 2')
        assert connector.columns == ["unit_id", "at", "value"]
    assert rows[0] == (0, dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC), 0.0)
    assert rows[1][0] == 1


def test_tables_are_views_on_their_files(parquet: Path, tmp_path: Path):
    parts = tmp_path / "parts"
    parts.mkdir()
    duckdb.execute(f"COPY (SELECT 1 AS x UNION ALL SELECT 2) TO '{parts / 'a.parquet'}' (FORMAT parquet)")
    config = {"tables": {"clicks": str(parquet), "parts": str(parts)}}
    with DuckDBConnector(config) as connector:
        assert connector.fetch("SELECT count(*), min(name) FROM clicks") == [(10, "click")]
        assert connector.fetch("SELECT sum(x) FROM parts") == [(3,)]
        # The listed file may be read directly too (what the evidence SQL does for file tables).
        assert connector.fetch(f"SELECT count(*) FROM read_parquet('{parquet}')") == [(10,)]


def test_writes_ddl_and_several_statements_are_refused_before_sending(database: Path):
    connector = DuckDBConnector({"path": str(database)})
    for sql in (
        "DELETE FROM events",
        "CREATE TABLE x (a INT)",
        "SELECT 1; SELECT 2",
        "COPY events TO '/tmp/out.csv'",
        "ATTACH '/tmp/other.duckdb' AS other",
        "SET enable_external_access = true",
    ):
        with pytest.raises(NotReadOnly) as caught:
            connector.fetch(sql)
        assert caught.value.field == "query", sql
    assert not connector.connected  # nothing was sent: not even connected


def test_the_engine_itself_is_read_only_and_confined(database: Path, parquet: Path):
    with Unchecked({"path": str(database), "files": [str(parquet)]}) as connector:
        with pytest.raises(EngineError):
            connector.fetch("INSERT INTO events VALUES (1, now(), 1)")
        with pytest.raises(EngineError):
            connector.fetch("SET enable_external_access = true")  # lock_configuration
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT * FROM read_csv('/etc/passwd')")
        assert caught.value.message.startswith('permission denied: file "/etc/passwd"')
        assert caught.value.field == "files"
        assert connector.fetch("SELECT count(*) FROM events") == [(100,)]


def test_a_long_query_is_interrupted_on_the_engine_at_the_timeout(database: Path):
    connector = DuckDBConnector({"path": str(database)}, Limits(timeout_seconds=1))
    with connector:
        started = time.monotonic()
        with pytest.raises(EngineTimeout) as caught:
            connector.fetch("SELECT sum(hash(a.i * b.i)) FROM range(100000) a(i), range(100000) b(i)")
        assert time.monotonic() - started < 2.0
        assert caught.value.field == "timeout_seconds"
        # The engine stopped (not a thread still burning the CPU): the session answers at once.
        started = time.monotonic()
        assert connector.fetch("SELECT 42") == [(42,)]
        assert time.monotonic() - started < 0.5


def test_rows_and_bytes_are_capped(database: Path):
    with DuckDBConnector({"path": str(database)}, Limits(max_rows=10)) as connector:
        with pytest.raises(ResultTooLarge, match="more than 10 rows"):
            connector.fetch("SELECT * FROM events")
        assert len(connector.fetch("SELECT * FROM events LIMIT 10")) == 10
    with DuckDBConnector({}, Limits(max_bytes=64 * 1024)) as connector:
        with pytest.raises(ResultTooLarge, match="more than 64 KiB"):
            connector.fetch("SELECT repeat('x', 10000) FROM range(100)")


def test_missing_tables_and_columns_name_what_to_fix(database: Path, parquet: Path):
    with DuckDBConnector({"path": str(database), "tables": {"clicks": str(parquet)}}) as connector:
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT * FROM assignments")
        assert caught.value.message == (
            'table "assignments" does not exist in the DuckDB file events.duckdb: '
            "check tables.assignments in the mapping"
        )
        assert caught.value.field == "tables.assignments"
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT e.amount FROM events e")
        assert caught.value.message.startswith('column "amount" does not exist in table "e"')
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT stamp FROM clicks")
        assert caught.value.message.startswith('column "stamp" does not exist')
        for error in (caught.value,):
            assert "Did you mean" not in error.message and "Candidate" not in error.message
            assert "\n" not in error.message


def test_missing_or_unsafe_paths_are_unavailable(tmp_path: Path):
    cases: list[tuple[dict[str, Any], str]] = [
        ({"path": str(tmp_path / "nope.duckdb")}, "path"),
        ({"path": "relative.duckdb"}, "path"),
        ({"files": [str(tmp_path / "nope.parquet")]}, "files"),
        ({"tables": {"x; DROP": str(tmp_path)}}, "tables.x; DROP"),
        ({"tables": {"t": str(tmp_path / "nope.parquet")}}, "tables.t"),
    ]
    for config, field in cases:
        with pytest.raises(EngineUnavailable) as caught:
            DuckDBConnector(config).connect()
        assert caught.value.field == field, config
    not_duckdb = tmp_path / "text.duckdb"
    not_duckdb.write_text("hello")
    with pytest.raises(EngineUnavailable, match="cannot open the DuckDB database"):
        DuckDBConnector({"path": str(not_duckdb)}).connect()


def test_threads_and_memory_are_set_and_clamped(database: Path):
    connector = DuckDBConnector({"path": str(database), "threads": 999, "memory_limit_mb": 10**6})
    assert connector.memory_limit_mb == 8192 and connector.threads >= 1
    with connector:
        (threads,) = connector.fetch("SELECT current_setting('threads')")[0]
        assert int(threads) == connector.threads


def test_files_are_confined_unless_the_operator_process_says_otherwise(parquet: Path):
    query = f"SELECT count(*) FROM read_parquet('{parquet}')"
    with DuckDBConnector({}) as confined, pytest.raises(NotReadOnly):
        confined.fetch(query)  # no files listed: the file readers are refused before sending
    with DuckDBConnector({}, confine_files=False) as operator:  # the CLI / benchmarks only
        assert operator.fetch(query) == [(10,)]
