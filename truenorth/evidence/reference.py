"""A plain pandas implementation of the evidence aggregation, for tests and the benchmark's baseline
(pandas is a development dependency). Same semantics as the compiled SQL; ``where`` predicates are not
supported here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from truenorth.evidence.compile import quantile_levels
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

    def per_unit(
        aggregation: str, select: Selection, pre_days: int | None = None, m: Metric | None = None
    ) -> Any:
        mask = event_mask(e, e_name, select, pre_days)
        grouped = e[mask].groupby("unit_id")
        if aggregation == "count":
            per = grouped.size()
        elif aggregation in ("sum", "ratio"):
            per = grouped["value"].sum()
        elif aggregation == "proportion":
            per = (grouped.size() > 0).astype(float)
        elif aggregation == "quantile":
            per = grouped["value"].count()
        else:
            per = grouped["value"].mean()
        column = units["unit_id"].map(per).astype(float)
        column = column if aggregation == "mean" else column.fillna(0.0)
        if m is not None:
            column = column.where(exposed_in(a, m).to_numpy())
        return column

    frame = units.copy()
    for m in metrics:
        frame[f"{m.name}__y"] = per_unit(m.aggregation, m.select, m=m)
        if m.denominator is not None:
            frame[f"{m.name}__d"] = per_unit(m.denominator.aggregation, m.denominator.select, m=m)
        if m.covariate_days is not None:
            frame[f"{m.name}__x"] = per_unit(m.aggregation, m.select, m.covariate_days, m=m)
    out: dict[str, dict[str, float]] = {}
    for variation, g in frame.groupby("variation"):
        row: dict[str, float] = {"units": float(len(g))}
        for m in metrics:
            y = g[f"{m.name}__y"]
            if m.aggregation == "quantile":
                row[f"{m.name}__n"] = float(y.sum())
                continue
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


def exposed_in(a: Any, m: Metric) -> Any:
    """Whether each unit of ``a`` was first exposed in ``m``'s exposure window."""
    import pandas as pd

    keep = pd.Series(True, index=a.index)
    if m.exposure_start is not None:
        keep &= a["first_exposure_at"] >= pd.Timestamp(m.exposure_start)
    if m.exposure_end is not None:
        keep &= a["first_exposure_at"] < pd.Timestamp(m.exposure_end)
    return keep


def event_mask(e: Any, e_name: Any, select: Selection, pre_days: int | None = None) -> Any:
    """The events ``select`` counts (conversion window: exposure + delay to exposure + window)."""
    import pandas as pd

    if select.where is not None:
        raise NotImplementedError("the pandas reference does not evaluate `where` predicates")
    day, hour = pd.Timedelta(days=1), pd.Timedelta(hours=1)
    mask = e_name.isin(select.events)
    if pre_days is None:
        mask &= e["at"] >= e["first_exposure_at"] + (select.delay_hours or 0) * hour
        if select.window_days is not None:
            mask &= e["at"] < e["first_exposure_at"] + select.window_days * day
    else:
        mask &= (e["at"] >= e["first_exposure_at"] - pre_days * day) & (e["at"] < e["first_exposure_at"])
    return mask


def quantiles(
    assignments: Any, events: Any, experiment: str, metrics: Sequence[Metric]
) -> dict[str, dict[str, float]]:
    """Per variation, each quantile metric's ``{metric}__n`` (values), ``__quantile``, ``__lower`` and
    ``__upper`` (at `quantile_levels` for that n), by numpy's linear interpolation (the exact engines'
    definition), from the same events as the compiled queries."""
    import numpy as np

    mine = assignments[assignments["experiment"] == experiment]
    a = mine.groupby("unit_id", observed=True).agg(
        variation=("variation", "min"),
        variations=("variation", "nunique"),
        first_exposure_at=("first_exposure_at", "min"),
    )
    a = a[a["variations"] == 1].reset_index()
    a["variation"] = a["variation"].astype(str)
    out: dict[str, dict[str, float]] = {}
    for m in metrics:
        if m.aggregation != "quantile" or m.quantile is None:
            continue
        units = a[exposed_in(a, m)]
        e = events[events["name"].astype(str).isin(m.select.events)][["unit_id", "at", "name", "value"]]
        e = e.merge(units, on="unit_id", how="inner")
        e = e[event_mask(e, e["name"].astype(str), m.select) & e["value"].notna()]
        for variation in sorted(a["variation"].unique()):
            values = e.loc[e["variation"] == variation, "value"].to_numpy(dtype=float)
            lower, upper = quantile_levels(m.quantile, float(values.size))
            row = out.setdefault(str(variation), {})
            row[f"{m.name}__n"] = float(values.size)
            if values.size:
                q, lo, hi = np.quantile(values, [m.quantile, lower, upper], method="linear")
            else:
                q = lo = hi = math.nan
            row[f"{m.name}__quantile"] = float(q)
            row[f"{m.name}__lower"] = float(lo)
            row[f"{m.name}__upper"] = float(hi)
    return out


def _selections(m: Metric) -> list[Selection]:
    return [m.select] + ([m.denominator.select] if m.denominator is not None else [])
