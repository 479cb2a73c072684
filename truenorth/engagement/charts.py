"""The stakeholder map: one Vega-Lite definition for the browser and for static SVG.

`map_spec` builds the spec; the browser draws it with the vendored vega-embed (the stakeholders page,
through static/truenorth/value.js), and `map_svg` renders the very same spec to SVG offline with
vl-convert (PDF, e-mail), like measures/charts.py.

The map: interest across, influence up, both 1-5; the four quadrants (engagement/quadrants.py: a score
of 3 or more is high) shaded and named; one point per stakeholder, nudged apart when several share a
cell; a stakeholder with an engagement gap (desired above current) is drawn in the gap colour with a
ring, and every point's tooltip and accessible description say "current → desired".

Framework-free: no Django imports, so it is usable from jobs, the CLI and tests alike.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from truenorth.engagement import quadrants as grid

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
GAP_COLOUR = "#c2410c"
ON_TARGET_COLOUR = "#1d4f91"
GAP_LABEL = "Gap to close"
ON_TARGET_LABEL = "Where we need them"
QUADRANT_COLOURS = {
    grid.MANAGE_CLOSELY: "#fde68a",
    grid.KEEP_SATISFIED: "#bfdbfe",
    grid.KEEP_INFORMED: "#bbf7d0",
    grid.MONITOR: "#e5e7eb",
}
JITTER = 0.22  # how far (in score units) points sharing a cell are spread around it
LOW, HIGH = 0.5, 5.5  # the axes' ends
SPLIT = grid.HIGH_FROM - 0.5  # where low turns high on both axes


class MapPointLike(Protocol):
    id: int
    name: str
    department: str
    influence: int
    interest: int
    quadrant: str
    current: str
    desired: str
    gap: int


def _offsets(n: int) -> list[tuple[float, float]]:
    """n points of one cell spread on a small circle (one point stays in the middle)."""
    if n == 1:
        return [(0.0, 0.0)]
    return [
        (
            JITTER * math.cos(2 * math.pi * k / n + math.pi / 4),
            JITTER * math.sin(2 * math.pi * k / n + math.pi / 4),
        )
        for k in range(n)
    ]


def map_rows(points: Iterable[MapPointLike]) -> list[dict[str, Any]]:
    """The points as the chart's data rows (x/y jittered apart where several share a cell)."""
    cells: dict[tuple[int, int], list[MapPointLike]] = defaultdict(list)
    for p in points:
        cells[(p.interest, p.influence)].append(p)
    rows: list[dict[str, Any]] = []
    for (interest, influence), people in sorted(cells.items()):
        people.sort(key=lambda p: (p.name.lower(), p.id))
        for p, (dx, dy) in zip(people, _offsets(len(people)), strict=True):
            movement = f"{p.current} → {p.desired}"
            rows.append(
                {
                    "id": p.id,
                    "name": p.name,
                    "department": p.department,
                    "influence": influence,
                    "interest": interest,
                    "x": round(interest + dx, 3),
                    "y": round(influence + dy, 3),
                    "quadrant": grid.QUADRANT_LABELS[p.quadrant],
                    "movement": movement,
                    "gap": p.gap,
                    "status": GAP_LABEL if p.gap > 0 else ON_TARGET_LABEL,
                    "description": f"{p.name} ({p.department}), {grid.QUADRANT_LABELS[p.quadrant]}: {movement}"
                    + (f", gap of {p.gap} step{'s' if p.gap != 1 else ''}" if p.gap > 0 else ""),
                }
            )
    return rows


def _quadrant_areas() -> list[dict[str, Any]]:
    low, high = (LOW, SPLIT), (SPLIT, HIGH)
    areas = {  # name: (interest range, influence range)
        grid.MANAGE_CLOSELY: (high, high),
        grid.KEEP_SATISFIED: (low, high),
        grid.KEEP_INFORMED: (high, low),
        grid.MONITOR: (low, low),
    }
    return [
        {
            "quadrant": grid.QUADRANT_LABELS[name],
            "x": xs[0],
            "x2": xs[1],
            "y": ys[0],
            "y2": ys[1],
            "colour": QUADRANT_COLOURS[name],
            # the name sits in the quadrant's top left corner
            "label_x": xs[0] + 0.06,
            "label_y": ys[1] - 0.06,
        }
        for name, (xs, ys) in areas.items()
    ]


