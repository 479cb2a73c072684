"""Metric definitions are validated before any SQL exists; hostile ones are refused with a clear error."""

from __future__ import annotations

import pytest

from truenorth.evidence.compile import Tables, compile_experiment
from truenorth.evidence.metrics import Denominator, Metric, MetricError, Selection, metrics_from_dicts

BUY = Selection(("purchase",))


@pytest.mark.parametrize(
    "name",
    ["revenue; DROP TABLE events", 'x" FROM events --', "Revenue", "1st", "", "a" * 41, "rev enue"],
)
def test_it_refuses_a_hostile_or_malformed_metric_name(name):
    with pytest.raises(MetricError, match="metric name"):
        Metric(name, "sum", BUY)


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ("value > 1; DROP TABLE events", "single expression"),
        ("value > (SELECT max(value) FROM events)", "not allowed"),
        ("pg_sleep(10) IS NULL", "not allowed"),
        ("unit_id = 3", "only use the columns"),
        ("e.value > 1", "only use the columns"),
        ("value > 1 OR 1=1) --", "not valid SQL|single expression|not allowed"),
        ("value", "must be a condition"),
        ("value IN (SELECT 1)", "not allowed"),
        ("name = 'a' UNION SELECT password FROM users", "not valid SQL|single expression|not allowed"),
    ],
)
def test_it_refuses_a_hostile_predicate(predicate, message):
    with pytest.raises(MetricError, match=message) as caught:
        Metric("revenue", "sum", Selection(("purchase",), where=predicate))
    assert caught.value.field == "revenue.where"


def test_it_accepts_a_safe_predicate_and_quotes_event_names():
    m = Metric(
        "big",
        "count",
        Selection(("add to cart", "purchase"), where="value BETWEEN 10 AND 100 AND name <> 'x'"),
    )
    sql = compile_experiment([m], "exp'; DROP TABLE x; --").sql
    assert "'add to cart'" in sql
    assert "'exp''; DROP TABLE x; --'" in sql


@pytest.mark.parametrize("event", ["purchase'; DROP TABLE events; --", "a\nb", ""])
def test_it_refuses_a_hostile_event_name(event):
    with pytest.raises(MetricError, match="event name"):
        Metric("n", "count", Selection((event,)))


@pytest.mark.parametrize("table", ["events; DROP TABLE x", "a.b.c.d", "ev ents", '"events"'])
def test_it_refuses_a_hostile_table_name(table):
    with pytest.raises(MetricError, match="not a table name"):
        Tables(events=table)


def test_it_refuses_inconsistent_definitions():
    with pytest.raises(MetricError, match="needs a denominator"):
        Metric("r", "ratio", BUY)
    with pytest.raises(MetricError, match="only a ratio"):
        Metric("r", "sum", BUY, denominator=Denominator("count", BUY))
    with pytest.raises(MetricError, match="CUPED"):
        Metric("m", "mean", BUY, covariate_days=7)
    with pytest.raises(MetricError, match="whole number of days"):
        Metric("m", "sum", Selection(("purchase",), window_days=0))
    with pytest.raises(MetricError, match="unknown aggregation"):
        Metric("m", "median", BUY)  # type: ignore[arg-type]


def test_it_reads_metrics_from_dicts_and_refuses_unknown_keys():
    metrics = metrics_from_dicts(
        [
            {"name": "conversion", "aggregation": "proportion", "events": "purchase", "window_days": 7},
            {
                "name": "rpv",
                "aggregation": "ratio",
                "events": ["purchase"],
                "denominator": {"aggregation": "count", "events": ["page_view"]},
            },
        ]
    )
    assert metrics[0].select.window_days == 7
    assert metrics[1].denominator is not None
    with pytest.raises(MetricError, match="unknown keys"):
        metrics_from_dicts([{"name": "x", "events": "a", "sql": "DROP TABLE events"}])
    with pytest.raises(MetricError, match="defined twice"):
        metrics_from_dicts([{"name": "x", "events": "a"}, {"name": "x", "events": "b"}])
