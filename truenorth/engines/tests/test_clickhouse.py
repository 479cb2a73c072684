"""ClickHouse connectors on the real ClickHouse engine (chDB, embedded).

``ChDBConnector`` runs against the real engine. No ClickHouse server runs here, so ``ClickHouseConnector``
talks to a local HTTP stand-in (`_StandIn`): a tiny ``http.server`` that records each request (its
URL parameters are the settings clickhouse-connect sends) and answers like ClickHouse's HTTP interface
by running the SQL on chDB (the real engine's Native output and error texts). What the stand-in does
not prove is how a real server applies those settings; that part is "compiled", not run.
"""

from __future__ import annotations

import dataclasses
import http.server
import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest

from truenorth.engines.base import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
)
from truenorth.engines.clickhouse_engine import ChDBConnector, ClickHouseConnector, check_ast

pytestmark = pytest.mark.clickhouse

EVENTS = 30_000


@pytest.fixture(scope="session")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from truenorth.evidence.synthetic import write_parquet

    directory = tmp_path_factory.mktemp("ch_evidence")
    write_parquet(directory, EVENTS, seed=11)
    return directory


def _tables(directory: Path) -> dict[str, str]:
    return {
        "assignments": str(directory / "assignments.parquet"),
        "events": str(directory / "events.parquet"),
    }


@pytest.fixture(scope="module")
def chdb_source(parquet_dir: Path) -> Iterator[ChDBConnector]:
    connector = ChDBConnector({"tables": _tables(parquet_dir)}, Limits(timeout_seconds=30))
    with connector:
        yield connector


def _numbers(stats: Any, prefix: str = "") -> dict[str, float]:
    """Every statistic in a (nested) stats dataclass, by name."""
    out: dict[str, float] = {}
    for field in dataclasses.fields(stats):
        value = getattr(stats, field.name)
        if dataclasses.is_dataclass(value):
            out.update(_numbers(value, f"{prefix}{field.name}."))
        elif isinstance(value, np.ndarray | float | int) and not isinstance(value, bool):
            out[f"{prefix}{field.name}"] = float(value)
    return out


def _assert_same_evidence(ours: Any, duck: Any) -> None:
    assert ours.units == duck.units
    assert ours.metrics.keys() == duck.metrics.keys()
    for metric, per_variation in duck.metrics.items():
        assert ours.metrics[metric].keys() == per_variation.keys()
        for variation, expected in per_variation.items():
            got, want = _numbers(ours.metrics[metric][variation]), _numbers(expected)
            assert got.keys() == want.keys()
            for name, value in want.items():
                where = f"{metric}/{variation}/{name}"
                if name.endswith("n") and name.split(".")[-1] == "n":
                    assert got[name] == value, where  # counts: exact
                else:
                    assert math.isclose(got[name], value, rel_tol=1e-9, abs_tol=1e-12), where


def test_evidence_same_numbers_as_duckdb(chdb_source: ChDBConnector, parquet_dir: Path) -> None:
    """The compiled SQL, unchanged, on chDB: counts exact, sums to 1e-9, and quantile metrics (exact
    quantileExactInclusive on ClickHouse, QUANTILE_CONT on DuckDB) to 1e-9."""
    from truenorth.evidence.metrics import Metric, Selection
    from truenorth.evidence.run import DuckDBEngine, run_experiment
    from truenorth.evidence.synthetic import EXPERIMENT, standard_metrics

    purchases = Selection(("purchase",), window_days=7)
    metrics = [
        *standard_metrics(),
        Metric("order_value_p50", "quantile", purchases, quantile=0.5),
        Metric("order_value_p90", "quantile", purchases, quantile=0.9),
    ]
    ours = run_experiment(chdb_source, EXPERIMENT, metrics)
    duck_engine = DuckDBEngine(parquet_dir)
    try:
        duck = run_experiment(duck_engine, EXPERIMENT, metrics)
    finally:
        duck_engine.close()
    assert sum(ours.units.values()) > 1000
    _assert_same_evidence(ours, duck)


