"""The trend of a pulse across its rounds: one Vega-Lite definition (as measures/charts.py), drawn in
the browser by the vendored vega-embed (static/truenorth/value.js) and renderable to SVG offline.

Four lines on one 0 to 100 scale: the alignment index, clarity and commitment (their normalised means,
(score - 1) / 4, as percentages) and the response rate. A hidden round (too few answers) has only its
response rate. Framework-free: no Django imports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
SERIES: tuple[tuple[str, str], ...] = (
    ("Alignment index", "#1d4f91"),
    ("Clarity", "#14532d"),
    ("Commitment", "#9a3412"),
    ("Response rate", "#6b7280"),
)


@dataclass(frozen=True)
class Point:
    number: int
    opened_at: dt.datetime
    index: float | None
    clarity: float | None  # 0..1
    commitment: float | None  # 0..1
    response_rate: float | None  # 0..1


def trend_spec(
    points: Iterable[Point], *, width: int | str = "container", height: int = 240
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda p: p.number):
        values = (
            p.index,
            None if p.clarity is None else 100 * p.clarity,
            None if p.commitment is None else 100 * p.commitment,
            None if p.response_rate is None else 100 * p.response_rate,
        )
        for (series, _), value in zip(SERIES, values, strict=True):
            if value is not None:
                rows.append(
                    {
                        "round": f"Round {p.number}",
                        "number": p.number,
                        "opened": p.opened_at.date().isoformat(),
                        "series": series,
                        "value": round(value, 1),
                    }
                )
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "description": "Alignment index, clarity, commitment and response rate by round (0 to 100)",
        "width": width,
        "height": height,
        "data": {"name": "trend", "values": rows},
        "mark": {"type": "line", "point": {"filled": True, "size": 50}},
        "encoding": {
            "x": {
                "field": "number",
                "type": "ordinal",
                "title": "Round",
                "axis": {"labelAngle": 0},
            },
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": "0 to 100",
                "scale": {"domain": [0, 100]},
            },
            "color": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": [s for s, _ in SERIES], "range": [c for _, c in SERIES]},
                "legend": {"orient": "bottom"},
            },
            "tooltip": [
                {"field": "round", "title": "Round"},
                {"field": "opened", "title": "Opened"},
                {"field": "series", "title": "Series"},
                {"field": "value", "type": "quantitative", "title": "Value"},
            ],
        },
    }