def map_spec(
    points: Iterable[MapPointLike], *, title: str = "", width: int | str = "container", height: int = 420
) -> dict[str, Any]:
    """A Vega-Lite spec of the stakeholder map (everything embedded in the spec, no data URLs)."""
    rows = map_rows(points)
    scale = {"domain": [LOW, HIGH], "nice": False, "zero": False}
    axis_values = list(grid.SCALE)
    x = {"type": "quantitative", "scale": scale, "axis": {"values": axis_values, "grid": False}}
    y = {"type": "quantitative", "scale": scale, "axis": {"values": axis_values, "grid": False}}
    areas = {"name": "quadrants", "values": _quadrant_areas()}
    tooltip = [
        {"field": "name", "title": "Stakeholder"},
        {"field": "department", "title": "Department"},
        {"field": "quadrant", "title": "Quadrant"},
        {"field": "influence", "title": "Influence"},
        {"field": "interest", "title": "Interest"},
        {"field": "movement", "title": "Current → desired"},
        {"field": "gap", "title": "Gap (steps)"},
    ]
    layers: list[dict[str, Any]] = [
        {
            "data": areas,
            "mark": {"type": "rect", "opacity": 0.45, "aria": False},
            "encoding": {
                "x": {"field": "x", **x, "title": "Interest"},
                "x2": {"field": "x2"},
                "y": {"field": "y", **y, "title": "Influence"},
                "y2": {"field": "y2"},
                "color": {"field": "colour", "type": "nominal", "scale": None, "legend": None},
            },
        },
        {
            "data": areas,
            "mark": {
                "type": "text",
                "align": "left",
                "baseline": "top",
                "fontWeight": "bold",
                "fontSize": 12,
                "color": "#374151",
            },
            "encoding": {
                "x": {"field": "label_x", **x},
                "y": {"field": "label_y", **y},
                "text": {"field": "quadrant"},
            },
        },
        {
            "data": {"name": "stakeholders", "values": rows},
            "mark": {"type": "point", "filled": True, "size": 160, "opacity": 0.95},
            "encoding": {
                "x": {"field": "x", **x},
                "y": {"field": "y", **y},
                "color": {
                    "field": "status",
                    "type": "nominal",
                    "title": "Engagement",
                    "scale": {
                        "domain": [GAP_LABEL, ON_TARGET_LABEL],
                        "range": [GAP_COLOUR, ON_TARGET_COLOUR],
                    },
                },
                "stroke": {
                    "condition": {"test": "datum.gap > 0", "value": GAP_COLOUR},
                    "value": "#ffffff",
                },
                "strokeWidth": {"condition": {"test": "datum.gap > 0", "value": 6}, "value": 1},
                "strokeOpacity": {"condition": {"test": "datum.gap > 0", "value": 0.35}, "value": 1},
                "tooltip": tooltip,
                "description": {"field": "description"},
            },
        },
        {
            "data": {"name": "stakeholders", "values": rows},
            "mark": {"type": "text", "align": "left", "dx": 9, "dy": -8, "fontSize": 10, "aria": False},
            "encoding": {"x": {"field": "x", **x}, "y": {"field": "y", **y}, "text": {"field": "name"}},
        },
    ]
    gaps = sum(1 for r in rows if r["gap"] > 0)
    spec: dict[str, Any] = {
        "$schema": VEGA_LITE_SCHEMA,
        "description": f"Stakeholder map: {len(rows)} stakeholders by interest and influence, {gaps} with an "
        "engagement gap",
        "width": width,
        "height": height,
        "layer": layers,
        "resolve": {"scale": {"color": "independent"}},
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 11, "titleFontSize": 12}},
    }
    if title:
        spec["title"] = title
    return spec


def map_svg(spec: dict[str, Any], *, width: int = 640) -> str:
    """The map rendered to standalone SVG offline (the same renderer as the measure charts)."""
    from truenorth.measures.charts import chart_svg

    return chart_svg(spec, width=width)
