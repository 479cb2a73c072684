"""Data sources against a real DuckDB file (with Parquet and CSV files) and the real PostgreSQL:
credentials encrypted at rest and never shown, read-only enforced, time limits, clear errors."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid

import duckdb
import psycopg
import pytest

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.measures import sources
from truenorth.measures.models import DataSource
from truenorth.measures.sources import QueryFailed, QueryTimeout, SourceUnavailable, postgres_runner

PG_URL = os.environ.get("TRUENORTH_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
UTC = dt.UTC


# --- fixtures -------------------------------------------------------------------------------------


def make_duckdb(path, sql: str) -> None:
    """Write with a separate connection, closed before TrueNorth opens the file read-only."""
    conn = duckdb.connect(str(path))
    try:
        conn.execute(sql)
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path, settings, org_a):
    """Organisation A's own DuckDB directory (`<root>/org-<id>/`), with a database, Parquet and CSV."""
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path / "duckdb"]
    folder = sources.organisation_directory(org_a)
    make_duckdb(
        folder / "metrics.duckdb",
        """
        CREATE TABLE sales (day DATE, revenue DOUBLE, region VARCHAR);
        INSERT INTO sales VALUES
            ('2025-01-01', 100.5, 'north'), ('2025-02-01', 120, 'north'), ('2025-03-01', 130.25, 'south');
        CREATE TABLE stamps AS SELECT TIMESTAMP '2025-01-01 12:30:00' AS ts, 7 AS n;
        CREATE TABLE texts AS SELECT DATE '2025-01-01' AS day, 'seven' AS value;
        COPY (SELECT DATE '2025-01-01' + INTERVAL (i) DAY AS day, i * 2.5 AS visits FROM range(10) t(i))
            TO '{parquet}' (FORMAT parquet);
        """.replace("{parquet}", str(folder / "visits.parquet")),
    )
    (folder / "nps.csv").write_text("month,score\n2025-01-01,31\n2025-02-01,35\n2025-03-01,-2\n")
    return folder


def duckdb_source(org, data_dir, *, path="metrics.duckdb", files=(), timeout=10, name="Warehouse"):
    config = {
        "path": str(data_dir / path) if path else "",
        "files": [str(data_dir / f) for f in files],
    }
    return DataSource.objects.create(
        organisation=org,
        name=name,
        kind="duckdb",
        config_encrypted=sources.encrypt_config(config),
        timeout_seconds=timeout,
    )


def pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def pg_url(role: str, *, database: str | None = None, host: str | None = None, query: str = "") -> str:
    """PG_URL's server, as `role` (no password: the test server trusts 127.0.0.1)."""
    params = psycopg.conninfo.conninfo_to_dict(PG_URL)
    where = host or f"{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}"
    return f"postgres://{role}@{where}/{database or params['dbname']}{query}"


@pytest.fixture
def private_networks(settings):
    """The test PostgreSQL is on 127.0.0.1: allow private networks, as an operator may."""
    settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def pg_role():
    """Makes login roles in the real PostgreSQL (unique names), dropped afterwards."""
    if not pg_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL} (CI starts it; set TRUENORTH_TEST_POSTGRES)")
    made: list[str] = []

    def make(*grants: str, superuser: bool = False) -> str:
        role = f"truenorth_role_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN{' SUPERUSER' if superuser else ''}")
            for granted in grants:
                conn.execute(f"GRANT {granted} TO {role}")
        made.append(role)
        return role

    yield make
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for role in made:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def reader(pg_role, private_networks) -> str:
    """A proper read-only role (docs/security.md, "Data sources"): LOGIN, no superuser, no server-file roles."""
    return pg_role()


@pytest.fixture
def reader_dsn(reader) -> str:
    return pg_url(reader)


@pytest.fixture
def pg_schema(reader):
    """A scratch schema in the real PostgreSQL with one table the reader may read, dropped afterwards."""
    schema = f"truenorth_src_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.deploys (day date, deployments integer, note text)")
        conn.execute(
            f"INSERT INTO {schema}.deploys VALUES "
            "('2025-01-01', 4, 'a'), ('2025-01-02', 6, 'b'), ('2025-01-03', 5, 'c')"
        )
        # Generous grants on purpose: read-only must hold even where the role's privileges would not.
        conn.execute(f"GRANT ALL ON SCHEMA {schema} TO {reader}")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {reader}")
        conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON TABLES TO {reader}")
        conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON SEQUENCES TO {reader}")
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_source(org, dsn: str, *, timeout=5, name="Deploy DB"):
    return DataSource.objects.create(
        organisation=org,
        name=name,
        kind="postgres",
        config_encrypted=sources.encrypt_config({"dsn": dsn}),
        timeout_seconds=timeout,
    )


