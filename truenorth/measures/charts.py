"""Charts of a measure's history: one Vega-Lite definition for the browser and for static SVG.

`chart_spec` builds the spec; the browser renders it with the vendored vega-embed (measure page), and
`chart_svg` renders the very same spec to SVG offline with vl-convert (PDF, e-mail). Sparklines on the
value dashboard are plain server-side SVG polylines: 200 of them must cost nothing.

Framework-free: no Django imports, so it is usable from jobs, the CLI and tests alike.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
# The Vega-Lite version vl-convert compiles with (its bundled ones end with this release line).
VL_CONVERT_VERSION = "6.4"

LINE_COLOUR = "#1d4f91"
TARGET_COLOUR = "#14532d"
BASELINE_COLOUR = "#6b7280"
ANNOTATION_COLOUR = "#9a3412"

Point = tuple[dt.datetime, float]
Annotation = tuple[dt.date | dt.datetime, str]


def _iso(value: dt.date | dt.datetime) -> str:
    return value.isoformat()


def chart_spec(
    points: Iterable[Point],
    *,
    title: str = "",
    unit: str = "",
    baseline: float | None = None,
    target: float | None = None,
    annotations: Sequence[Annotation] = (),
    width: int | str = "container",
    height: int = 260,
) -> dict[str, Any]:
    """A Vega-Lite spec of a measure's history: the line of its current observations, its baseline and
    target as horizontal rules, and annotation markers (decisions, releases) as vertical rules.

    `points` are (observed_at, value) of current (not superseded) observations, in any order;
    `annotations` are (date, label) pairs. Everything is embedded in the spec (no data URLs), so it
    renders the same in the browser and offline.
    """
    rows = sorted(((when, value) for when, value in points if math.isfinite(value)), key=lambda row: row[0])
    y_title = f"{title} ({unit})" if title and unit else (title or unit or "value")
    observations = [{"observed_at": _iso(when), "value": value} for when, value in rows]
    layers: list[dict[str, Any]] = [
        {
            "data": {"name": "observations", "values": observations},
            "mark": {"type": "line", "point": {"filled": True, "size": 40}, "color": LINE_COLOUR},
            "encoding": {
                "x": {"field": "observed_at", "type": "temporal", "title": "Observed"},
                "y": {
                    "field": "value",
                    "type": "quantitative",
                    "title": y_title,
                    "scale": {"zero": False},
                },
                "tooltip": [
                    {
                        "field": "observed_at",
                        "type": "temporal",
                        "title": "Observed",
                        "format": "%Y-%m-%d %H:%M",
                    },
                    {"field": "value", "type": "quantitative", "title": "Value"},
                ],
            },
        }
    ]
    references = [
        ("Target", target, TARGET_COLOUR, [6, 3]),
        ("Baseline", baseline, BASELINE_COLOUR, [2, 3]),
    ]
    for kind, level, colour, dash in references:
        if level is None or not math.isfinite(level):
            continue
        label = f"{kind} {level:g}{(' ' + unit) if unit else ''}"
        data = {"values": [{"kind": kind, "value": level, "label": label}]}
        layers.append(
            {
                "data": data,
                "mark": {"type": "rule", "color": colour, "strokeDash": dash, "strokeWidth": 1.5},
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
                    "dy": -2,
                    "x": 0,
                    "color": colour,
                },
                "encoding": {"y": {"field": "value", "type": "quantitative"}, "text": {"field": "label"}},
            }
        )
    marks = [{"at": _iso(when), "label": label} for when, label in annotations]
    if marks:
        layers.append(
            {
                "data": {"name": "annotations", "values": marks},
                "mark": {"type": "rule", "color": ANNOTATION_COLOUR, "strokeDash": [4, 4]},
                "encoding": {
                    "x": {"field": "at", "type": "temporal"},
                    "tooltip": [
                        {"field": "at", "type": "temporal", "title": "Date", "format": "%Y-%m-%d"},
                        {"field": "label", "title": "Event"},
                    ],
                },
            }
        )
        layers.append(
            {
                "data": {"name": "annotations", "values": marks},
                "mark": {
                    "type": "text",
                    "angle": 270,
                    "align": "right",
                    "baseline": "bottom",
                    "dy": -3,
                    "y": 0,
                    "dx": -4,
                    "color": ANNOTATION_COLOUR,
                    "fontSize": 10,
                },
                "encoding": {"x": {"field": "at", "type": "temporal"}, "text": {"field": "label"}},
            }
        )
    spec: dict[str, Any] = {
        "$schema": VEGA_LITE_SCHEMA,
        "description": f"History of {title or 'the measure'}"
        + (f", target {target:g}" if target is not None else ""),
        "width": width,
        "height": height,
        "layer": layers,
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 11, "titleFontSize": 12}},
    }
    if title:
        spec["title"] = title
    return spec


def chart_svg(spec: dict[str, Any], *, width: int = 640) -> str:
    """The spec rendered to standalone SVG, offline (vl-convert embeds Vega and Vega-Lite).

    A spec sized to its container gets a fixed width, as there is no container outside a browser.
    Raises ValueError when the spec is not valid Vega-Lite."""
    import vl_convert  # imported here: only PDF/e-mail rendering needs its (large) engine

    if spec.get("width") == "container":
        spec = {**spec, "width": width}
    return str(vl_convert.vegalite_to_svg(spec, vl_version=VL_CONVERT_VERSION))


def sparkline_points(values: Sequence[float | None], *, width: float = 120, height: float = 28) -> str:
    """The `points` attribute of an SVG polyline drawing `values` (evenly spaced, None skipped) in a
    width x height box with a 2-unit margin; "" when fewer than two values are known."""
    known = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(known) < 2:
        return ""
    low = min(v for _, v in known)
    high = max(v for _, v in known)
    span = high - low
    margin = 2.0
    step = (width - 2 * margin) / max(len(values) - 1, 1)
    out = []
    for i, v in known:
        x = margin + i * step
        # A flat series is drawn across the middle; higher values are higher up (SVG y grows downward).
        y = height / 2 if span == 0 else margin + (high - v) / span * (height - 2 * margin)
        out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


def return_spec(
    series: Iterable[tuple[dt.date, float, float | None]],
    *,
    currency: str = "",
    value_name: str = "",
    value_unit: str = "",
    width: int | str = "container",
    height: int = 220,
) -> dict[str, Any]:
    """Investment against return: money invested per month (bars, left axis) and the value measure
    in force at the end of each month (line, right axis). `series` rows: (month, invested, value)."""
    rows = [
        {"month": _iso(month), "invested": invested, "value": value}
        for month, invested, value in series
        if math.isfinite(invested)
    ]
    invested_title = f"Invested ({currency})" if currency else "Invested"
    value_title = f"{value_name} ({value_unit})" if value_name and value_unit else (value_name or "Value")
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "bar", "color": "#93c5fd"},
            "encoding": {
                "x": {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "title": "Month"},
                "y": {"field": "invested", "type": "quantitative", "title": invested_title},
                "tooltip": [
                    {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "title": "Month"},
                    {"field": "invested", "type": "quantitative", "title": invested_title, "format": ",.0f"},
                ],
            },
        }
    ]
    if value_name:
        layers.append(
            {
                "transform": [{"filter": "datum.value != null"}],
                "mark": {"type": "line", "point": True, "color": LINE_COLOUR},
                "encoding": {
                    "x": {"field": "month", "type": "temporal", "timeUnit": "yearmonth"},
                    "y": {
                        "field": "value",
                        "type": "quantitative",
                        "title": value_title,
                        "scale": {"zero": False},
                    },
                    "tooltip": [
                        {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "title": "Month"},
                        {"field": "value", "type": "quantitative", "title": value_title},
                    ],
                },
            }
        )
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Investment per month against the value measure",
        "width": width,
        "height": height,
        "data": {"values": rows},
        "layer": layers,
        "resolve": {"scale": {"y": "independent"}},
        "config": {"view": {"stroke": None}},
    }
