"""Delivery charts: each spec's structure, and that one renders to SVG offline."""

from __future__ import annotations

import datetime as dt

from truenorth.delivery import charts
from truenorth.measures.charts import VEGA_LITE_SCHEMA, chart_svg

DAY = dt.date(2026, 3, 2)


def layer_marks(spec: dict) -> list[str]:
    return [layer["mark"]["type"] for layer in spec["layer"]]


def test_cycle_time_scatter_has_the_three_percentile_rules() -> None:
    spec = charts.cycle_time_spec(
        [("A-1", dt.datetime(2026, 3, 2, 10), 2.0), ("A-2", dt.datetime(2026, 3, 4), 5.5)],
        {50: 2.0, 85: 5.0, 95: 5.5},
    )
    assert spec["$schema"] == VEGA_LITE_SCHEMA
    assert layer_marks(spec) == ["point", "rule", "text"]
    assert [p["days"] for p in spec["layer"][0]["data"]["values"]] == [2.0, 5.5]
    rules = spec["layer"][1]["data"]["values"]
    assert [(r["percentile"], r["value"]) for r in rules] == [("P50", 2.0), ("P85", 5.0), ("P95", 5.5)]


def test_cycle_time_without_percentiles_has_only_points() -> None:
    spec = charts.cycle_time_spec([], {50: None, 85: None, 95: None})
    assert layer_marks(spec) == ["point"]


def test_throughput_run_chart_has_the_median() -> None:
    spec = charts.throughput_spec(
        [(DAY + dt.timedelta(days=7), 4), (DAY, 1), (DAY + dt.timedelta(days=14), 2)]
    )
    weeks = spec["layer"][0]["data"]["values"]
    assert [w["items"] for w in weeks] == [1, 4, 2]  # in week order
    assert spec["layer"][1]["mark"]["type"] == "rule"
    assert spec["layer"][1]["data"]["values"][0]["value"] == 2.0


def test_cfd_stacks_three_states_per_day() -> None:
    spec = charts.cfd_spec([(DAY, {"not_started": 3, "in_progress": 2, "done": 1})])
    rows = spec["layer"][0]["data"]["values"]
    assert {(r["state"], r["items"]) for r in rows} == {("Done", 1), ("In progress", 2), ("Not started", 3)}
    assert spec["layer"][0]["encoding"]["y"]["stack"] == "zero"
    assert spec["layer"][0]["mark"]["type"] == "area"


def test_age_chart_has_the_85th_percentile_reference() -> None:
    spec = charts.age_spec([("A-3", "In Progress", 4.0), ("A-4", "Review", 1.5)], 6.0)
    assert layer_marks(spec) == ["point", "rule", "text"]
    assert spec["layer"][1]["data"]["values"][0]["value"] == 6.0
    assert layer_marks(charts.age_spec([], None)) == ["point"]


def test_dora_trend_has_deployments_and_failure_rate_on_two_axes() -> None:
    spec = charts.dora_trend_spec([(DAY, 3, 1 / 3), (DAY + dt.timedelta(days=7), 0, None)])
    assert layer_marks(spec) == ["bar", "line"]
    assert spec["resolve"] == {"scale": {"y": "independent"}}
    assert spec["data"]["values"][1]["failure_rate"] is None


def test_forecast_histogram_has_vertical_markers() -> None:
    spec = charts.forecast_spec([(10, 5), (12, 20), (11, 7)], {50: 12, 85: 11, 95: 10})
    assert layer_marks(spec) == ["bar", "rule", "text"]
    assert [r["value"] for r in spec["layer"][0]["data"]["values"]] == [10, 11, 12]
    assert spec["layer"][1]["encoding"]["x"]["field"] == "value"


def test_every_chart_renders_to_svg() -> None:
    specs = [
        charts.cycle_time_spec([("A-1", dt.datetime(2026, 3, 2), 2.0)], {50: 2.0, 85: 2.0, 95: 2.0}),
        charts.throughput_spec([(DAY, 1), (DAY + dt.timedelta(days=7), 3)]),
        charts.cfd_spec([(DAY, {"not_started": 1, "in_progress": 1, "done": 0})]),
        charts.age_spec([("A-3", "Doing", 4.0)], 3.0),
        charts.dora_trend_spec([(DAY, 2, 0.5)]),
        charts.forecast_spec([(3, 10), (4, 5)], {50: 3, 85: 4, 95: 4}),
    ]
    for spec in specs:
        svg = chart_svg(spec)
        assert svg.lstrip().startswith("<svg"), spec["title"]