def pg_count(schema: str) -> int:
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(f"SELECT count(*) FROM {schema}.deploys").fetchone()
        assert row is not None
        return int(row[0])


# --- encryption and what is shown -------------------------------------------------------------------


def test_settings_are_encrypted_at_rest_and_never_shown(admin, org_a):
    dsn = "postgres://reader:s3cret-pa55@db.example.com:5432/warehouse?sslmode=require"
    source = sources.create_data_source(
        admin.membership, admin.user, name="Warehouse", kind="postgres", config={"dsn": dsn}
    )
    stored = DataSource.objects.get(pk=source.pk).config_encrypted
    assert "s3cret" not in stored and "reader" not in stored and "example" not in stored
    assert sources.decrypt_config(source) == {"dsn": dsn}
    shown = sources.describe(source)
    assert "s3cret" not in str(shown)
    assert shown["config"]["dsn"] == (
        f"postgres://reader:{sources.MASK}@db.example.com:5432/warehouse?sslmode=require"
    )
    entries = HistoryEntry.objects.filter(object_type="measures.datasource", object_id=str(source.pk))
    assert entries.count() == 1
    assert "s3cret" not in str(list(entries.values()))


def test_a_changed_key_is_a_clear_error_and_rotation_keeps_old_settings(admin, org_a, settings):
    source = sources.create_data_source(
        admin.membership, admin.user, name="W", kind="postgres", config={"dsn": "postgres://u:p@h/db"}
    )
    old = list(settings.TRUENORTH_ENCRYPTION_KEYS)
    settings.TRUENORTH_ENCRYPTION_KEYS = ["a brand new key"]
    with pytest.raises(SourceUnavailable, match="cannot be decrypted"):
        sources.decrypt_config(source)
    assert sources.public_config(source) == {}
    settings.TRUENORTH_ENCRYPTION_KEYS = ["a brand new key", *old]
    assert sources.decrypt_config(source) == {"dsn": "postgres://u:p@h/db"}
    sources.rotate_encryption(source)
    settings.TRUENORTH_ENCRYPTION_KEYS = ["a brand new key"]
    assert sources.decrypt_config(DataSource.objects.get(pk=source.pk)) == {"dsn": "postgres://u:p@h/db"}


def test_editing_with_the_masked_password_keeps_the_stored_one(admin, org_a):
    source = sources.create_data_source(
        admin.membership,
        admin.user,
        name="W",
        kind="postgres",
        config={"dsn": "postgres://reader:p%40ss@db.example.com/warehouse"},
    )
    shown = sources.describe(source)["config"]["dsn"]
    edited = shown.replace("/warehouse", "/warehouse2") + "?sslmode=require"  # same server, port and user
    sources.update_data_source(admin.membership, admin.user, source.pk, config={"dsn": edited}, version=1)
    source.refresh_from_db()
    dsn = sources.decrypt_config(source)["dsn"]
    assert psycopg.conninfo.conninfo_to_dict(dsn)["password"] == "p@ss"
    assert psycopg.conninfo.conninfo_to_dict(dsn)["dbname"] == "warehouse2"
    assert source.version == 2
    change = HistoryEntry.objects.filter(object_id=str(source.pk), action="updated").get()
    assert change.changes["config"] == {"old": "(hidden)", "new": "(changed)"}
    with pytest.raises(Conflict):
        sources.update_data_source(admin.membership, admin.user, source.pk, name="X", version=1)


# --- who may manage sources -----------------------------------------------------------------------


def test_only_admins_manage_sources_and_other_organisations_see_nothing(
    admin, member, outsider, org_a, data_dir
):
    config = {"path": str(data_dir / "metrics.duckdb")}
    with pytest.raises(Forbidden):
        sources.create_data_source(member.membership, member.user, name="W", kind="duckdb", config=config)
    source = sources.create_data_source(admin.membership, admin.user, name="W", kind="duckdb", config=config)
    with pytest.raises(Forbidden):
        sources.test_data_source(member.membership, source.pk)
    with pytest.raises(Forbidden):
        sources.update_data_source(member.membership, member.user, source.pk, name="X")
    with pytest.raises(NotFound):
        sources.test_data_source(outsider.membership, source.pk)
    with pytest.raises(NotFound):
        sources.get_data_source(outsider.membership, source.pk)
    assert sources.data_sources_of(outsider.membership) == []
    assert [s.name for s in sources.data_sources_of(member.membership)] == ["W"]
    with pytest.raises(Conflict):
        sources.create_data_source(admin.membership, admin.user, name="W", kind="duckdb", config=config)
    sources.delete_data_source(admin.membership, admin.user, source.pk)
    assert not DataSource.objects.filter(pk=source.pk).exists()