def test_evidence_sql_unchanged_without_join_use_nulls(parquet_dir: Path) -> None:
    """ClickHouse's default LEFT JOIN fills unmatched columns with type defaults: the compiled SQL gives
    the same rows with join_use_nulls = 0 and 1 (run on a plain chDB session, not the connector)."""
    from chdb.state import sqlitelike

    from truenorth.evidence.compile import compile_experiment
    from truenorth.evidence.synthetic import EXPERIMENT, standard_metrics

    sql = compile_experiment(standard_metrics(), EXPERIMENT, dialect="clickhouse").sql
    database = f"tn_test_{uuid.uuid4().hex}"
    session = sqlitelike.Connection(":memory:")
    try:
        session.query(f"CREATE DATABASE {database}")
        for name, path in _tables(parquet_dir).items():
            session.query(f"CREATE TABLE {database}.{name} ENGINE = File(Parquet, '{path}')")
        session.query(f"USE {database}")
        session.query("SET prefer_column_name_to_alias = 1")
        results = []
        for nulls in (0, 1):
            session.query(f"SET join_use_nulls = {nulls}")
            results.append(session.query(sql, "ArrowTable").to_pylist())
        assert len(results[0]) == len(results[1]) >= 2
        for a, b in zip(*results, strict=True):
            assert a.keys() == b.keys()
            for key in a:
                if isinstance(a[key], float):
                    assert math.isclose(a[key], b[key], rel_tol=1e-9), key
                else:
                    assert a[key] == b[key], key
    finally:
        session.query(f"DROP DATABASE IF EXISTS {database} SYNC")
        session.close()


def test_measure_query_returns_timestamp_number_rows(chdb_source: ChDBConnector) -> None:
    rows = chdb_source.fetch(
        "SELECT toStartOfDay(at) AS day, count() AS n FROM events WHERE name = 'purchase' GROUP BY day ORDER BY day"
    )
    assert chdb_source.columns == ["day", "n"]
    assert len(rows) > 10
    for day, n in rows:
        assert isinstance(day, datetime) and day.tzinfo is None  # naive UTC, as DuckDB returns it
        assert isinstance(n, int) and n > 0
    assert rows == sorted(rows)


def test_directory_of_parquet_parts(tmp_path: Path, parquet_dir: Path) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    parts = tmp_path / "events"
    parts.mkdir()
    table = pq.read_table(parquet_dir / "events.parquet")
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), parts / "part-0.parquet")
    pq.write_table(table.slice(half), parts / "part-1.parquet")
    with ChDBConnector({"tables": {"events": str(parts)}}) as connector:
        assert connector.fetch("SELECT count() FROM events") == [(table.num_rows,)]
    assert sorted(p.name for p in parts.iterdir()) == [
        "part-0.parquet",
        "part-1.parquet",
    ]  # close keeps files


