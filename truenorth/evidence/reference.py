"""A plain pandas implementation of the evidence aggregation, for tests and the benchmark's baseline
(pandas is a development dependency). Same semantics as the compiled SQL; ``where`` predicates are not
supported here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from truenorth.evidence.metrics import Metric, Selection


def summarise(
    assignments: Any, events: Any, experiment: str, metrics: Sequence[Metric]
) -> dict[str, dict[str, float]]:
    """Per variation, the same ``{metric}__{stat}`` columns (and ``units``, ``excluded`` = 0) as the
    compiled query; units assigned to more than one variation are left out, and counted under the key
    ``None`` (``units``, ``excluded`` = 1) when there are any."""
    import pandas as pd

    mine = assignments[assignments["experiment"] == experiment]
    grouped_units = mine.groupby("unit_id", observed=True)
    a = grouped_units.agg(
        variation=("variation", "min"),
        variations=("variation", "nunique"),
        first_exposure_at=("first_exposure_at", "min"),
    ).reset_index()
    multi = a["variations"] > 1
    excluded_units = int(multi.sum())
    a = a[~multi].drop(columns="variations")
    names = sorted({n for m in metrics for s in _selections(m) for n in s.events})
    e = events[events["name"].astype(str).isin(names)][["unit_id", "at", "name", "value"]]
    e = e.merge(a, on="unit_id", how="inner")
    e_name = e["name"].astype(str)
    units = pd.DataFrame({"unit_id": a["unit_id"], "variation": a["variation"].astype(str)})
    day = pd.Timedelta(days=1)

    def per_unit(aggregation: str, select: Selection, pre_days: int | None = None) -> Any:
        if select.where is not None:
            raise NotImplementedError("the pandas reference does not evaluate `where` predicates")
        mask = e_name.isin(select.events)
        if pre_days is None:
            mask &= e["at"] >= e["first_exposure_at"]
            if select.window_days is not None:
                mask &= e["at"] < e["first_exposure_at"] + select.window_days * day
        else:
            mask &= (e["at"] >= e["first_exposure_at"] - pre_days * day) & (e["at"] < e["first_exposure_at"])
        grouped = e[mask].groupby("unit_id")
        if aggregation == "count":
            per = grouped.size()
        elif aggregation in ("sum", "ratio"):
            per = grouped["value"].sum()
        elif aggregation == "proportion":
            per = (grouped.size() > 0).astype(float)
        else:
            per = grouped["value"].mean()
        column = units["unit_id"].map(per).astype(float)
        return column if aggregation == "mean" else column.fillna(0.0)

    frame = units.copy()
    for m in metrics:
        frame[f"{m.name}__y"] = per_unit(m.aggregation, m.select)
        if m.denominator is not None:
            frame[f"{m.name}__d"] = per_unit(m.denominator.aggregation, m.denominator.select)
        if m.covariate_days is not None:
            frame[f"{m.name}__x"] = per_unit(m.aggregation, m.select, m.covariate_days)
    out: dict[str, dict[str, float]] = {}
    for variation, g in frame.groupby("variation"):
        row: dict[str, float] = {"units": float(len(g))}
        for m in metrics:
            y = g[f"{m.name}__y"]
            row[f"{m.name}__n"] = float(y.count())
            row[f"{m.name}__sum"] = float(y.sum())
            row[f"{m.name}__sum_squares"] = float((y * y).sum())
            if m.denominator is not None:
                d = g[f"{m.name}__d"]
                row[f"{m.name}__d_sum"] = float(d.sum())
                row[f"{m.name}__d_sum_squares"] = float((d * d).sum())
                row[f"{m.name}__m_d_sum_of_products"] = float((y * d).sum())
            if m.covariate_days is not None:
                x = g[f"{m.name}__x"]
                row[f"{m.name}__pre_sum"] = float(x.sum())
                row[f"{m.name}__pre_sum_squares"] = float((x * x).sum())
                row[f"{m.name}__post_pre_sum_of_products"] = float((y * x).sum())
        row["excluded"] = 0.0
        out[str(variation)] = row
    if excluded_units:
        out["None"] = {"units": float(excluded_units), "excluded": 1.0}
    return out


def _selections(m: Metric) -> list[Selection]:
    return [m.select] + ([m.denominator.select] if m.denominator is not None else [])