@pytest.mark.parametrize(
    ("kind", "config", "field", "says"),
    [
        ("oracle", {}, "kind", "not one of"),
        ("duckdb", {"path": "../relative.duckdb"}, "path", "outside this organisation's DuckDB directories"),
        ("duckdb", {"path": "/etc/passwd"}, "path", "outside this organisation's DuckDB directories"),
        ("duckdb", {"path": "", "files": ["/etc/passwd"]}, "files", "outside this organisation's"),
        ("duckdb", {"path": "", "wat": 1}, "config", "Unknown DuckDB setting"),
        ("postgres", {"dsn": ""}, "dsn", "Give a connection string"),
        ("postgres", {"dsn": "mysql://u:p@h/db"}, "dsn", "postgres://"),
        ("postgres", {"dsn": "postgres://u:p w@h/db x"}, "dsn", "Not a valid PostgreSQL address"),
        ("postgres", {"dsn": "postgres://u@/db"}, "dsn", "needs a host"),
    ],
)
def test_bad_settings_are_refused_clearly(admin, org_a, data_dir, kind, config, field, says):
    with pytest.raises(ValidationFailed) as caught:
        sources.create_data_source(admin.membership, admin.user, name="W", kind=kind, config=config)
    assert caught.value.field == field
    assert says in caught.value.message
    assert "p w" not in caught.value.message  # never echo a password


