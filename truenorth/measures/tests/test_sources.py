"""Data sources against a real DuckDB file (with Parquet and CSV files) and the real PostgreSQL:
credentials encrypted at rest and never shown, read-only enforced, time limits, clear errors."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid

import duckdb
import psycopg
import pytest

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.measures import sources
from truenorth.measures.models import DataSource
from truenorth.measures.sources import QueryFailed, QueryTimeout, SourceUnavailable

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
def data_dir(tmp_path, settings):
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path]
    make_duckdb(
        tmp_path / "metrics.duckdb",
        """
        CREATE TABLE sales (day DATE, revenue DOUBLE, region VARCHAR);
        INSERT INTO sales VALUES
            ('2025-01-01', 100.5, 'north'), ('2025-02-01', 120, 'north'), ('2025-03-01', 130.25, 'south');
        CREATE TABLE stamps AS SELECT TIMESTAMP '2025-01-01 12:30:00' AS ts, 7 AS n;
        CREATE TABLE texts AS SELECT DATE '2025-01-01' AS day, 'seven' AS value;
        COPY (SELECT DATE '2025-01-01' + INTERVAL (i) DAY AS day, i * 2.5 AS visits FROM range(10) t(i))
            TO '{parquet}' (FORMAT parquet);
        """.replace("{parquet}", str(tmp_path / "visits.parquet")),
    )
    (tmp_path / "nps.csv").write_text("month,score\n2025-01-01,31\n2025-02-01,35\n2025-03-01,-2\n")
    return tmp_path


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


@pytest.fixture
def pg_schema():
    """A scratch schema in the real PostgreSQL with one table, dropped afterwards."""
    if not pg_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL} (CI starts it; set TRUENORTH_TEST_POSTGRES)")
    schema = f"truenorth_src_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.deploys (day date, deployments integer, note text)")
        conn.execute(
            f"INSERT INTO {schema}.deploys VALUES "
            "('2025-01-01', 4, 'a'), ('2025-01-02', 6, 'b'), ('2025-01-03', 5, 'c')"
        )
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_source(org, *, dsn=PG_URL, timeout=5, name="Deploy DB"):
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
    edited = shown.replace("db.example.com", "db2.example.com")
    sources.update_data_source(admin.membership, admin.user, source.pk, config={"dsn": edited}, version=1)
    source.refresh_from_db()
    dsn = sources.decrypt_config(source)["dsn"]
    assert psycopg.conninfo.conninfo_to_dict(dsn)["password"] == "p@ss"
    assert psycopg.conninfo.conninfo_to_dict(dsn)["host"] == "db2.example.com"
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
        ("duckdb", {"path": "relative.duckdb"}, "path", "not an absolute path"),
        ("duckdb", {"path": "/etc/passwd"}, "path", "outside the directories"),
        ("duckdb", {"path": "", "files": ["/etc/passwd"]}, "files", "outside the directories"),
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
    with pytest.raises(ValidationFailed, match="outside the directories"):
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


def test_postgres_query(org_a, pg_schema):
    source = pg_source(org_a)
    rows = sources.run_query(source, f"SELECT day, deployments FROM {pg_schema}.deploys ORDER BY day;")
    assert rows == [
        (dt.datetime(2025, 1, 1, tzinfo=UTC), 4.0),
        (dt.datetime(2025, 1, 2, tzinfo=UTC), 6.0),
        (dt.datetime(2025, 1, 3, tzinfo=UTC), 5.0),
    ]
    aware = sources.run_query(source, "SELECT timestamptz '2025-01-01 10:00+02', 1.5::numeric")
    assert aware == [(dt.datetime(2025, 1, 1, 8, tzinfo=UTC), 1.5)]


def test_postgres_test_connection(admin, org_a, pg_schema):
    source = pg_source(org_a)
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
def test_postgres_writes_are_refused(org_a, pg_schema, query, says):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {pg_schema}.seq")
    source = pg_source(org_a)
    with pytest.raises(QueryFailed) as caught:
        sources.run_query(source, query.replace("{s}", pg_schema))
    assert says in caught.value.message
    assert pg_count(pg_schema) == 3
    with psycopg.connect(PG_URL) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [f"{pg_schema}.hack"]).fetchone()
    assert exists == (None,)


def test_postgres_read_only_even_for_a_data_modifying_function(org_a, pg_schema):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION {pg_schema}.wipe() RETURNS int LANGUAGE sql AS "
            f"'DELETE FROM {pg_schema}.deploys; SELECT 1'"
        )
    source = pg_source(org_a)
    with pytest.raises(QueryFailed, match="read-only"):
        sources.run_query(source, f"SELECT now(), {pg_schema}.wipe()")
    assert pg_count(pg_schema) == 3


def test_postgres_wrong_shape(org_a, pg_schema):
    source = pg_source(org_a)
    with pytest.raises(QueryFailed, match="Wrong shape"):
        sources.run_query(source, f"SELECT * FROM {pg_schema}.deploys")
    with pytest.raises(QueryFailed, match="must be a number, got str"):
        sources.run_query(source, f"SELECT day, note FROM {pg_schema}.deploys")


def test_postgres_slow_query_is_stopped(org_a, pg_schema):
    source = pg_source(org_a, timeout=1)
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1 s"):
        sources.run_query(source, "SELECT now(), 1 FROM pg_sleep(5)")
    assert time.monotonic() - started < 4


def test_postgres_down_is_a_clear_error_without_the_password(org_a):
    source = pg_source(org_a, dsn="postgres://reader:hunter22@127.0.0.1:1/warehouse", timeout=2)
    with pytest.raises(SourceUnavailable) as caught:
        sources.run_query(source, "SELECT now(), 1")
    assert "Cannot connect to PostgreSQL" in caught.value.message
    assert "hunter22" not in caught.value.message
    assert sources.MASK in caught.value.message


def test_postgres_options_in_the_address_cannot_lift_the_limits(org_a, pg_schema):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE {pg_schema}.counter")
    lifted = "?options=-c%20default_transaction_read_only%3Doff%20-c%20statement_timeout%3D0"
    source = pg_source(org_a, dsn=PG_URL + lifted, timeout=2)
    rows = sources.run_query(
        source,
        "SELECT now(), (current_setting('transaction_read_only') = 'on')::int "
        "+ 10 * (current_setting('statement_timeout') = '2s')::int",
    )
    assert [value for _, value in rows] == [11.0]
    with pytest.raises(QueryFailed, match="read-only"):
        sources.run_query(source, f"SELECT now(), nextval('{pg_schema}.counter')")


def test_truenorths_own_database_cannot_be_a_source(admin, org_a, monkeypatch):
    own = {"ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": 5432, "NAME": "truenorth"}
    monkeypatch.setattr(sources, "_app_database", lambda: own)
    for dsn in ("postgres://u:p@localhost/truenorth", "postgres://u:p@127.0.0.1:5432/truenorth"):
        with pytest.raises(ValidationFailed, match="own database"):
            sources.create_data_source(
                admin.membership, admin.user, name="Me", kind="postgres", config={"dsn": dsn}
            )
    other = {"dsn": "postgres://u:p@localhost/other"}
    assert sources.create_data_source(
        admin.membership, admin.user, name="Other", kind="postgres", config=other
    )


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
