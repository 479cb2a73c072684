"""Golden SQL: the exact query each engine receives for a few experiments, reviewed by hand and kept.

Trino, BigQuery and Snowflake are compiled-only (no real engine in CI), so their golden files are what
was reviewed; DuckDB, PostgreSQL, Spark and ClickHouse have files too so that a change in the SQL (ours
or SQLGlot's) shows up as a diff in review. Regenerate after an intended change with
``.venv/bin/python scripts/update_golden_sql.py`` and review the diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlglot

from truenorth.engines.readonly import check_read_only
from truenorth.evidence import synthetic
from truenorth.evidence.compile import QUANTILE_FUNCTIONS, compile_experiment, compile_quantiles
from truenorth.evidence.metrics import Denominator, Metric, MetricError, Selection

GOLDEN = Path(__file__).resolve().parent / "golden"
DIALECTS = ("duckdb", "postgres", "spark", "clickhouse", "trino", "bigquery", "snowflake")
#: A quote in the name shows each dialect's string escaping.
EXPERIMENT = "checkout'24"
REGENERATE = ".venv/bin/python scripts/update_golden_sql.py"


def _where() -> list[Metric]:
    return [Metric("big_purchases", "count", Selection(("purchase",), window_days=14, where="value >= 20"))]


def _ratio() -> list[Metric]:
    return [
        Metric(
            "revenue_per_view",
            "ratio",
            Selection(("purchase",), window_days=7),
            denominator=Denominator("count", Selection(("page_view",), window_days=7)),
        )
    ]


def _window() -> list[Metric]:
    return [Metric("converted_7d", "proportion", Selection(("purchase", "subscribe"), window_days=7))]


def _exposure() -> list[Metric]:
    """A conversion window with a delay, and an exposure window (units first exposed in [start, end))."""
    return [
        Metric(
            "late_revenue",
            "sum",
            Selection(("purchase",), window_days=7, delay_hours=24),
            exposure_start="2026-01-05",
            exposure_end="2026-01-12T00:00:00Z",
        ),
        Metric("early_views", "count", Selection(("page_view",), window_days=1)),
    ]


def _quantile() -> list[Metric]:
    return [
        Metric("order_p50", "quantile", Selection(("purchase",)), quantile=0.5),
        Metric("order_p90", "quantile", Selection(("purchase",), window_days=7), quantile=0.9),
    ]


#: n per metric and variation for the quantile query (as the first query's rows give them).
QUANTILE_N = {
    "order_p50": {"control": 1200.0, "treatment": 1250.0},
    "order_p90": {"control": 900.0, "treatment": 950.0},
}

CASES: dict[str, Callable[[], list[Metric]]] = {
    "standard": synthetic.standard_metrics,
    "where": _where,
    "ratio": _ratio,
    "window": _window,
    "exposure": _exposure,
    "quantile": _quantile,
}


def render(dialect: str, case: str) -> str:
    """The golden file's content: the compiled SQL and a final newline (for "quantile", the second query,
    `compile_quantiles`)."""
    if case == "quantile":
        return compile_quantiles(_quantile(), EXPERIMENT, QUANTILE_N, dialect=dialect).sql + "\n"
    return compile_experiment(CASES[case](), EXPERIMENT, dialect=dialect).sql + "\n"


def golden_path(dialect: str, case: str) -> Path:
    return GOLDEN / dialect / f"{case}.sql"


def has_case(dialect: str, case: str) -> bool:
    """Quantiles only where the engine has a quantile aggregate (not BigQuery)."""
    return case != "quantile" or dialect in QUANTILE_FUNCTIONS


PAIRS = [(d, c) for d in DIALECTS for c in CASES if has_case(d, c)]


def test_quantiles_refused_where_there_is_no_quantile_aggregate() -> None:
    missing = [d for d in DIALECTS if not has_case(d, "quantile")]
    assert missing == ["bigquery"]
    with pytest.raises(MetricError, match="quantile"):
        compile_quantiles(_quantile(), EXPERIMENT, QUANTILE_N, dialect="bigquery")


@pytest.mark.parametrize(("dialect", "case"), PAIRS)
def test_sql_matches_golden(dialect: str, case: str) -> None:
    path = golden_path(dialect, case)
    actual = render(dialect, case)
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"golden/{dialect}/{case}.sql",
                tofile="compile_experiment(...)",
            )
        )
        pytest.fail(
            f"the {dialect} SQL of case {case!r} differs from its golden file:\n{diff}\n"
            f"If the change is intended, regenerate with `{REGENERATE}` and review the diff.",
            pytrace=False,
        )


@pytest.mark.parametrize(("dialect", "case"), PAIRS)
def test_golden_parses_back_and_is_read_only(dialect: str, case: str) -> None:
    sql = golden_path(dialect, case).read_text(encoding="utf-8")
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree.find(sqlglot.exp.Select) is not None
    check_read_only(sql, dialect)


def test_no_stray_golden_files() -> None:
    expected = {golden_path(d, c) for d, c in PAIRS}
    assert set(GOLDEN.rglob("*.sql")) == expected


# -- the golden files of the engines CI has run on a tiny data set (valid SQL, same numbers) ----------

_ROWS_A = [
    (1, EXPERIMENT, "control", "2026-01-06 00:00:00"),
    (2, EXPERIMENT, "treatment", "2026-01-07 00:00:00"),
    (3, EXPERIMENT, "control", "2026-01-01 00:00:00"),
    (4, EXPERIMENT, "control", "2026-01-06 00:00:00"),
    (4, EXPERIMENT, "treatment", "2026-01-06 00:00:00"),  # multi-assigned: excluded
    (5, "other", "control", "2026-01-06 00:00:00"),
]
_ROWS_E = [
    (1, "2026-01-08 00:00:00", "purchase", 30.0),
    (1, "2026-01-06 01:00:00", "page_view", 0.0),
    (1, "2026-01-01 00:00:00", "purchase", 7.0),
    (2, "2026-01-09 00:00:00", "purchase", 5.0),
    (2, "2026-01-09 00:00:00", "subscribe", 1.0),
    (3, "2026-01-03 00:00:00", "purchase", 40.0),
    (3, "2026-01-30 00:00:00", "page_view", 0.0),
    (4, "2026-01-07 00:00:00", "purchase", 12.0),
]


def _run_duckdb(case: str) -> list[tuple[object, ...]]:
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE assignments (unit_id BIGINT, experiment VARCHAR, variation VARCHAR, first_exposure_at TIMESTAMP)"
    )
    con.execute('CREATE TABLE events (unit_id BIGINT, "at" TIMESTAMP, name VARCHAR, value DOUBLE)')
    con.executemany("INSERT INTO assignments VALUES (?, ?, ?, CAST(? AS TIMESTAMP))", _ROWS_A)
    con.executemany("INSERT INTO events VALUES (?, CAST(? AS TIMESTAMP), ?, ?)", _ROWS_E)
    return [tuple(r) for r in con.execute(golden_path("duckdb", case).read_text(encoding="utf-8")).fetchall()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_duckdb_golden_runs(case: str) -> None:
    rows = _run_duckdb(case)
    assert rows and all(isinstance(r[0], str | None) for r in rows)


@pytest.mark.clickhouse
@pytest.mark.parametrize("case", sorted(CASES))
def test_clickhouse_golden_gives_duckdbs_numbers(case: str) -> None:
    """The ClickHouse file on chDB, with the settings the ClickHouse connectors set (standard LEFT JOIN
    NULLs, a column preferred to a same-named alias)."""
    from chdb import session

    s = session.Session()
    try:
        s.query("CREATE DATABASE IF NOT EXISTS golden")
        s.query(
            "CREATE TABLE golden.assignments (unit_id Int64, experiment String, variation String, "
            "first_exposure_at DateTime64(6, 'UTC')) ENGINE = Memory"
        )
        s.query(
            "CREATE TABLE golden.events (unit_id Int64, at DateTime64(6, 'UTC'), name String, value Float64) "
            "ENGINE = Memory"
        )

        def q(v: object) -> str:
            return (
                "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'" if isinstance(v, str) else str(v)
            )

        s.query(
            "INSERT INTO golden.assignments VALUES " + ", ".join(f"({', '.join(map(q, r))})" for r in _ROWS_A)
        )
        s.query("INSERT INTO golden.events VALUES " + ", ".join(f"({', '.join(map(q, r))})" for r in _ROWS_E))
        s.query("USE golden")
        s.query("SET join_use_nulls = 1")
        s.query("SET prefer_column_name_to_alias = 1")
        s.query("SET session_timezone = 'UTC'")
        result = s.query(golden_path("clickhouse", case).read_text(encoding="utf-8"), "JSONCompact")
        import json

        rows = [tuple(r) for r in json.loads(str(result))["data"]]
    finally:
        s.close()
    expected = _run_duckdb(case)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got[0] == want[0]
        for a, b in zip(got[1:], want[1:], strict=True):
            assert (a is None and b is None) or float(a) == pytest.approx(float(b), rel=1e-9), (got, want)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_postgres_golden_gives_duckdbs_numbers(case: str) -> None:
    """The PostgreSQL file on PostgreSQL (a private schema on the search path)."""
    import os
    import uuid

    import psycopg

    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    if url.startswith("sqlite"):
        pytest.skip("no PostgreSQL configured")
    try:
        conn = psycopg.connect(url, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    schema = f"golden_{uuid.uuid4().hex[:10]}"
    try:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(
            "CREATE TABLE assignments (unit_id BIGINT, experiment TEXT, variation TEXT, first_exposure_at TIMESTAMP)"
        )
        conn.execute(
            'CREATE TABLE events (unit_id BIGINT, "at" TIMESTAMP, name TEXT, value DOUBLE PRECISION)'
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO assignments VALUES (%s, %s, %s, %s::timestamp)", _ROWS_A)
            cur.executemany("INSERT INTO events VALUES (%s, %s::timestamp, %s, %s)", _ROWS_E)
        rows = [
            tuple(r)
            for r in conn.execute(golden_path("postgres", case).read_text(encoding="utf-8")).fetchall()
        ]
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()
    expected = _run_duckdb(case)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got[0] == want[0]
        for a, b in zip(got[1:], want[1:], strict=True):
            assert (a is None and b is None) or float(a) == pytest.approx(float(b), rel=1e-9), (got, want)  # type: ignore[arg-type]