def test_a_symlink_out_of_the_allowed_directories_is_refused(admin, org_a, data_dir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    outside.write_text("a,b\n")
    (data_dir / "link.csv").symlink_to(outside)
    with pytest.raises(ValidationFailed, match="outside this organisation's DuckDB directories"):
        sources.create_data_source(
            admin.membership,
            admin.user,
            name="W",
            kind="duckdb",
            config={"path": "", "files": [str(data_dir / "link.csv")]},
        )


# --- testing a source -----------------------------------------------------------------------------


def test_testing_a_source_records_the_outcome(admin, org_a, data_dir):
    good = duckdb_source(org_a, data_dir)
    assert "read-only" in sources.test_data_source(admin.membership, good.pk)
    good.refresh_from_db()
    assert good.last_checked_at is not None and good.last_error == ""
    memory = duckdb_source(org_a, data_dir, path="", name="Files")
    assert "in-memory" in sources.test_data_source(admin.membership, memory.pk)
    missing = duckdb_source(org_a, data_dir, path="gone.duckdb", name="Gone")
    with pytest.raises(SourceUnavailable, match="does not exist"):
        sources.test_data_source(admin.membership, missing.pk)
    missing.refresh_from_db()
    assert "does not exist" in missing.last_error
    garbage = data_dir / "garbage.duckdb"
    garbage.write_text("not a database")
    broken = duckdb_source(org_a, data_dir, path="garbage.duckdb", name="Broken")
    with pytest.raises(SourceUnavailable, match="Cannot open the DuckDB database"):
        sources.test_data_source(admin.membership, broken.pk)


# --- DuckDB queries -------------------------------------------------------------------------------


def test_duckdb_table_query(org_a, data_dir):
    source = duckdb_source(org_a, data_dir)
    rows = sources.run_query(source, "SELECT day, revenue FROM sales ORDER BY day DESC;")
    assert rows == [
        (dt.datetime(2025, 1, 1, tzinfo=UTC), 100.5),
        (dt.datetime(2025, 2, 1, tzinfo=UTC), 120.0),
        (dt.datetime(2025, 3, 1, tzinfo=UTC), 130.25),
    ]
    stamped = sources.run_query(source, "WITH s AS (SELECT * FROM stamps) SELECT ts, n FROM s")
    assert stamped == [(dt.datetime(2025, 1, 1, 12, 30, tzinfo=UTC), 7.0)]


def test_duckdb_reads_the_listed_parquet_and_csv_files_only(org_a, data_dir):
    source = duckdb_source(org_a, data_dir, path="", files=("visits.parquet", "nps.csv"))
    visits = sources.run_query(
        source, f"SELECT day, visits FROM read_parquet('{data_dir / 'visits.parquet'}') WHERE visits > 20"
    )
    assert visits == [(dt.datetime(2025, 1, 10, tzinfo=UTC), 22.5)]
    nps = sources.run_query(source, f"SELECT month, score FROM read_csv('{data_dir / 'nps.csv'}')")
    assert [v for _, v in nps] == [31.0, 35.0, -2.0]
    (data_dir / "other.csv").write_text("month,score\n2025-01-01,1\n")
    with pytest.raises(QueryFailed, match="disabled by configuration"):
        sources.run_query(source, f"SELECT month, score FROM read_csv('{data_dir / 'other.csv'}')")
    with pytest.raises(QueryFailed, match="disabled by configuration"):
        sources.run_query(source, "SELECT 1, length(content) FROM read_text('/etc/hostname')")


def test_duckdb_reads_every_file_of_a_listed_directory(org_a, data_dir):
    folder = data_dir / "exports"
    folder.mkdir()
    for month in (1, 2):
        (folder / f"m{month}.csv").write_text(f"month,score\n2025-0{month}-01,{month}\n")
    source = duckdb_source(org_a, data_dir, path="", files=("exports",))
    rows = sources.run_query(source, f"SELECT month, score FROM read_csv('{folder}/*.csv')")
    assert [v for _, v in rows] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("SELECT day, revenue, region FROM sales", "Wrong shape: the query must return exactly two columns"),
        ("SELECT revenue FROM sales", "it returned 1: revenue"),
        ("SELECT day, value FROM texts", "Row 1: the second column must be a number, got str"),
        ("SELECT region, revenue FROM sales", "the first column must be a timestamp or date"),
        ("SELECT day, NULL::double FROM sales", "Row 1: the value is empty (NULL)"),
        ("SELECT NULL::date, 1", "the timestamp is empty"),
        ("SELECT DATE '2025-01-01', 'nan'::double", "not a finite number"),
        ("SELECT DATE '2025-01-01', true", "must be a number, got bool"),
        ("SELECT DATE '2025-01-01' AS d, 1 UNION ALL SELECT DATE '2025-01-01', 2", "same timestamp"),
        ("SELECT day, revenue FROM nowhere", "The query failed: Catalog Error"),
        ("SELEC 1", "not valid SQL"),
        ("", "The query is empty"),
    ],
)
def test_duckdb_wrong_shape_and_bad_queries_are_clear_errors(org_a, data_dir, query, says):
    source = duckdb_source(org_a, data_dir)
    with pytest.raises(QueryFailed) as caught:
        sources.run_query(source, query)
    assert says in caught.value.message
    assert "\n" not in caught.value.message


def test_duckdb_text_timestamps_in_iso_format_are_accepted(org_a, data_dir):
    source = duckdb_source(org_a, data_dir)
    assert sources.run_query(source, "SELECT '2025-01-01T10:00:00+02:00', 1") == [
        (dt.datetime(2025, 1, 1, 8, tzinfo=UTC), 1.0)
    ]


def test_too_many_rows_is_an_error_not_a_silent_cut(org_a, data_dir):
    source = duckdb_source(org_a, data_dir)
    with pytest.raises(QueryFailed, match="more than 5 rows"):
        sources.run_query(
            source, "SELECT TIMESTAMP '2025-01-01' + INTERVAL (i) HOUR, i FROM range(6) t(i)", limit=5
        )
    assert len(sources.run_query(source, "SELECT TIMESTAMP '2025-01-01', 1", limit=1)) == 1


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("CREATE TABLE hack (a int)", "CREATE statement"),
        ("INSERT INTO sales VALUES ('2025-04-01', 1, 'x')", "INSERT statement"),
        ("UPDATE sales SET revenue = 0", "UPDATE statement"),
        ("DELETE FROM sales", "DELETE statement"),
        ("DROP TABLE sales", "DROP statement"),
        ("COPY sales TO '{dir}/stolen.csv'", "COPY statement"),
        ("EXPORT DATABASE '{dir}/export'", "EXPORT statement"),
        ("ATTACH '{dir}/new.duckdb' AS other", "ATTACH statement"),
        ("SET enable_external_access = true", "SET statement"),
        ("INSTALL httpfs", "statement"),
        ("LOAD httpfs", "statement"),
        ("CHECKPOINT", "statement"),
        ("SELECT day, revenue FROM sales; DROP TABLE sales", "exactly one SELECT statement (found 2)"),
        ("SELECT 1; SELECT 2", "exactly one SELECT statement (found 2)"),
    ],
)
def test_duckdb_writes_and_escapes_are_refused(org_a, data_dir, query, says):
    source = duckdb_source(org_a, data_dir)
    with pytest.raises(QueryFailed) as caught:
        sources.run_query(source, query.replace("{dir}", str(data_dir)))
    assert says in caught.value.message
    assert not (data_dir / "stolen.csv").exists()
    assert not (data_dir / "export").exists()
    assert not (data_dir / "new.duckdb").exists()
    conn = duckdb.connect(str(data_dir / "metrics.duckdb"), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM sales").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'hack'").fetchone() == (
            0,
        )
    finally:
        conn.close()