def test_timeout_stops_the_query_on_the_engine(parquet_dir: Path) -> None:
    limits = Limits(timeout_seconds=1.5)
    with ChDBConnector({"tables": _tables(parquet_dir)}, limits) as connector:
        started = time.monotonic()
        with pytest.raises(EngineTimeout) as caught:
            connector.fetch("SELECT sum(number) FROM numbers(100000000000)")
        assert time.monotonic() - started < limits.timeout_seconds + 2
        assert caught.value.field == "timeout_seconds"
        assert connector.fetch("SELECT 1") == [(1,)]  # the session survives


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sum(number) FROM numbers(100000000000)",
        # a scalar subquery is evaluated while the query is analysed (DESCRIBE): killed there too
        "SELECT (SELECT sum(number) FROM numbers(100000000000)) AS total",
    ],
)
def test_cancel_kills_the_running_query(chdb_source: ChDBConnector, sql: str) -> None:
    """The watchdog's path on its own: KILL QUERY from the control session stops a running query long
    before max_execution_time (30 s here)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            list(chdb_source._execute(sql))
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 5
    while not chdb_source._tag and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    chdb_source._cancel()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 5
    assert outcome and "QUERY_WAS_CANCELLED" in str(outcome[0])
    assert isinstance(chdb_source.translate(outcome[0]), EngineTimeout)


def test_row_and_byte_caps(parquet_dir: Path) -> None:
    with ChDBConnector({"tables": _tables(parquet_dir)}, Limits(max_rows=10, max_bytes=2048)) as connector:
        assert len(connector.fetch("SELECT number FROM numbers(10)")) == 10
        with pytest.raises(ResultTooLarge):
            connector.fetch("SELECT number FROM numbers(1000)")
        with pytest.raises(ResultTooLarge):
            connector.fetch("SELECT repeat('x', 1000) FROM numbers(5)")


def test_missing_table_and_column_are_named(chdb_source: ChDBConnector) -> None:
    with pytest.raises(EngineError) as table:
        chdb_source.fetch("SELECT count() FROM purchases")
    assert "'purchases'" in table.value.message and table.value.field == "tables"
    with pytest.raises(EngineError) as column:
        chdb_source.fetch("SELECT revenue FROM events")
    assert "'revenue'" in column.value.message and column.value.field == "query"
    for error in (table.value, column.value):
        assert "DB::Exception" not in error.message and "tn_" not in error.message
        assert "\n" not in error.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/passwd', LineAsString)",
        "SELECT file('/etc/hostname')",
        "SELECT * FROM url('http://127.0.0.1:9/x.csv', CSV, 'a String')",
        "SELECT * FROM s3('http://127.0.0.1:9/b/x.csv')",
        "SELECT * FROM remote('127.0.0.1:9000', system.one)",
        "SELECT * FROM executable('id', TSV, 'x String')",
        "SELECT * FROM merge('.*', '.*')",
        "SELECT * FROM Python(connector)",
        "SELECT query FROM system.processes",
        "SELECT 1 IN system.one",
        "SELECT count() FROM default.events",
        "INSERT INTO events SELECT * FROM events",
        "CREATE TABLE x (a Int8) ENGINE = Memory",
        "DROP TABLE events",
        "SELECT 1; SELECT 2",
        "SET readonly = 0",
        "SELECT count() FROM events SETTINGS readonly = 0",
        "SELECT count() FROM events SETTINGS max_execution_time = 100000",
        "SELECT addressToSymbol(toUInt64(1))",
    ],
)
def test_files_urls_other_tables_and_writes_refused(chdb_source: ChDBConnector, sql: str) -> None:
    with pytest.raises(EngineError) as caught:
        chdb_source.fetch(sql)
    assert isinstance(caught.value, NotReadOnly), caught.value.message
    assert chdb_source.fetch("SELECT count() > 0 FROM events") == [(True,)]


def test_engine_refuses_what_slips_past_the_sql_checks(chdb_source: ChDBConnector) -> None:
    """Defence in depth: the session itself is readonly=1 (writes, DDL, settings, file/url functions)."""
    session = chdb_source._session
    for sql in (
        "SELECT * FROM file('/etc/passwd', LineAsString)",
        "SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a String')",
        "CREATE TABLE x (a Int8) ENGINE = Memory",
        "SELECT 1 SETTINGS max_execution_time = 100000",
    ):
        with pytest.raises(Exception, match="READONLY") as caught:
            session.query(sql)
        assert isinstance(chdb_source.translate(caught.value), NotReadOnly)


def test_connectors_do_not_see_each_other(parquet_dir: Path) -> None:
    first = ChDBConnector({"tables": {"secret": str(parquet_dir / "events.parquet")}})
    second = ChDBConnector({"tables": {"events": str(parquet_dir / "events.parquet")}})
    with first, second:
        assert first.fetch("SELECT count() > 0 FROM secret") == [(True,)]
        with pytest.raises(EngineError) as caught:
            second.fetch("SELECT count() FROM secret")
        assert caught.value.field == "tables"
        with pytest.raises(NotReadOnly):
            second.fetch(f"SELECT count() FROM {first._database}.secret")


def test_check_ast_reads_clickhouse_parse(chdb_source: ChDBConnector, tmp_path: Path) -> None:
    """The engine-side check on ClickHouse's own parse, without the SQLGlot check in front of it."""

    def ast(sql: str) -> str:
        return str(chdb_source._session.query(f"EXPLAIN AST {sql}", "TSVRaw").bytes().decode())

    check_ast(ast("WITH x AS (SELECT 1 AS a) SELECT a FROM x UNION ALL SELECT count() FROM events AS e"))
    target = tmp_path / "out.csv"
    for sql in (
        f"SELECT 1 INTO OUTFILE '{target}'",  # chDB writes it even with readonly=1
        "SELECT 1 FORMAT JSON",
        "SELECT * FROM system.one",
        "SELECT * FROM loop(numbers(2))",
        "SELECT * FROM Python(x)",
        "SELECT 1 WHERE 1 IN default.t",
        "SELECT dictGet('d', 'a', 1)",
    ):
        with pytest.raises(NotReadOnly):
            check_ast(ast(sql))
    with pytest.raises(NotReadOnly):
        chdb_source.fetch(f"SELECT 1 INTO OUTFILE '{target}'")
    assert not target.exists()


