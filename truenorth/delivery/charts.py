"""Delivery charts: Vega-Lite definitions for the browser and, through measures.charts.chart_svg, static SVG.

- `cycle_time_spec`: completed items (done date, cycle days) with the 50/85/95th percentile rules.
- `throughput_spec`: items done per week (run chart) with the median line.
- `cfd_spec`: cumulative flow diagram (stacked areas: done, in progress, not started).
- `age_spec`: work item age by state, with the 85th-percentile cycle time as a reference line.
- `dora_trend_spec`: deployments per week (bars) and change failure rate per week (line).
- `forecast_spec`: Monte Carlo outcome histogram with the 50/85/95 markers.

Framework-free: no Django imports (like measures/charts.py), usable from jobs, the CLI and tests.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from truenorth.measures.charts import LINE_COLOUR, VEGA_LITE_SCHEMA

PERCENTILE_COLOURS = {50: "#15803d", 85: "#b45309", 95: "#b91c1c"}
STATE_COLOURS = {"done": "#1d4f91", "in_progress": "#60a5fa", "not_started": "#d1d5db"}
CONFIG = {"view": {"stroke": None}, "axis": {"labelFontSize": 11, "titleFontSize": 12}}


def _iso(value: dt.date | dt.datetime) -> str:
    return value.isoformat()


def _spec(
    title: str, description: str, layers: list[dict[str, Any]], width: int | str, height: int
) -> dict[str, Any]:
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "title": title,
        "description": description,
        "width": width,
        "height": height,
        "layer": layers,
        "config": CONFIG,
    }


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _percentile_layers(
    percentiles: Mapping[int, float | None], *, axis: str, unit: str, prefix: str = "P"
) -> list[dict[str, Any]]:
    """Horizontal (axis="y") or vertical (axis="x") rules at each known percentile, labelled."""
    rows = [
        {"percentile": f"{prefix}{p}", "value": v, "label": f"{p}%: {v:g}{(' ' + unit) if unit else ''}"}
        for p, v in sorted(percentiles.items())
        if v is not None and math.isfinite(v)
    ]
    if not rows:
        return []
    known = [p for p, v in sorted(percentiles.items()) if v is not None and math.isfinite(v)]
    colours = {
        "domain": [f"{prefix}{p}" for p in known],
        "range": [PERCENTILE_COLOURS.get(p, "#6b7280") for p in known],
    }
    data = {"name": "percentiles", "values": rows}
    position = {"field": "value", "type": "quantitative"}
    return [
        {
            "data": data,
            "mark": {"type": "rule", "strokeDash": [6, 3], "strokeWidth": 1.5},
            "encoding": {
                axis: position,
                "color": {"field": "percentile", "type": "nominal", "scale": colours, "title": "Percentile"},
                "tooltip": {"field": "label"},
            },
        },
        {
            "data": data,
            "mark": (
                {"type": "text", "align": "left", "baseline": "bottom", "dx": 4, "dy": -2, "x": 0}
                if axis == "y"
                else {"type": "text", "angle": 270, "align": "right", "baseline": "bottom", "dx": -4, "y": 0}
            ),
            "encoding": {
                axis: position,
                "text": {"field": "label"},
                "color": {"field": "percentile", "type": "nominal", "scale": colours, "legend": None},
            },
        },
    ]


def cycle_time_spec(
    completed: Iterable[tuple[str, dt.date | dt.datetime, float]],
    percentiles: Mapping[int, float | None],
    *,
    width: int | str = "container",
    height: int = 260,
) -> dict[str, Any]:
    """Scatterplot of completed items: x = when done, y = cycle time in days; percentile rules."""
    points = [
        {"id": str(item_id), "done_at": _iso(done_at), "days": days}
        for item_id, done_at, days in completed
        if _finite(days)
    ]
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "items", "values": points},
            "mark": {"type": "point", "filled": True, "size": 36, "color": LINE_COLOUR, "opacity": 0.7},
            "encoding": {
                "x": {"field": "done_at", "type": "temporal", "title": "Done"},
                "y": {"field": "days", "type": "quantitative", "title": "Cycle time (days)"},
                "tooltip": [
                    {"field": "id", "title": "Item"},
                    {"field": "done_at", "type": "temporal", "title": "Done", "format": "%Y-%m-%d"},
                    {"field": "days", "type": "quantitative", "title": "Days", "format": ".1f"},
                ],
            },
        },
        *_percentile_layers(percentiles, axis="y", unit="days"),
    ]
    return _spec(
        "Cycle time", "Cycle time of completed items with the 50/85/95th percentiles", layers, width, height
    )


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def throughput_spec(
    weekly: Iterable[tuple[dt.date, int]], *, width: int | str = "container", height: int = 220
) -> dict[str, Any]:
    """Run chart of items done per week (week starting Monday), with the median as a rule."""
    ordered = sorted(weekly)
    rows = [{"week": _iso(week), "items": n} for week, n in ordered]
    median = _median([float(n) for _, n in ordered])
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "weeks", "values": rows},
            "mark": {"type": "line", "point": True, "color": LINE_COLOUR},
            "encoding": {
                "x": {"field": "week", "type": "temporal", "title": "Week"},
                "y": {"field": "items", "type": "quantitative", "title": "Items done"},
                "tooltip": [
                    {"field": "week", "type": "temporal", "title": "Week of", "format": "%Y-%m-%d"},
                    {"field": "items", "type": "quantitative", "title": "Items"},
                ],
            },
        }
    ]
    if median is not None:
        data = {"name": "median", "values": [{"value": median, "label": f"Median {median:g}"}]}
        layers.append(
            {
                "data": data,
                "mark": {"type": "rule", "color": "#6b7280", "strokeDash": [4, 3]},
                "encoding": {"y": {"field": "value", "type": "quantitative"}, "tooltip": {"field": "label"}},
            }
        )
        layers.append(
            {
                "data": data,
                "mark": {
                    "type": "text",
                    "align": "left",
                    "baseline": "bottom",
                    "dx": 4,
                    "x": 0,
                    "color": "#6b7280",
                },
                "encoding": {"y": {"field": "value", "type": "quantitative"}, "text": {"field": "label"}},
            }
        )
    return _spec("Throughput per week", "Items done per week with the median", layers, width, height)


def cfd_spec(
    days: Iterable[tuple[dt.date, Mapping[str, int]]], *, width: int | str = "container", height: int = 260
) -> dict[str, Any]:
    """Cumulative flow diagram: per day, items done / in progress / not started, stacked."""
    order = ("done", "in_progress", "not_started")
    labels = {"done": "Done", "in_progress": "In progress", "not_started": "Not started"}
    rows = [
        {"date": _iso(day), "state": labels[state], "order": i, "items": int(counts.get(state, 0))}
        for day, counts in days
        for i, state in enumerate(order)
    ]
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "flow", "values": rows},
            "mark": {"type": "area", "line": True},
            "encoding": {
                "x": {"field": "date", "type": "temporal", "title": "Date"},
                "y": {"field": "items", "type": "quantitative", "stack": "zero", "title": "Items"},
                "color": {
                    "field": "state",
                    "type": "nominal",
                    "title": "State",
                    "scale": {
                        "domain": [labels[s] for s in order],
                        "range": [STATE_COLOURS[s] for s in order],
                    },
                },
                "order": {"field": "order", "type": "quantitative"},
                "tooltip": [
                    {"field": "date", "type": "temporal", "format": "%Y-%m-%d", "title": "Date"},
                    {"field": "state", "title": "State"},
                    {"field": "items", "type": "quantitative", "title": "Items"},
                ],
            },
        }
    ]
    return _spec(
        "Cumulative flow", "Items not started, in progress and done, day by day", layers, width, height
    )


def age_spec(
    ages: Iterable[tuple[str, str, float]],
    cycle_time_85: float | None,
    *,
    width: int | str = "container",
    height: int = 240,
) -> dict[str, Any]:
    """Work item age: one point per item in progress, by state, with the 85th-percentile cycle time."""
    rows = [{"id": str(item_id), "state": state, "age": age} for item_id, state, age in ages if _finite(age)]
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "ages", "values": rows},
            "mark": {"type": "point", "filled": True, "size": 48, "color": LINE_COLOUR},
            "encoding": {
                "x": {"field": "state", "type": "nominal", "title": "State", "axis": {"labelAngle": 0}},
                "y": {"field": "age", "type": "quantitative", "title": "Age (days)"},
                "xOffset": {"field": "id", "type": "nominal"},
                "tooltip": [
                    {"field": "id", "title": "Item"},
                    {"field": "state", "title": "State"},
                    {"field": "age", "type": "quantitative", "title": "Age (days)", "format": ".1f"},
                ],
            },
        }
    ]
    if _finite(cycle_time_85):
        layers.extend(_percentile_layers({85: cycle_time_85}, axis="y", unit="days", prefix="Cycle time P"))
    return _spec(
        "Work item age",
        "Age of items in progress by state, against the 85th-percentile cycle time",
        layers,
        width,
        height,
    )


def dora_trend_spec(
    weeks: Iterable[tuple[dt.date, int, float | None]], *, width: int | str = "container", height: int = 220
) -> dict[str, Any]:
    """DORA trend: deployments per week (bars, left axis) and change failure rate (line, right axis).
    `weeks` rows: (monday, deployments, failure rate 0-1 or None when nothing was deployed)."""
    rows = [
        {"week": _iso(week), "deployments": n, "failure_rate": rate if _finite(rate) else None}
        for week, n, rate in sorted(weeks, key=lambda row: row[0])
    ]
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "bar", "color": "#93c5fd"},
            "encoding": {
                "x": {"field": "week", "type": "temporal", "title": "Week"},
                "y": {"field": "deployments", "type": "quantitative", "title": "Deployments"},
                "tooltip": [
                    {"field": "week", "type": "temporal", "title": "Week of", "format": "%Y-%m-%d"},
                    {"field": "deployments", "type": "quantitative", "title": "Deployments"},
                ],
            },
        },
        {
            "transform": [{"filter": "datum.failure_rate != null"}],
            "mark": {"type": "line", "point": True, "color": "#b91c1c"},
            "encoding": {
                "x": {"field": "week", "type": "temporal"},
                "y": {
                    "field": "failure_rate",
                    "type": "quantitative",
                    "title": "Change failure rate",
                    "axis": {"format": "%"},
                    "scale": {"domain": [0, 1]},
                },
                "tooltip": [
                    {"field": "week", "type": "temporal", "title": "Week of", "format": "%Y-%m-%d"},
                    {
                        "field": "failure_rate",
                        "type": "quantitative",
                        "title": "Failure rate",
                        "format": ".0%",
                    },
                ],
            },
        },
    ]
    spec = _spec("DORA trend", "Deployments per week and change failure rate", layers, width, height)
    spec["data"] = {"name": "weeks", "values": rows}
    spec["resolve"] = {"scale": {"y": "independent"}}
    return spec


def forecast_spec(
    histogram: Iterable[tuple[float, int]],
    percentiles: Mapping[int, float | None],
    *,
    outcome: str = "Items done",
    width: int | str = "container",
    height: int = 220,
) -> dict[str, Any]:
    """Monte Carlo outcome distribution (trials per outcome) with the 50/85/95 markers as vertical rules.
    `outcome` names the x axis: "Items done" (how many by a date) or "Days" (when N items are done)."""
    rows = [{"value": value, "trials": count} for value, count in sorted(histogram)]
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "outcomes", "values": rows},
            "mark": {"type": "bar", "color": "#93c5fd"},
            "encoding": {
                "x": {"field": "value", "type": "quantitative", "title": outcome, "bin": False},
                "y": {"field": "trials", "type": "quantitative", "title": "Trials"},
                "tooltip": [
                    {"field": "value", "type": "quantitative", "title": outcome},
                    {"field": "trials", "type": "quantitative", "title": "Trials"},
                ],
            },
        },
        *_percentile_layers(percentiles, axis="x", unit=""),
    ]
    return _spec(
        "Forecast",
        f"Distribution of simulated outcomes ({outcome.lower()}) with 50/85/95% markers",
        layers,
        width,
        height,
    )