def test_duckdb_select_cannot_write_files_either(org_a, data_dir):
    """Even a query shaped like a SELECT cannot reach the file system beyond the allowed files."""
    source = duckdb_source(org_a, data_dir)
    with pytest.raises(QueryFailed, match="disabled by configuration"):
        sources.run_query(source, f"SELECT * FROM read_csv('{data_dir / 'nps.csv'}')")
    with pytest.raises(QueryFailed, match="disabled by configuration"):
        sources.run_query(source, "SELECT now(), count(*) FROM glob('/etc/*')")
    with pytest.raises(QueryFailed, match="disabled by configuration"):
        sources.run_query(source, "SELECT now(), length(content) FROM read_blob('/etc/hostname')")


def test_duckdb_slow_query_is_stopped_at_the_time_limit(org_a, data_dir):
    source = duckdb_source(org_a, data_dir, timeout=1)
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1 s"):
        sources.run_query(source, "SELECT DATE '2025-01-01', count(*) FROM range(10000000000)")
    assert time.monotonic() - started < 10


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_postgres_query(org_a, pg_schema, reader_dsn):
    source = pg_source(org_a, reader_dsn)
    rows = sources.run_query(source, f"SELECT day, deployments FROM {pg_schema}.deploys ORDER BY day;")
    assert rows == [
        (dt.datetime(2025, 1, 1, tzinfo=UTC), 4.0),
        (dt.datetime(2025, 1, 2, tzinfo=UTC), 6.0),
        (dt.datetime(2025, 1, 3, tzinfo=UTC), 5.0),
    ]
    aware = sources.run_query(source, "SELECT timestamptz '2025-01-01 10:00+02', 1.5::numeric")
    assert aware == [(dt.datetime(2025, 1, 1, 8, tzinfo=UTC), 1.5)]


def test_postgres_test_connection(admin, org_a, pg_schema, reader_dsn):
    source = pg_source(org_a, reader_dsn)
    assert "Connected to PostgreSQL" in sources.test_data_source(admin.membership, source.pk)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("CREATE TABLE {s}.hack (a int)", "The query failed"),
        ("INSERT INTO {s}.deploys VALUES ('2025-02-01', 1, 'x')", "The query failed"),
        ("WITH gone AS (DELETE FROM {s}.deploys RETURNING day, deployments) SELECT * FROM gone", "top level"),
        ("SELECT 1) q; DELETE FROM {s}.deploys; SELECT * FROM (SELECT 1", "multiple commands"),
        ("SELECT 1) q; COMMIT; DELETE FROM {s}.deploys; SELECT * FROM (SELECT 1", "multiple commands"),
        ("SELECT now(), set_config('transaction_read_only', 'off', true)::int", "read-write mode"),
        ("SELECT now(), nextval('{s}.seq')", "read-only"),
    ],
)
def test_postgres_writes_are_refused(org_a, pg_schema, reader_dsn, query, says):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {pg_schema}.seq")
    source = pg_source(org_a, reader_dsn)
    with pytest.raises(QueryFailed) as caught:
        sources.run_query(source, query.replace("{s}", pg_schema))
    assert says in caught.value.message
    assert pg_count(pg_schema) == 3
    with psycopg.connect(PG_URL) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [f"{pg_schema}.hack"]).fetchone()
    assert exists == (None,)


def test_postgres_read_only_even_for_a_data_modifying_function(org_a, pg_schema, reader_dsn):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION {pg_schema}.wipe() RETURNS int LANGUAGE sql AS "
            f"'DELETE FROM {pg_schema}.deploys; SELECT 1'"
        )
    source = pg_source(org_a, reader_dsn)
    with pytest.raises(QueryFailed, match="read-only"):
        sources.run_query(source, f"SELECT now(), {pg_schema}.wipe()")
    assert pg_count(pg_schema) == 3