@pytest.mark.parametrize(
    "config",
    [
        {"tables": {"events": "relative.parquet"}},
        {"tables": {"events": "/no/such/file.parquet"}},
        {"tables": {"bad name": "/etc/passwd"}},
        {"tables": {"events": "/etc/passwd"}},
    ],
)
def test_bad_tables_config(config: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as caught:
        ChDBConnector(config)
    assert caught.value.field == "tables"


# -- ClickHouseConnector against a local stand-in of ClickHouse's HTTP interface ---------------------


class _StandIn:
    """Answers like ClickHouse's HTTP interface: SQL from the body (or ``query``), output in the
    format its FORMAT clause names, errors as HTTP 500 with the engine's text and
    ``X-ClickHouse-Exception-Code``. Runs the SQL on chDB and records every request's parameters."""

    def __init__(self) -> None:
        from chdb.state import sqlitelike

        self.requests: list[tuple[dict[str, str], str]] = []
        self.connect = sqlitelike.Connection
        #: The ``readonly`` of the (simulated) user's profile.
        self.profile_readonly = 0
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.answer()

            def answer(self) -> None:
                params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                sql = (params.get("query", "") + "\n" + body).strip()
                stand_in.requests.append((params, sql))
                code, payload = stand_in.run(params, sql)
                self.send_response(200 if code == 0 else 500)
                if code:
                    self.send_header("X-ClickHouse-Exception-Code", str(code))
                self.send_header("X-ClickHouse-Summary", '{"read_rows":"0"}')
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def run(self, params: dict[str, str], sql: str) -> tuple[int, bytes]:

        session = self.connect(":memory:")
        try:
            if self.profile_readonly:
                session.query(f"SET readonly = {self.profile_readonly}")
            return self._run(session, params, sql)
        finally:
            session.close()

    def _run(self, session: Any, params: dict[str, str], sql: str) -> tuple[int, bytes]:
        import re

        if sql.upper().startswith("KILL QUERY"):
            qid = params.get("param_qid", "")
            sql = f"KILL QUERY WHERE position(query, '{qid}') = 4 AND query NOT LIKE 'KILL%' ASYNC"
        elif params.get("query_id"):
            sql = f"/* {params['query_id']} */ {sql}"
        try:
            if params.get("max_execution_time"):  # the one setting the stand-in applies (a timeout test)
                session.query(f"SET max_execution_time = {int(params['max_execution_time'])}")
            out = session.query(sql, "TabSeparated")
        except Exception as exc:
            text = str(exc)
            match = re.search(r"Code: (\d+)", text)
            return int(match.group(1)) if match else 1, text.encode()
        return 0, out.bytes()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[_StandIn]:
    server = _StandIn()
    yield server
    server.close()


def test_server_connector_sends_read_only_settings(stand_in: _StandIn) -> None:
    limits = Limits(timeout_seconds=7, max_rows=500)
    with ClickHouseConnector(
        {"url": stand_in.url, "username": "reader", "password": "pw"}, limits
    ) as connector:
        stand_in.requests.clear()
        rows = connector.fetch("SELECT toDateTime64('2026-01-02 03:04:05', 6, 'UTC') AS at, 2.5 AS value")
    assert rows == [(datetime(2026, 1, 2, 3, 4, 5), 2.5)]
    assert connector.columns == ["at", "value"]
    params, sql = stand_in.requests[-1]
    assert "toDateTime64" in sql
    assert params["readonly"] == "1"
    assert params["max_execution_time"] == "7"
    assert params["timeout_overflow_mode"] == "throw"
    assert params["join_use_nulls"] == "1"
    assert params["max_result_rows"] == "501"
    assert params["result_overflow_mode"] == "throw"
    assert int(params["max_memory_usage"]) > 0
    assert params["cancel_http_readonly_queries_on_client_close"] == "1"
    assert params["query_id"].startswith("truenorth-")


@pytest.mark.parametrize("profile", [1, 2])
def test_server_connector_adapts_to_a_read_only_profile(stand_in: _StandIn, profile: int) -> None:
    """A user whose profile is readonly=2 may change settings but never ``readonly``: the limits are
    sent without it. With readonly=1 no setting may be sent: the profile's own limits apply."""
    stand_in.profile_readonly = profile
    try:
        with ClickHouseConnector({"url": stand_in.url}, Limits(timeout_seconds=9)) as connector:
            stand_in.requests.clear()
            assert connector.fetch("SELECT 41 + 1") == [(42,)]
    finally:
        stand_in.profile_readonly = 0
    params = stand_in.requests[-1][0]
    assert "readonly" not in params
    assert params["query_id"].startswith("truenorth-")
    if profile == 2:
        assert params["max_execution_time"] == "9" and params["join_use_nulls"] == "1"
    else:
        assert "max_execution_time" not in params and "join_use_nulls" not in params


def test_server_connector_translates_engine_errors(stand_in: _StandIn) -> None:
    with ClickHouseConnector({"url": stand_in.url}) as connector:
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT count() FROM nowhere")
    assert "'nowhere'" in caught.value.message and caught.value.field == "tables"
    assert "DB::Exception" not in caught.value.message


def test_server_connector_timeout_kills_the_query_by_id(stand_in: _StandIn) -> None:
    with ClickHouseConnector({"url": stand_in.url}, Limits(timeout_seconds=1.5)) as connector:
        stand_in.requests.clear()
        started = time.monotonic()
        with pytest.raises(EngineTimeout):
            connector.fetch("SELECT sum(number) FROM numbers(100000000000)")
        assert time.monotonic() - started < 1.5 + 2
    query_id = stand_in.requests[0][0]["query_id"]
    kills = [p for p, sql in stand_in.requests if sql.upper().startswith("KILL QUERY")]
    assert kills and kills[0]["param_qid"] == query_id


def test_unreachable_url_is_unavailable_within_the_connect_timeout() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limits = Limits(connect_timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as caught:
        ClickHouseConnector({"url": f"http://127.0.0.1:{port}", "password": "secret"}, limits).connect()
    assert time.monotonic() - started < limits.connect_timeout_seconds + 2
    assert f"127.0.0.1:{port}" in caught.value.message and caught.value.field == "url"
    assert "secret" not in caught.value.message


def test_server_url_is_checked() -> None:
    with pytest.raises(EngineError) as caught:
        ClickHouseConnector({"url": "ftp://example.org"})
    assert caught.value.field == "url"


def test_connectors_in_threads(parquet_dir: Path) -> None:
    """One chDB engine per process: connectors in parallel threads each get their own answers."""
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        with ChDBConnector({"tables": {f"t{i}": str(parquet_dir / "events.parquet")}}) as connector:
            results[i] = connector.fetch(f"SELECT count() + {i} FROM t{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    base = results[0][0][0]
    assert results == {i: [(base + i,)] for i in range(4)}
