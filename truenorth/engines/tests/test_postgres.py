"""The PostgreSQL connector on a real server: read-only session, server-side cancel at the timeout
(pg_stat_activity shows the query gone), caps, and errors that name what to fix."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from truenorth.engines.base import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
)
from truenorth.engines.postgres_engine import PostgresConnector
from truenorth.engines.registry import connect


def _server() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url
    return "postgresql://postgres@127.0.0.1:5432/test"


PG = _server()


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = f"engines_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL at {PG}")
    with admin:
        admin.execute(f"CREATE SCHEMA {name}")
        admin.execute(f"CREATE TABLE {name}.events (unit_id int, at timestamptz, value float8)")
        admin.execute(
            f"INSERT INTO {name}.events SELECT i, timestamptz '2026-01-01' + i * interval '1 hour', i * 1.5 "
            "FROM generate_series(1, 100) i"
        )
        admin.execute(f"CREATE SEQUENCE {name}.ids")
        try:
            yield name
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def _dsn(application: str) -> str:
    return psycopg.conninfo.make_conninfo(PG, application_name=application)


class Unchecked(PostgresConnector):
    """The connector without the read-only check, to prove the server refuses on its own."""

    def check(self, sql: str) -> None:
        pass


def test_a_query_streams_back_in_a_read_only_session(schema: str):
    with connect("postgres", {"dsn": PG, "search_path": schema}) as connector:
        assert connector.fetch("SELECT count(*), sum(value) FROM events") == [(100, 7575.0)]
        assert connector.columns == ["count", "sum"]
        settings = connector.fetch(
            "SELECT current_setting('default_transaction_read_only'), current_setting('transaction_read_only'), "
            "current_setting('statement_timeout')"
        )
        assert settings == [("on", "on", "302s")]  # the server stops it too, 2 s after the watchdog
        assert len(list(connector.stream("SELECT * FROM events"))) == 100


def test_writes_ddl_and_several_statements_are_refused_before_sending(schema: str):
    connector = PostgresConnector({"dsn": PG, "search_path": schema})
    for sql in (
        "DELETE FROM events",
        "DROP TABLE events",
        "SELECT 1; DELETE FROM events",
        "WITH d AS (DELETE FROM events RETURNING *) SELECT * FROM d",
        "SELECT * FROM events FOR UPDATE",
        "COPY events TO STDOUT",
    ):
        with pytest.raises(NotReadOnly):
            connector.fetch(sql)
    assert not connector.connected


def test_the_server_refuses_writes_on_its_own(schema: str):
    with Unchecked({"dsn": PG, "search_path": schema}) as connector:
        with pytest.raises(NotReadOnly, match="read-only"):
            connector.fetch("SELECT nextval('ids')")
        for sql in ("DELETE FROM events", "SELECT 1; DELETE FROM events"):
            with pytest.raises(EngineError):
                connector.fetch(sql)
        assert connector.fetch("SELECT count(*) FROM events") == [(100,)]


def _still_running(application: str) -> list[Any]:
    with psycopg.connect(PG, autocommit=True) as admin:
        return admin.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
            [application],
        ).fetchall()


def test_the_timeout_cancels_the_query_on_the_server(schema: str):
    application = f"core-timeout-{uuid.uuid4().hex[:6]}"
    connector = PostgresConnector({"dsn": _dsn(application)}, Limits(timeout_seconds=1))
    with connector:
        started = time.monotonic()
        with pytest.raises(EngineTimeout) as caught:
            connector.fetch("SELECT pg_sleep(30)")
        assert time.monotonic() - started < 2.5
        assert caught.value.field == "timeout_seconds"
        assert _still_running(application) == []  # gone on the server, not just in Python
        assert connector.fetch("SELECT 1") == [(1,)]  # the session is usable again


def test_rows_and_bytes_are_capped(schema: str):
    with PostgresConnector({"dsn": PG, "search_path": schema}, Limits(max_rows=10)) as connector:
        with pytest.raises(ResultTooLarge, match="more than 10 rows"):
            connector.fetch("SELECT * FROM events")
        assert len(connector.fetch("SELECT * FROM events LIMIT 10")) == 10
    with PostgresConnector({"dsn": PG}, Limits(max_bytes=64 * 1024)) as connector:
        with pytest.raises(ResultTooLarge, match="more than 64 KiB"):
            connector.fetch("SELECT repeat('x', 10000) FROM generate_series(1, 100000)")


def test_missing_tables_columns_and_privileges_name_what_to_fix(schema: str):
    with PostgresConnector({"dsn": PG, "search_path": schema}) as connector:
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT * FROM assignments")
        assert caught.value.message == (
            f'table "assignments" does not exist (search path {schema}): check tables.assignments in the mapping'
        )
        assert caught.value.field == "tables.assignments"
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT e.amount FROM events e")
        assert (
            caught.value.message
            == 'column "amount" does not exist in e: check the column names in the mapping'
        )
        with pytest.raises(EngineError) as caught:
            connector.fetch("SELECT stamp FROM events")
        assert caught.value.message.startswith('column "stamp" does not exist in the query\'s tables')
        assert "HINT" not in caught.value.message and "\n" not in caught.value.message
    with Unchecked({"dsn": PG}) as unchecked, pytest.raises(EngineError, match="not valid PostgreSQL SQL"):
        unchecked.fetch("SELECT FROM WHERE")


def test_an_unreachable_server_names_the_address():
    connector = PostgresConnector({"dsn": "postgresql://someone:secret@127.0.0.1:1/db"})
    with pytest.raises(EngineUnavailable) as caught:
        connector.fetch("SELECT 1")
    assert (
        caught.value.message == "cannot connect to 127.0.0.1:1 as someone: connection refused; check the dsn"
    )
    assert caught.value.field == "dsn" and "secret" not in caught.value.message
    with pytest.raises(EngineUnavailable, match="not valid"):
        PostgresConnector({"dsn": "host=x port=notanumber = ="}).connect()
    with pytest.raises(EngineUnavailable) as caught:
        PostgresConnector({"dsn": PG, "search_path": "a; DROP"}).connect()
    assert caught.value.field == "search_path"


def test_after_connect_runs_before_any_query_and_may_refuse(schema: str):
    seen: list[str] = []

    def identify(conn: Any) -> None:
        seen.append(conn.execute("SELECT current_database()").fetchone()[0])

    with PostgresConnector({"dsn": PG}, after_connect=identify) as connector:
        assert connector.fetch("SELECT 1") == [(1,)]
    assert seen and seen[0]

    def refuse(conn: Any) -> None:
        raise EngineUnavailable("TrueNorth's own database cannot be a data source", field="dsn")

    connector = PostgresConnector({"dsn": PG}, after_connect=refuse)
    with pytest.raises(EngineUnavailable, match="own database"):
        connector.fetch("SELECT 1")
    assert not connector.connected and connector.connection is None