def test_postgres_wrong_shape(org_a, pg_schema, reader_dsn):
    source = pg_source(org_a, reader_dsn)
    with pytest.raises(QueryFailed, match="Wrong shape"):
        sources.run_query(source, f"SELECT * FROM {pg_schema}.deploys")
    with pytest.raises(QueryFailed, match="must be a number, got str"):
        sources.run_query(source, f"SELECT day, note FROM {pg_schema}.deploys")


def test_postgres_slow_query_is_stopped(org_a, pg_schema, reader_dsn):
    source = pg_source(org_a, reader_dsn, timeout=1)
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1 s"):
        sources.run_query(source, "SELECT now(), 1 FROM pg_sleep(5)")
    assert time.monotonic() - started < 4


def test_postgres_options_in_the_address_cannot_lift_the_limits(org_a, pg_schema, reader_dsn):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE {pg_schema}.counter")
    lifted = "?options=-c%20default_transaction_read_only%3Doff%20-c%20statement_timeout%3D0"
    source = pg_source(org_a, dsn=reader_dsn + lifted, timeout=2)
    rows = sources.run_query(
        source,
        "SELECT now(), (current_setting('transaction_read_only') = 'on')::int "
        "+ 10 * (current_setting('statement_timeout') = '2s')::int",
    )
    assert [value for _, value in rows] == [11.0]
    with pytest.raises(QueryFailed, match="read-only"):
        sources.run_query(source, f"SELECT now(), nextval('{pg_schema}.counter')")


