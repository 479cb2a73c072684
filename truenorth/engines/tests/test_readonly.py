"""The read-only check: a table of accepted and refused queries per dialect, and the evidence SQL of
every dialect (which must pass)."""

from __future__ import annotations

import pytest

from truenorth.engines.base import NotReadOnly
from truenorth.engines.readonly import check_read_only
from truenorth.evidence import synthetic
from truenorth.evidence.compile import Tables, compile_experiment
from truenorth.evidence.metrics import Denominator, Metric, Selection

DIALECTS = ("duckdb", "postgres", "spark", "clickhouse", "trino", "bigquery", "snowflake")

ACCEPTED: list[tuple[str, str]] = [
    # every dialect: the plain shapes
    *[(d, "SELECT 1") for d in DIALECTS],
    *[(d, "SELECT 1;") for d in DIALECTS],
    *[(d, "select a, count(*) from t where b > 1 group by a order by a") for d in DIALECTS],
    *[(d, "WITH x AS (SELECT 1 AS a) SELECT a FROM x") for d in DIALECTS],
    *[(d, "SELECT a FROM t UNION ALL SELECT a FROM u") for d in DIALECTS],
    *[(d, "SELECT a FROM t INTERSECT DISTINCT SELECT a FROM u") for d in DIALECTS],
    *[(d, "SELECT a FROM t EXCEPT DISTINCT SELECT a FROM u") for d in DIALECTS],
    *[(d, "SELECT * FROM (SELECT a FROM t) AS q WHERE a IN (SELECT a FROM u)") for d in DIALECTS],
    *[(d, "-- a comment\nSELECT 1 /* DELETE FROM t; */") for d in DIALECTS],
    *[(d, "SELECT 'DROP TABLE t; read_csv(1)' AS s") for d in DIALECTS],
    ("duckdb", "FROM t SELECT a"),
    ("duckdb", "SELECT * FROM s.t"),
    ("postgres", "(SELECT 1) UNION (SELECT 2)"),
    ("postgres", "SELECT pg_sleep(0.1)"),  # allowed: the timeout cancels it on the engine
    ("postgres", "SELECT $$ ; DELETE FROM t; $$ AS s"),
    ("postgres", "SELECT E'\\' ; DELETE FROM t; --'"),
    ("postgres", "SELECT current_setting('search_path')"),
    ("spark", "SELECT * FROM spark_catalog.default.events"),
    ("spark", "SELECT percentile_approx(v, 0.5) FROM t"),
    ("clickhouse", "SELECT sleep(1)"),
    ("clickhouse", "SELECT quantileTDigest(0.9)(v) FROM db.events"),
    ("trino", "SELECT approx_percentile(v, 0.5) FROM hive.web.events"),
    ("bigquery", "SELECT * FROM `my-project.analytics.events_*` WHERE _TABLE_SUFFIX > '2024'"),
    ("snowflake", "SELECT * FROM db.schema.events AT(OFFSET => -60)"),
    ("snowflake", "SELECT $$not a stage @x$$ AS s"),
    ("snowflake", "SELECT * FROM IDENTIFIER('db.schema.events')"),
    ("spark", "SELECT * FROM IDENTIFIER('default.events')"),
]

