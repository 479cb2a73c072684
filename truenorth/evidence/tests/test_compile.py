"""One definition, many dialects: the compiled SQL transpiles and parses in each."""

from __future__ import annotations

import pytest
import sqlglot

from truenorth.evidence.compile import Tables, compile_experiment
from truenorth.evidence.metrics import Metric, MetricError, Selection
from truenorth.evidence.synthetic import standard_metrics

METRICS = [*standard_metrics(), Metric("big_orders", "count", Selection(("purchase",), where="value >= 100"))]


@pytest.mark.parametrize(
    "dialect", ["duckdb", "postgres", "clickhouse", "trino", "bigquery", "spark", "snowflake"]
)
def test_the_same_definition_transpiles_to_sql_that_parses_in_each_dialect(dialect):
    query = compile_experiment(METRICS, "checkout", dialect=dialect)
    tree = sqlglot.parse_one(query.sql, read=dialect)
    selected = [s.alias_or_name for s in tree.expressions]
    assert selected == ["variation", "units", *query.columns]
    assert "revenue__post_pre_sum_of_products" in query.columns
    assert "revenue_per_page_view__m_d_sum_of_products" in query.columns


def test_it_returns_only_summary_rows_grouped_by_variation():
    tree = sqlglot.parse_one(compile_experiment(METRICS, "checkout").sql, read="duckdb")
    assert [g.sql() for g in tree.args["group"].expressions] == ["a.variation", "a.excluded"]


def test_table_and_column_names_are_configurable_and_quoted():
    tables = Tables(
        assignments="analytics.exposures", events="analytics.tracks", at="ts", name="event", value="amount"
    )
    sql = compile_experiment(METRICS, "checkout", dialect="postgres", tables=tables).sql
    assert '"analytics"."exposures"' in sql and '"analytics"."tracks"' in sql
    assert 'e."ts"' in sql and 'e."event"' in sql and 'e."amount" >= 100' in sql


def test_an_unknown_dialect_is_a_clear_error():
    with pytest.raises(MetricError, match="dialect"):
        compile_experiment(METRICS, "checkout", dialect="nosuchsql")
