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