REFUSED: list[tuple[str, str, str]] = [
    # (dialect, sql, a word the message names)
    *[(d, "", "empty") for d in DIALECTS],
    *[(d, "  -- only a comment\n", "empty") for d in DIALECTS],
    *[(d, "SELECT 1; SELECT 2", "one statement") for d in DIALECTS],
    *[(d, "SELECT 1; DELETE FROM t", "one statement") for d in DIALECTS],
    *[(d, "DELETE FROM t", "DELETE") for d in DIALECTS],
    *[(d, "INSERT INTO t SELECT 1", "INSERT") for d in DIALECTS],
    *[(d, "UPDATE t SET a = 1", "UPDATE") for d in DIALECTS],
    *[(d, "DROP TABLE t", "DROP") for d in DIALECTS],
    *[(d, "CREATE TABLE t AS SELECT 1", "CREATE") for d in DIALECTS],
    *[(d, "ALTER TABLE t ADD COLUMN b INT", "ALTER") for d in DIALECTS],
    *[(d, "TRUNCATE TABLE t", "TRUNCATE") for d in DIALECTS],
    *[(d, "GRANT SELECT ON t TO someone", "GRANT") for d in DIALECTS],
    *[(d, "EXPLAIN SELECT 1", "EXPLAIN") for d in DIALECTS],
    *[(d, "SELECT FROM WHERE (", "line 1") for d in DIALECTS],
    *[(d, "SELECT 'unterminated", "unterminated") for d in DIALECTS],
    *[(d, "select 1 union all select 2; drop table t", "one statement") for d in DIALECTS],
    *[(d, "SELECT 1 /* /* */, a FROM t -- */", "nested comments") for d in DIALECTS],
    ("postgres", "SELECT 1 /* nested /* comment */ ; DELETE FROM t; */", "nested comments"),
    ("clickhouse", "SELECT 1 /* /* */, file('/etc/passwd') -- */", "nested comments"),
    # duckdb
    ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("duckdb", "SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("duckdb", "SELECT * FROM read_parquet('/x.parquet')", "read_parquet"),
    ("duckdb", "SELECT * FROM READ_JSON_AUTO('/x.json')", "read_json_auto"),
    ("duckdb", "SELECT * FROM \"read_text\"('/etc/passwd')", "read_text"),
    ("duckdb", "SELECT * FROM glob('/*')", "glob"),
    ("duckdb", "SELECT * FROM query('DELETE FROM t')", "query"),
    ("duckdb", "SELECT getenv('HOME')", "getenv"),
    ("duckdb", "SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
    ("duckdb", "SELECT * FROM postgres_scan('dbname=x', 'public', 't')", "postgres_scan"),
    ("duckdb", "SELECT * FROM sqlite_scan('/x.db', 't')", "sqlite_scan"),
    ("duckdb", "SELECT * FROM json_execute_serialized_sql('{}')", "json_execute_serialized_sql"),
    ("duckdb", "SELECT * FROM 'x.csv'", "file"),
    ("duckdb", 'SELECT * FROM "/etc/passwd"', "file"),
    ("duckdb", "SELECT * FROM 'https://example.com/x.parquet'", "URL"),
    ("duckdb", "SELECT a FROM t WHERE a IN (SELECT x FROM read_csv('/etc/passwd'))", "read_csv"),
    ("duckdb", "WITH x AS (SELECT * FROM parquet_scan('/x')) SELECT * FROM x", "parquet_scan"),
    ("duckdb", "ATTACH '/x.db' AS other", "ATTACH"),
    ("duckdb", "DETACH other", "DETACH"),
    ("duckdb", "INSTALL httpfs", "INSTALL"),
    ("duckdb", "LOAD httpfs", "LOAD"),
    ("duckdb", "SET enable_external_access = true", "SET"),
    ("duckdb", "PRAGMA enable_profiling", "PRAGMA"),
    ("duckdb", "COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
    ("duckdb", "USE other", "USE"),
    ("duckdb", "CALL pragma_version()", "CALL"),
    ("duckdb", "EXPORT DATABASE '/tmp/x'", "EXPORT"),
    ("duckdb", "SUMMARIZE t", "SUMMARIZE"),
    ("duckdb", "DESCRIBE t", "DESCRIBE"),
    ("duckdb", "SHOW TABLES", "SHOW"),
    # postgres
    ("postgres", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "DELETE"),
    ("postgres", "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x UNION SELECT 1", "UPDATE"),
    (
        "postgres",
        "SELECT 1 UNION ALL (WITH y AS (INSERT INTO t VALUES (1) RETURNING a) SELECT a FROM y)",
        "INSERT",
    ),
    ("postgres", "SELECT * INTO newtable FROM t", "INTO"),
    ("postgres", "SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
    ("postgres", "SELECT * FROM t FOR SHARE SKIP LOCKED", "FOR UPDATE"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("postgres", "SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file"),
    ("postgres", 'SELECT "pg_catalog"."PG_READ_BINARY_FILE"(\'/etc/passwd\')', "pg_read_binary_file"),
    ("postgres", "SELECT * FROM pg_ls_dir('/')", "pg_ls_dir"),
    ("postgres", "SELECT lo_import('/etc/passwd')", "lo_import"),
    ("postgres", "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(a int)", "dblink"),
    ("postgres", "SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    ("postgres", "SELECT nextval('s')", "nextval"),
    ("postgres", "SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    ("postgres", "SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("postgres", "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", "query_to_xml"),
    ("postgres", "COPY t TO PROGRAM 'id'", "COPY"),
    ("postgres", "SET default_transaction_read_only = off", "SET"),
    ("postgres", "BEGIN", "transaction"),
    ("postgres", "SELECT 1 /* c */ ; /* c */ DELETE FROM t", "one statement"),
    ("postgres", "SELECT '\\' ; DELETE FROM t; --'", "one statement"),
    # spark
    ("spark", "SELECT reflect('java.lang.Runtime', 'getRuntime')", "reflect"),
    ("spark", "SELECT java_method('java.lang.System', 'exit', 0)", "java_method"),
    ("spark", "SELECT * FROM parquet.`/data/x.parquet`", "file"),
    ("spark", "SELECT * FROM csv.`file:///etc/passwd`", "file"),
    ("spark", "SELECT * FROM `json`.`hdfs://nn/x`", "file"),
    ("spark", "SELECT * FROM read_files('/data')", "read_files"),
    ("spark", "SELECT TRANSFORM(a) USING 'cat' AS (b) FROM t", "TRANSFORM"),
    ("spark", "SELECT * FROM IDENTIFIER('parquet.`/data/x`')", "file"),
    ("spark", "SELECT * FROM IDENTIFIER('csv.`file:///etc/passwd`')", "file"),
    ("spark", "SELECT * FROM IDENTIFIER(concat('parq', 'uet.`/x`'))", "IDENTIFIER"),
    ("spark", "CACHE TABLE t", "CACHE"),
    ("spark", "ADD JAR '/tmp/x.jar'", "ADD"),
    ("spark", "LOAD DATA LOCAL INPATH '/etc/passwd' INTO TABLE t", "LOAD"),
    ("spark", "INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1", "INSERT"),
    # clickhouse
    ("clickhouse", "SELECT * FROM file('/etc/passwd', 'LineAsString')", "file"),
    ("clickhouse", "SELECT * FROM `file`('/etc/passwd')", "file"),
    ("clickhouse", "SELECT * FROM url('http://169.254.169.254/', CSV, 'a String')", "url"),
    ("clickhouse", "SELECT * FROM s3('http://x/y.csv')", "s3"),
    ("clickhouse", "SELECT * FROM s3Cluster('c', 'http://x/y.csv')", "s3cluster"),
    ("clickhouse", "SELECT * FROM hdfs('hdfs://x/y', 'CSV', 'a String')", "hdfs"),
    ("clickhouse", "SELECT * FROM remote('other:9000', system.users)", "remote"),
    ("clickhouse", "SELECT * FROM remoteSecure('other:9440', db.t)", "remotesecure"),
    ("clickhouse", "SELECT * FROM cluster('c', db.t)", "cluster"),
    ("clickhouse", "SELECT * FROM mysql('h:3306', 'db', 't', 'u', 'p')", "mysql"),
    ("clickhouse", "SELECT * FROM postgresql('h:5432', 'db', 't', 'u', 'p')", "postgresql"),
    ("clickhouse", "SELECT * FROM jdbc('jdbc:x', 't')", "jdbc"),
    ("clickhouse", "SELECT * FROM executable('x.sh', TabSeparated, 'a String')", "executable"),
    ("clickhouse", "SELECT * FROM input('a String')", "input"),
    ("clickhouse", "SELECT a FROM t WHERE a IN (SELECT * FROM file('/x'))", "file"),
    ("clickhouse", "SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
    ("clickhouse", "SELECT 1 FORMAT JSON", "FORMAT"),
    ("clickhouse", "SELECT 1 INTO OUTFILE '/tmp/x'", "line 1"),
    ("clickhouse", "SYSTEM SHUTDOWN", "SYSTEM"),
    ("clickhouse", "KILL QUERY WHERE 1", "KILL"),
    ("clickhouse", "OPTIMIZE TABLE t", "OPTIMIZE"),
    # trino
    ("trino", "SELECT * FROM TABLE(system.query(query => 'DELETE FROM t'))", "query"),
    ("trino", "SELECT * FROM TABLE(pg.system.query(query => 'SELECT 1'))", "query"),
    ("trino", "CALL system.runtime.kill_query('x')", "CALL"),
    ("trino", "SET SESSION query_max_run_time = '1h'", "SET"),
    ("trino", "USE hive.web", "USE"),
    ("trino", "PREPARE q FROM SELECT 1", "PREPARE"),
    ("trino", "ANALYZE hive.web.t", "ANALYZE"),
    # bigquery
    ("bigquery", "SELECT * FROM EXTERNAL_QUERY('conn', 'DELETE FROM t')", "external_query"),
    ("bigquery", "SELECT * FROM ML.PREDICT(MODEL m, TABLE t)", "ml.predict"),
    ("bigquery", "SELECT ML.GENERATE_TEXT(MODEL m, TABLE t)", "ml."),
    ("bigquery", "EXPORT DATA OPTIONS (uri = 'gs://b/*.csv', format = 'CSV') AS SELECT 1", "EXPORT"),
    ("bigquery", "DECLARE x INT64 DEFAULT 1", "DECLARE"),
    ("bigquery", "EXECUTE IMMEDIATE 'DELETE FROM t'", "EXECUTE"),
    ("bigquery", "MERGE t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
    ("bigquery", "CREATE TEMP FUNCTION f() RETURNS INT64 LANGUAGE js AS 'return 1'", "CREATE"),
    # snowflake
    ("snowflake", "SELECT $1 FROM @stage/x.csv", "stage"),
    ("snowflake", "SELECT * FROM '@stage/x.csv'", "stage"),
    ("snowflake", "SELECT * FROM IDENTIFIER('@stage/x.csv')", "stage"),
    ("snowflake", "SELECT t.$1 FROM @~/x (FILE_FORMAT => 'f') t", "stage"),
    ("snowflake", "SELECT SYSTEM$CANCEL_ALL_QUERIES(1)", "system$"),
    ("snowflake", "SELECT system$wait(10)", "system$"),
    ("snowflake", "SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))", "result_scan"),
    ("snowflake", "SELECT * FROM TABLE(INFER_SCHEMA(LOCATION => '@s'))", "infer_schema"),
    ("snowflake", "SELECT GET_PRESIGNED_URL(@s, 'x.csv')", "get_presigned_url"),
    ("snowflake", "SELECT SNOWFLAKE.CORTEX.COMPLETE('m', 'p')", "snowflake.cortex"),
    ("snowflake", "CALL proc()", "CALL"),
    ("snowflake", "PUT file:///etc/passwd @stage", "PUT"),
    ("snowflake", "USE ROLE accountadmin", "USE"),
    ("snowflake", "EXECUTE IMMEDIATE $$ DELETE FROM t $$", "EXECUTE"),
]


@pytest.mark.parametrize(("dialect", "sql"), ACCEPTED)
def test_accepted(dialect: str, sql: str) -> None:
    check_read_only(sql, dialect)


@pytest.mark.parametrize(("dialect", "sql", "named"), REFUSED)
def test_refused(dialect: str, sql: str, named: str) -> None:
    with pytest.raises(NotReadOnly) as info:
        check_read_only(sql, dialect)
    assert info.value.field == "query"
    assert named.lower() in info.value.message.lower(), info.value.message
    assert "Traceback" not in info.value.message


def _metric_sets() -> dict[str, list[Metric]]:
    purchase = Selection(("purchase",), window_days=7)
    return {
        "standard": synthetic.standard_metrics(),
        "where": [Metric("big_purchases", "count", Selection(("purchase",), where="value > 20"))],
        "ratio": [
            Metric(
                "revenue_per_view",
                "ratio",
                purchase,
                denominator=Denominator("count", Selection(("page_view",), window_days=7)),
            )
        ],
        "window": [Metric("converted_7d", "proportion", purchase)],
    }


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(_metric_sets()))
def test_evidence_sql_passes(dialect: str, case: str) -> None:
    compiled = compile_experiment(_metric_sets()[case], "checkout-2024", dialect=dialect)
    check_read_only(compiled.sql, dialect)


def test_duckdb_files_need_the_reader_allowed() -> None:
    tables = Tables(assignments="/data/org1/assignments.parquet", events="/data/org1/events.csv")
    sql = compile_experiment(synthetic.standard_metrics(), "x", dialect="duckdb", tables=tables).sql
    with pytest.raises(NotReadOnly, match="read_parquet"):
        check_read_only(sql, "duckdb")
    readers = frozenset({"read_parquet", "READ_CSV_AUTO"})
    check_read_only(sql, "duckdb", allowed_functions=readers)
    paths = frozenset({tables.assignments, tables.events})
    check_read_only(sql, "duckdb", allowed_functions=readers, allowed_paths=paths)
    with pytest.raises(NotReadOnly, match="own files"):
        check_read_only(sql, "duckdb", allowed_functions=readers, allowed_paths=frozenset({tables.events}))
    # re-allowing one reader does not re-allow the others
    with pytest.raises(NotReadOnly, match="read_text"):
        check_read_only("SELECT * FROM read_text('/etc/passwd')", "duckdb", allowed_functions=readers)


def test_allowed_paths_want_literals() -> None:
    allowed = frozenset({"read_parquet"})
    paths = frozenset({"/a.parquet"})
    check_read_only(
        "SELECT * FROM read_parquet(['/a.parquet'])", "duckdb", allowed_functions=allowed, allowed_paths=paths
    )
    for sql in (
        "SELECT * FROM read_parquet('/a.parquet' || '')",
        "SELECT * FROM read_parquet(['/a.parquet', '/etc/x.parquet'])",
        "SELECT * FROM read_parquet((SELECT '/a.parquet'))",
    ):
        with pytest.raises(NotReadOnly, match="own files"):
            check_read_only(sql, "duckdb", allowed_functions=allowed, allowed_paths=paths)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(NotReadOnly, match="dialect"):
        check_read_only("SELECT 1", "no-such-dialect")


def test_other_dialects_get_every_deny_list() -> None:
    check_read_only("SELECT 1", "mysql")
    for sql in ("SELECT * FROM file('/etc/passwd')", "SELECT pg_read_file('/x')", "SELECT reflect('a', 'b')"):
        with pytest.raises(NotReadOnly):
            check_read_only(sql, "mysql")


def test_parse_error_names_the_position() -> None:
    with pytest.raises(NotReadOnly) as info:
        check_read_only("SELECT a,\n  FROM WHERE", "postgres")
    assert "line 2" in info.value.message
