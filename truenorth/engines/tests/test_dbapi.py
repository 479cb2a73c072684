"""The generic DB-API connector, driven by a real DB-API driver: Python's sqlite3 (a test subclass; "sqlite"
is not a data source kind). Trino, BigQuery and Snowflake are compiled-only: their registration, config
checks and driver resolution are tested here, their SQL by the golden files."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from truenorth.engines import registry
from truenorth.engines.base import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
)
from truenorth.engines.dbapi_engine import (
    BigQueryConnector,
    DBAPIConnector,
    SnowflakeConnector,
    TrinoConnector,
)

SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) SELECT count(*) FROM c"


class SQLiteConnector(DBAPIConnector):
    """sqlite3 as the stand-in DB-API driver: read-only through ``mode=ro`` and ``PRAGMA query_only``."""

    kind = "sqlite-test"
    dialect = "sqlite"
    default_driver = "sqlite3"
    known_drivers: ClassVar[Mapping[str, str]] = {"sqlite3": "sqlite3:connect"}
    allowed_params = frozenset({"database"})

    def connect_kwargs(self) -> dict[str, Any]:
        params = self.checked_params()
        return {"database": f"file:{params['database']}?mode=ro", "uri": True, "check_same_thread": False}

    def _session_setup(self, connection: Any) -> None:
        connection.execute("PRAGMA query_only = ON")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("dbapi") / "events.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (unit_id INTEGER, name TEXT, value REAL)")
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?)",
        ((i, "purchase" if i % 3 else "view", i * 0.5) for i in range(25_000)),
    )
    conn.commit()
    conn.close()
    yield str(path)


def connector(db: str, **limits: Any) -> SQLiteConnector:
    return SQLiteConnector({"driver": "sqlite3", "params": {"database": db}}, Limits(**limits))


def test_fetch_and_columns(db: str) -> None:
    with connector(db) as c:
        rows = c.fetch("SELECT name, COUNT(*) AS n, SUM(value) AS s FROM events GROUP BY name ORDER BY name")
        assert c.columns == ["name", "n", "s"]
    assert rows == [
        ("purchase", 16_666, pytest.approx(sum(i * 0.5 for i in range(25_000) if i % 3))),
        ("view", 8_334, pytest.approx(sum(i * 0.5 for i in range(25_000) if i % 3 == 0))),
    ]


def test_streams_in_batches(db: str) -> None:
    with connector(db, max_rows=100_000) as c:
        stream = c.stream("SELECT unit_id FROM events ORDER BY unit_id")
        first = next(stream)
        assert first == (0,)
        assert c.rows_fetched == c.batch_size  # one batch asked for, not the whole result
        assert sum(1 for _ in stream) == 24_999
        assert c.rows_fetched == 25_000


def test_row_cap_stops_after_one_batch(db: str) -> None:
    with connector(db, max_rows=10) as c:
        with pytest.raises(ResultTooLarge, match="more than 10 rows"):
            c.fetch("SELECT * FROM events")
        assert c.rows_fetched == 11  # the batch is capped by max_rows + 1
        assert c.fetch("SELECT COUNT(*) FROM events") == [(25_000,)]  # the connection is still usable


def test_byte_cap(db: str) -> None:
    with connector(db, max_bytes=1024) as c, pytest.raises(ResultTooLarge, match="KiB"):
        c.fetch("SELECT name, name, name FROM events LIMIT 500")


def test_timeout_cancels_on_the_engine(db: str) -> None:
    with connector(db, timeout_seconds=0.5) as c:
        started = time.monotonic()
        with pytest.raises(EngineTimeout) as info:
            c.fetch(SLOW)
        assert time.monotonic() - started < 5
        assert info.value.field == "timeout_seconds"
        assert c.fetch("SELECT 1") == [(1,)]  # interrupted, not broken


def test_writes_refused_before_they_are_sent(db: str) -> None:
    with connector(db) as c:
        for sql in ("DELETE FROM events", "SELECT 1; DELETE FROM events", "ATTACH '/tmp/x.db' AS x"):
            with pytest.raises(NotReadOnly):
                c.fetch(sql)
        with pytest.raises(NotReadOnly, match="readfile"):
            c.fetch("SELECT readfile('/etc/passwd')")
        assert c.fetch("SELECT COUNT(*) FROM events") == [(25_000,)]


def test_session_is_read_only_on_the_engine(db: str) -> None:
    """Past the SQL check (a write called directly on the driver), the engine itself refuses."""
    with connector(db) as c:
        with pytest.raises(sqlite3.OperationalError) as info:
            c.connection.execute("DELETE FROM events")
        error = c.translate(info.value)
        assert isinstance(error, NotReadOnly)
        assert "read-only" in error.message


def test_missing_table_and_column_are_named(db: str) -> None:
    with connector(db) as c:
        with pytest.raises(EngineError) as info:
            c.fetch("SELECT * FROM evnts")
        assert "evnts" in info.value.message and info.value.field == "tables"
        with pytest.raises(EngineError) as info:
            c.fetch("SELECT valu FROM events")
        assert '"valu"' in info.value.message and info.value.field == "query"
        assert "Traceback" not in info.value.message


def test_cannot_connect_names_params(tmp_path: Path) -> None:
    c = SQLiteConnector({"params": {"database": str(tmp_path / "absent.db")}})
    with pytest.raises(EngineUnavailable) as info:
        c.connect()
    assert info.value.field == "params"


def test_connect_timeout(db: str) -> None:
    class Slow(SQLiteConnector):
        def resolve_driver(self) -> Any:
            def slow_connect(**kwargs: Any) -> Any:
                time.sleep(1.5)
                return sqlite3.connect(**kwargs)

            return slow_connect

    c = Slow({"params": {"database": db}}, Limits(connect_timeout_seconds=0.2))
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match=r"within 0\.2 s"):
        c.connect()
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"driver": "subprocess:run", "params": {"args": ["id"]}}, "driver"),
        ({"driver": "os:system"}, "driver"),
        ({"driver": "sqlite3", "params": {"database": "x", "uri": False}}, "params.uri"),
        ({"driver": 3}, "driver"),
        ({"driver": "sqlite3", "params": ["x"]}, "params"),
    ],
)
def test_config_is_checked(config: dict[str, Any], field: str) -> None:
    with pytest.raises(EngineError) as info:
        SQLiteConnector(config).connect()
    assert info.value.field == field


def test_secrets_are_not_repeated(db: str) -> None:
    c = SQLiteConnector({"params": {"database": db, "password": "hunter22"}})
    error = c.translate(RuntimeError("login failed for password hunter22"))
    assert "hunter22" not in error.message


@pytest.mark.parametrize(
    ("message", "field", "named"),
    [
        ("line 1:15: Table 'hive.web.evnts' does not exist", "tables", "hive.web.evnts"),  # Trino
        (
            "Not found: Table proj:analytics.evnts was not found in location US",
            "tables",
            "proj:analytics.evnts",
        ),
        (
            "SQL compilation error:\nObject 'DB.PUBLIC.EVNTS' does not exist or not authorized.",
            "tables",
            "EVNTS",
        ),
        ("line 1:8: Column 'valu' cannot be resolved", "query", "valu"),  # Trino
        ("Unrecognized name: valu at [1:8]", "query", "valu"),  # BigQuery
        ("SQL compilation error: error line 1 at position 7\ninvalid identifier 'VALU'", "query", "VALU"),
        ("Access Denied: Table proj:x.y: User does not have permission", "query", "proj:x.y"),
        ("Insufficient privileges to operate on schema 'S'", "query", "grant"),
        ("line 1:1: mismatched input 'SELEC'", "query", "not valid"),
        ("Query exceeded maximum time limit of 5.00m", "timeout_seconds", "timeout"),  # Trino
        (
            "Statement reached its statement timeout of 300 second(s) and was canceled.",
            "timeout_seconds",
            "timeout",
        ),
        (
            "Query exceeded limit for bytes billed: 1000000. 10485760 or higher required.",
            "params.maximum_bytes_billed",
            "maximum_bytes_billed",
        ),
        ("Query exceeded per-node memory limit of 1GB", "query", "resources"),
    ],
)
def test_driver_messages_are_translated(message: str, field: str, named: str) -> None:
    class Connected(TrinoConnector):
        @property
        def connected(self) -> bool:
            return True

    error = Connected({"params": {}}).translate(RuntimeError(message))
    assert error.field == field, error.message
    assert named in error.message
    assert "\n" not in error.message


def test_compiled_only_kinds_are_registered() -> None:
    for kind, cls in (
        ("trino", TrinoConnector),
        ("bigquery", BigQueryConnector),
        ("snowflake", SnowflakeConnector),
    ):
        assert registry.connector_class(kind) is cls
        assert cls.dialect == kind
        assert cls.tested == "compiled"
    assert "sqlite-test" not in registry.kinds()


def test_missing_driver_is_unavailable_not_a_crash() -> None:
    for cls in (TrinoConnector, SnowflakeConnector, BigQueryConnector):
        try:
            __import__(cls.known_drivers[cls.default_driver].split(":")[0])
        except ImportError:
            pass
        else:  # pragma: no cover - a site with the driver installed
            continue
        with pytest.raises(EngineUnavailable, match="not installed") as info:
            cls({"params": {}}).connect()
        assert info.value.field == "driver"


def test_unknown_params_of_known_drivers_are_refused() -> None:
    c = TrinoConnector({"driver": "trino", "params": {"host": "h", "verify": "/etc/ssl/x"}})
    with pytest.raises(EngineError) as info:
        c.checked_params()
    assert info.value.field == "params.verify"
    bq = BigQueryConnector({"params": {"project": "p"}})
    with pytest.raises(EngineError) as info:
        bq.connect_kwargs()
    assert info.value.field == "params.credentials_info"


def test_trino_and_snowflake_limits_reach_the_server() -> None:
    limits = Limits(timeout_seconds=42.5, connect_timeout_seconds=3)
    sf = SnowflakeConnector({"params": {"account": "a", "user": "u", "password": "p"}}, limits)
    kwargs = sf.connect_kwargs()
    assert kwargs["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 43
    assert kwargs["login_timeout"] == 3
    assert kwargs["session_parameters"]["TIMEZONE"] == "UTC"
    trino = TrinoConnector({"params": {"host": "h", "user": "u"}}, limits)
    kwargs = trino.connect_kwargs()
    assert kwargs["session_properties"] == {"query_max_run_time": "43s"}
    assert kwargs["request_timeout"] == 3
    assert kwargs["timezone"] == "UTC"