def test_postgres_down_is_a_clear_error_without_the_password(org_a, private_networks):
    source = pg_source(org_a, dsn="postgres://reader:hunter22@127.0.0.1:1/warehouse", timeout=2)
    with pytest.raises(SourceUnavailable) as caught:
        sources.run_query(source, "SELECT now(), 1")
    assert "Could not connect to PostgreSQL" in caught.value.message
    assert "hunter22" not in caught.value.message
    assert sources.MASK in caught.value.message


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def junk_server():
    """A TCP server on a loopback port that answers every connection with non-PostgreSQL bytes."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                continue
            with client:
                client.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + b"\x00\xff" * 64)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    server.close()


def test_a_refused_port_and_a_non_postgres_port_give_the_same_answer(
    admin, org_a, private_networks, junk_server, caplog
):
    """No port scanner: what answers on a port (nothing, another service) is logged, never shown."""
    answers = []
    for port in (_closed_port(), junk_server):
        source = pg_source(org_a, f"postgres://reader:pw@127.0.0.1:{port}/db", timeout=2, name=f"P{port}")
        with caplog.at_level(logging.WARNING, logger="truenorth.measures.sources"):
            with pytest.raises(SourceUnavailable) as caught:
                sources.test_data_source(admin.membership, source.pk)
        answers.append(caught.value.message.replace(str(port), "PORT"))
        source.refresh_from_db()
        assert source.last_error == caught.value.message
    assert answers[0] == answers[1]
    assert "Could not connect to PostgreSQL" in answers[0]
    assert "refused" not in answers[0].lower() and "received" not in answers[0].lower()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "cannot connect" in logged and str(junk_server) in logged  # the details are in the log


# --- who and what a PostgreSQL source may reach -----------------------------------------------------


def _server_is_local() -> bool:
    params = psycopg.conninfo.conninfo_to_dict(PG_URL)
    return str(params.get("host")) in ("127.0.0.1", "localhost") and str(params.get("port") or 5432) == "5432"


# Every spelling of "the PostgreSQL at 127.0.0.1:5432" the outside probe used (and a few more).
SPELLINGS = [
    "postgres://{role}@127.0.0.1:5432/{db}",
    "postgres://{role}@127.0.0.1:05432/{db}",
    "postgres://{role}@truenorth-probe.invalid/{db}?hostaddr=127.0.0.1",
    "postgres://{role}@127.0.0.1,127.0.0.1/{db}",
    "postgres://{role}@[::ffff:127.0.0.1]/{db}",
    "postgres://{role}@0.0.0.0/{db}",
    "postgres://{role}@localhost/{db}",
    "postgres://{role}@2130706433/{db}",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_private_addresses_are_refused_unless_the_operator_allows_them(admin, org_a, settings, spelling):
    settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = False
    dsn = spelling.format(role="reader", db="warehouse")
    try:
        source = sources.create_data_source(
            admin.membership, admin.user, name="Local", kind="postgres", config={"dsn": dsn}
        )
    except ValidationFailed as refused:  # a literal address: refused when saved
        assert refused.field == "dsn" and "private" in refused.message
        return
    # A host name: refused when it resolves, before any connection.
    with pytest.raises(SourceUnavailable, match="private"):
        sources.test_data_source(admin.membership, source.pk)


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "192.168.0.10", "172.16.5.5", "169.254.169.254", "100.64.0.1", "[fe80::1]", "[::1]",
     "[::]", "[::ffff:10.0.0.1]", "[64:ff9b::a00:1]", "[2002:c0a8:1::1]"],
)  # fmt: skip
def test_every_kind_of_non_public_address_is_refused(admin, org_a, address):
    with pytest.raises(ValidationFailed) as caught:
        sources.create_data_source(
            admin.membership,
            admin.user,
            name="Internal",
            kind="postgres",
            config={"dsn": f"postgres://reader@{address}:5432/db"},
        )
    assert caught.value.field == "dsn" and "private" in caught.value.message


def test_a_public_address_is_accepted_and_server_side_files_cannot_be_named(admin, org_a):
    ok = {"dsn": "postgres://reader:pw@93.184.215.14:5432/db?sslmode=require"}
    assert sources.create_data_source(admin.membership, admin.user, name="Ok", kind="postgres", config=ok)
    for extra in ("service=truenorth", "passfile=/root/.pgpass", "sslkey=/etc/ssl/private/key.pem"):
        with pytest.raises(ValidationFailed, match="not allowed") as caught:
            sources.create_data_source(
                admin.membership,
                admin.user,
                name="Bad",
                kind="postgres",
                config={"dsn": f"postgres://reader@93.184.215.14/db?{extra}"},
            )
        assert caught.value.field == "dsn"


def _identity_of(url: str) -> sources._Identity:
    with psycopg.connect(url) as conn:
        return sources._identity(lambda sql, params: conn.execute(sql, params).fetchone())


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_truenorths_own_database_is_refused_in_every_spelling(admin, org_a, reader, monkeypatch, spelling):
    """Identity is decided after connecting: here TrueNorth's own database is PG_URL's database."""
    if not _server_is_local():
        pytest.skip("the spellings name 127.0.0.1:5432")
    own_db = psycopg.conninfo.conninfo_to_dict(PG_URL)["dbname"]
    monkeypatch.setattr(postgres_runner, "_own_identity", lambda: _identity_of(PG_URL))
    source = pg_source(org_a, spelling.format(role=reader, db=own_db), name="Me")
    with pytest.raises(SourceUnavailable, match="TrueNorth's own database cannot be a data source"):
        sources.test_data_source(admin.membership, source.pk)
    with pytest.raises(SourceUnavailable, match="own database"):
        sources.run_query(source, "SELECT now(), count(*) FROM pg_catalog.pg_class")
    # Another database on the same server is not TrueNorth's.
    other = pg_source(org_a, spelling.format(role=reader, db="postgres"), name="Other")
    assert "Connected to PostgreSQL" in sources.test_data_source(admin.membership, other.pk)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_real_own_database_is_refused_when_truenorth_runs_on_postgres(admin, org_a, reader, spelling):
    """Without any stand-in: TrueNorth's own database (the test database) as a source, every spelling."""
    from django.db import connection

    if connection.vendor != "postgresql" or not _server_is_local():
        pytest.skip("TrueNorth runs on SQLite here (run with DATABASE_URL=postgres://…@127.0.0.1:5432/…)")
    own_db = connection.settings_dict["NAME"]
    source = pg_source(org_a, spelling.format(role=reader, db=own_db), name="Me")
    with pytest.raises(SourceUnavailable, match="TrueNorth's own database cannot be a data source"):
        sources.test_data_source(admin.membership, source.pk)
    with pytest.raises(SourceUnavailable, match="own database"):
        sources.run_query(source, "SELECT now(), count(*) FROM django_session")


