"""One chart definition: the Vega-Lite spec the browser draws is the one rendered to static SVG."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from truenorth.measures.charts import chart_spec, chart_svg, return_spec, sparkline_points

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
POINTS = [(START + dt.timedelta(weeks=i), 40.0 + 3 * i) for i in range(6)]


def test_the_spec_is_plain_json_with_the_observations_embedded() -> None:
    spec = chart_spec(POINTS, title="NPS", unit="pts", baseline=35, target=70)
    again = json.loads(json.dumps(spec))  # no datetimes or other non-JSON values
    assert again["$schema"].endswith("/vega-lite/v6.json")
    values = again["layer"][0]["data"]["values"]
    assert [v["value"] for v in values] == [40.0, 43.0, 46.0, 49.0, 52.0, 55.0]
    assert values[0]["observed_at"] == "2026-01-05T09:00:00+00:00"


def test_it_sorts_points_and_drops_values_it_cannot_draw() -> None:
    spec = chart_spec([POINTS[2], POINTS[0], (START, float("nan")), POINTS[1]])
    values = spec["layer"][0]["data"]["values"]
    assert [v["value"] for v in values] == [40.0, 43.0, 46.0]


def test_the_svg_render_has_the_target_line_the_baseline_and_every_data_point() -> None:
    spec = chart_spec(POINTS, title="NPS", unit="pts", baseline=35, target=70)
    svg = chart_svg(spec)
    assert svg.lstrip().startswith("<svg")
    assert "Target 70 pts" in svg
    assert "Baseline 35 pts" in svg
    # Vega labels every point mark for screen readers: one per observation.
    points = re.findall(r'aria-roledescription="point"', svg)
    assert len(points) == len(POINTS)
    for _, value in POINTS:
        assert f"NPS (pts): {value:g}" in svg
    # The target rule is drawn in the target colour.
    assert 'stroke="#14532d"' in svg


def test_annotations_become_labelled_markers() -> None:
    spec = chart_spec(
        POINTS, target=70, annotations=[(dt.date(2026, 1, 20), "Release 2.0"), (START, "Pivot decided")]
    )
    svg = chart_svg(spec)
    assert "Release 2.0" in svg
    assert "Pivot decided" in svg


def test_a_measure_without_target_or_observations_still_renders() -> None:
    svg = chart_svg(chart_spec([], title="Lead time"))
    assert "<svg" in svg
    assert "Target" not in svg


def test_an_invalid_spec_is_refused() -> None:
    spec = chart_spec(POINTS, target=70)
    spec["layer"][0]["mark"] = {"type": "no-such-mark"}
    with pytest.raises(ValueError, match="conversion failed"):
        chart_svg(spec)


def test_the_return_chart_renders_invested_and_value() -> None:
    series = [(dt.date(2026, m, 1), 1000.0 * m, 50.0 + m) for m in range(1, 5)]
    svg = chart_svg(return_spec(series, currency="EUR", value_name="Revenue", value_unit="kEUR"))
    assert "Invested (EUR)" in svg
    assert "Revenue (kEUR)" in svg


def test_a_sparkline_spans_its_box_with_higher_values_higher_up() -> None:
    points = sparkline_points([1.0, None, 3.0, 2.0], width=100, height=20)
    coords = [tuple(map(float, p.split(","))) for p in points.split()]
    assert [x for x, _ in coords] == [2.0, 66.0, 98.0]  # the None bucket leaves a gap in x, not a point
    assert coords[1][1] == 2.0  # the highest value at the top margin
    assert coords[0][1] == 18.0  # the lowest at the bottom margin


def test_a_sparkline_needs_two_values_and_draws_a_flat_series_in_the_middle() -> None:
    assert sparkline_points([None, 5.0]) == ""
    assert sparkline_points([]) == ""
    flat = sparkline_points([4.0, 4.0], width=10, height=10)
    assert flat == "2.0,5.0 8.0,5.0"
