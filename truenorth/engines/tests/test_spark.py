"""Apache Spark on a real engine: a local Spark in this process (one JVM for the whole file), which also
serves Spark Connect on a loopback port, so the URL path talks gRPC to a real Spark Connect server.

Same numbers as DuckDB on the planted-effect data, a timeout that stops the job on the engine, caps,
translated errors, writes refused before they are sent, and files unreachable from SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from truenorth.engines.base import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
)

pytestmark = pytest.mark.spark

EVENTS = 20_000
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def spark() -> Any:
    """The process's local Spark, started once, serving Spark Connect on a loopback port as well."""
    from truenorth.engines.spark_engine import local_session

    session = local_session(
        "local[2]",
        {
            "spark.plugins": CONNECT_PLUGIN,
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(_free_port()),
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def connect_url(spark: Any) -> str:
    if CONNECT_PLUGIN not in spark.sparkContext.getConf().get("spark.plugins", ""):
        pytest.skip("the process's Spark was started elsewhere without the Spark Connect plugin")
    return f"sc://127.0.0.1:{spark.sparkContext.getConf().get('spark.connect.grpc.binding.port')}"


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from truenorth.evidence import synthetic

    directory = tmp_path_factory.mktemp("spark_events")
    synthetic.write_parquet(directory, EVENTS)
    return directory


@pytest.fixture(scope="session")
def tables(data: Path) -> dict[str, str]:
    return {name: str(data / f"{name}.parquet") for name in ("assignments", "events")}


@pytest.fixture(scope="session")
def duckdb_evidence(data: Path) -> Any:
    from truenorth.evidence import synthetic
    from truenorth.evidence.run import DuckDBEngine, run_experiment

    return run_experiment(DuckDBEngine(data), synthetic.EXPERIMENT, synthetic.standard_metrics())


def _local(tables: dict[str, str] | None = None, **limits: Any) -> Any:
    from truenorth.engines.spark_engine import SparkConnector

    return SparkConnector({"master": "local[2]", "tables": tables or {}}, Limits(**limits))


def _flat(stats: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a MeanStats / RatioStats / CupedStats, by dotted name."""
    out: dict[str, float] = {}
    for key, value in vars(stats).items():
        if hasattr(value, "__dict__"):
            out.update(_flat(value, f"{prefix}{key}."))
        elif not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _assert_same_evidence(spark_evidence: Any, duckdb_evidence: Any) -> None:
    assert spark_evidence.units == duckdb_evidence.units
    assert set(spark_evidence.units) == {"control", "treatment"}
    for metric, per_variation in duckdb_evidence.metrics.items():
        for variation, expected in per_variation.items():
            got = _flat(spark_evidence.metrics[metric][variation])
            want = _flat(expected)
            assert set(got) == set(want)
            for key, value in want.items():
                name = f"{metric}/{variation}/{key}"
                if key.endswith("n") or metric in ("purchases", "page_views", "conversion"):
                    assert got[key] == value, name  # counts (and sums of counts) are exact
                else:
                    assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), name


def test_evidence_on_local_spark_matches_duckdb(
    spark: Any, tables: dict[str, str], duckdb_evidence: Any
) -> None:
    from truenorth.evidence import synthetic
    from truenorth.evidence.run import run_experiment

    with _local(tables) as connector:
        evidence = run_experiment(connector, synthetic.EXPERIMENT, synthetic.standard_metrics())
    _assert_same_evidence(evidence, duckdb_evidence)


def test_evidence_over_spark_connect_matches_duckdb(
    connect_url: str, tables: dict[str, str], duckdb_evidence: Any
) -> None:
    from truenorth.engines.registry import connect
    from truenorth.engines.spark_engine import SparkConnector
    from truenorth.evidence import synthetic
    from truenorth.evidence.run import run_experiment

    with connect("spark", {"url": connect_url, "tables": tables}) as connector:
        assert isinstance(connector, SparkConnector)
        assert connector.spark.conf.get("spark.sql.runSQLOnFiles") == "false"
        evidence = run_experiment(connector, synthetic.EXPERIMENT, synthetic.standard_metrics())
    _assert_same_evidence(evidence, duckdb_evidence)


def test_measure_query_returns_timestamp_and_number_rows(spark: Any, tmp_path: Path) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    days = [dt.datetime(2026, 1, d) for d in (1, 2, 3)]
    pq.write_table(
        pa.table(
            {
                "day": pa.array(days, pa.timestamp("us")),
                "at": pa.array(days, pa.timestamp("us", tz="UTC")),
                "value": [1.5, 2.0, 4.25],
            }
        ),
        tmp_path / "t.parquet",
    )
    with _local({"t": str(tmp_path / "t.parquet")}) as connector:
        rows = connector.fetch("SELECT day, value FROM t ORDER BY day")
        assert connector.columns == ["day", "value"]
        assert rows == [(days[0], 1.5), (days[1], 2.0), (days[2], 4.25)]
        # An instant (TIMESTAMP) comes back as an aware UTC datetime whatever the server's time zone.
        (first,) = connector.fetch("SELECT min(at) AS at FROM t")
        assert first == (days[0].replace(tzinfo=dt.UTC),)


LONG_QUERY = (
    "SELECT count(*) AS n FROM range(1000000) AS a CROSS JOIN range(1000000) AS b WHERE a.id % 7 = b.id % 11"
)


def _assert_cancelled_on_the_engine(spark: Any, connector: Any) -> None:
    tracker = spark.sparkContext.statusTracker()
    with connector:
        started = time.monotonic()
        with pytest.raises(EngineTimeout) as raised:
            connector.fetch(LONG_QUERY)
        assert time.monotonic() - started < 30
        assert raised.value.field == "timeout_seconds"
        deadline = time.monotonic() + 5
        while tracker.getActiveJobsIds() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(tracker.getActiveJobsIds()) == []
        # The session is usable afterwards.
        connector.limits = Limits()
        assert connector.fetch("SELECT 1 AS one") == [(1,)]


def test_timeout_cancels_the_job_on_the_engine(spark: Any) -> None:
    _assert_cancelled_on_the_engine(spark, _local(timeout_seconds=3))


def test_timeout_cancels_the_job_over_spark_connect(spark: Any, connect_url: str) -> None:
    from truenorth.engines.spark_engine import SparkConnector

    _assert_cancelled_on_the_engine(spark, SparkConnector({"url": connect_url}, Limits(timeout_seconds=3)))


def test_row_and_byte_caps(spark: Any) -> None:
    with _local(max_rows=5) as connector:
        assert len(connector.fetch("SELECT id FROM range(5)")) == 5
        with pytest.raises(ResultTooLarge):
            connector.fetch("SELECT id FROM range(1000000)")
    with _local(max_bytes=1024) as connector, pytest.raises(ResultTooLarge):
        connector.fetch("SELECT repeat('x', 2000) AS s")


def test_errors_name_the_table_and_the_column(spark: Any, tables: dict[str, str]) -> None:
    with _local(tables) as connector:
        with pytest.raises(EngineError) as missing_table:
            connector.fetch("SELECT * FROM visits")
        assert "table `visits` not found on Spark" in str(missing_table.value)
        assert "tables.visits" in str(missing_table.value)
        with pytest.raises(EngineError) as missing_column:
            connector.fetch("SELECT revenue FROM events")
        assert "column `revenue`" in str(missing_column.value)
        assert "Traceback" not in str(missing_column.value)
        assert "\n" not in str(missing_column.value)


@pytest.mark.parametrize(
    "sql",
    [
        "DROP VIEW events",
        "CREATE TABLE copy AS SELECT * FROM events",
        "INSERT INTO events SELECT * FROM events",
        "SELECT 1; DROP VIEW events",
        "SET spark.sql.runSQLOnFiles=true",
    ],
)
def test_writes_and_ddl_are_refused_before_sending(spark: Any, tables: dict[str, str], sql: str) -> None:
    connector = _local(tables)
    with pytest.raises(NotReadOnly):
        connector.fetch(sql)
    assert not connector.connected  # refused before even connecting
    with connector:
        assert connector.fetch("SELECT count(*) FROM events")[0][0] > 0


def test_sql_cannot_read_files(spark: Any, tables: dict[str, str]) -> None:
    from pyspark.errors import AnalysisException

    with _local(tables) as connector:
        assert connector.spark.conf.get("spark.sql.runSQLOnFiles") == "false"
        # Even past the read-only check, the engine itself refuses to read a path named in SQL.
        with pytest.raises(AnalysisException):
            connector.spark.sql(f"SELECT * FROM parquet.`{tables['events']}`").collect()
        with pytest.raises(EngineError):
            connector.fetch(f"SELECT * FROM parquet.`{tables['events']}`")


def test_temp_views_are_per_connector(spark: Any, tables: dict[str, str]) -> None:
    with _local(tables) as one, _local() as other:
        assert one.fetch("SELECT count(*) FROM assignments")[0][0] > 0
        with pytest.raises(EngineError, match="assignments"):
            other.fetch("SELECT count(*) FROM assignments")


def test_unreachable_connect_url_is_unavailable_within_the_connect_timeout() -> None:
    from truenorth.engines.spark_engine import SparkConnector

    connector = SparkConnector({"url": "sc://127.0.0.1:1"}, Limits(connect_timeout_seconds=2))
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as raised:
        connector.fetch("SELECT 1")
    assert time.monotonic() - started < 5
    assert raised.value.field == "url"
    assert "127.0.0.1:1" in str(raised.value)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "url"),
        ({"url": "sc://h:15002", "master": "local[2]"}, "url"),
        ({"url": "http://h:15002"}, "url"),
        ({"url": "sc://h:15002/;session_id=x"}, "url"),
        ({"master": "spark://cluster:7077"}, "master"),
        ({"master": "local[2]", "tables": {"bad name": "/tmp/x.parquet"}}, "tables"),
        ({"master": "local[2]", "tables": {"events": "relative.parquet"}}, "tables.events"),
        ({"master": "local[2]", "tables": {"events": "/no/such/file.parquet"}}, "tables.events"),
        ({"master": "local[2]", "tables": {"events": "/etc/passwd"}}, "tables.events"),
        ({"master": "local[2]", "database": "x; DROP"}, "database"),
    ],
)
def test_bad_configuration_names_the_setting(config: dict[str, Any], field: str) -> None:
    from truenorth.engines.spark_engine import SparkConnector

    with pytest.raises(EngineError) as raised:
        SparkConnector(config)
    assert raised.value.field == field


def test_messages_never_show_the_url_token() -> None:
    from truenorth.engines.spark_engine import SparkConnector

    connector = SparkConnector({"url": "sc://spark.example:15002/;token=s3cret;use_ssl=true"})
    error = connector.translate(RuntimeError("INTERNAL: something broke"))
    assert "s3cret" not in str(error)
    assert "spark.example:15002" in str(error)