@pytest.mark.parametrize(
    ("grants", "superuser", "says"),
    [
        ((), True, "is a superuser"),
        (("pg_signal_backend",), False, "pg_signal_backend"),
        (("pg_read_server_files",), False, "pg_read_server_files"),
        (("pg_write_server_files",), False, "pg_write_server_files"),
        (("pg_execute_server_program",), False, "pg_execute_server_program"),
    ],
)
def test_roles_that_reach_beyond_reading_are_refused(
    admin, org_a, pg_role, private_networks, grants, superuser, says
):
    role = pg_role(*grants, superuser=superuser)
    source = pg_source(org_a, pg_url(role))
    with pytest.raises(SourceUnavailable) as caught:
        sources.test_data_source(admin.membership, source.pk)
    assert says in caught.value.message and "only read" in caught.value.message
    with pytest.raises(SourceUnavailable, match=says):  # and on every run, not only when tested
        sources.run_query(source, "SELECT now(), 1 FROM pg_catalog.pg_read_file('/etc/passwd')")


def test_a_role_that_inherits_a_dangerous_role_through_a_group_is_refused(
    admin, org_a, pg_role, private_networks
):
    group = pg_role("pg_read_server_files", "pg_signal_backend")
    role = pg_role(group)
    source = pg_source(org_a, pg_url(role))
    with pytest.raises(SourceUnavailable, match="pg_read_server_files, pg_signal_backend"):
        sources.test_data_source(admin.membership, source.pk)


def test_a_proper_read_only_role_is_accepted(admin, org_a, reader_dsn, pg_schema):
    source = pg_source(org_a, reader_dsn)
    assert "Connected to PostgreSQL" in sources.test_data_source(admin.membership, source.pk)


# --- the stored password stays with its server ------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda dsn: dsn.replace("db.example.com", "attacker.example.net"), "host"),
        (lambda dsn: dsn.replace("db.example.com", "db.example.com:6543"), "port"),
        (lambda dsn: dsn.replace("reader:", "admin:"), "user"),
        (lambda dsn: dsn + "?hostaddr=93.184.215.15", "address"),
        (lambda dsn: dsn.replace("db.example.com", "db.example.com,attacker.example.net"), "host"),
    ],
)
def test_moving_a_source_needs_the_password_again(admin, org_a, edit, says):
    source = sources.create_data_source(
        admin.membership,
        admin.user,
        name="W",
        kind="postgres",
        config={"dsn": "postgres://reader:p%40ss@db.example.com/warehouse"},
    )
    shown = sources.describe(source)["config"]["dsn"]
    with pytest.raises(ValidationFailed) as caught:
        sources.update_data_source(
            admin.membership, admin.user, source.pk, config={"dsn": edit(shown)}, version=1
        )
    assert (
        caught.value.field == "dsn"
        and says in caught.value.message
        and "password again" in caught.value.message
    )
    source.refresh_from_db()
    assert (
        psycopg.conninfo.conninfo_to_dict(sources.decrypt_config(source)["dsn"])["host"] == "db.example.com"
    )
    # With the password typed again, the move is fine.
    retyped = edit(shown).replace(sources.MASK, "n3w-pass")
    sources.update_data_source(admin.membership, admin.user, source.pk, config={"dsn": retyped}, version=1)
    source.refresh_from_db()
    assert psycopg.conninfo.conninfo_to_dict(sources.decrypt_config(source)["dsn"])["password"] == "n3w-pass"


def test_the_api_refuses_moving_a_source_with_the_masked_password(admin, org_a):
    created = admin.api().post(
        "/api/v1/orgs/alpha/data-sources",
        json.dumps(
            {"name": "W", "kind": "postgres", "config": {"dsn": "postgres://reader:pw@db.example.com/w"}}
        ),
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    moved = body["config"]["dsn"].replace("db.example.com", "attacker.example.net")
    response = admin.api().patch(
        f"/api/v1/orgs/alpha/data-sources/{body['id']}",
        json.dumps({"config": {"dsn": moved}, "version": body["version"]}),
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["dsn"]


@pytest.mark.django_db
def test_a_sql_measure_with_a_writing_query_is_refused_when_saved(admin):
    from truenorth.core.errors import ValidationFailed
    from truenorth.measures import services as value
    from truenorth.measures import sources as src

    source = src.create_data_source(
        admin.membership, admin.user, name="Scratch", kind="duckdb", config={"path": ""}
    )
    with pytest.raises(ValidationFailed) as exc:
        value.create_measure(
            admin.membership,
            admin.user,
            name="Bad",
            kva="current_value",
            source="sql",
            data_source_id=source.pk,
            query="CREATE TABLE t AS SELECT 1",
        )
    assert exc.value.field == "query"
