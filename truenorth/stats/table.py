"""The summary table analyze() reads: columns checked and typed, with errors that name the column.

Pure numpy (no Django); :func:`parse_table` is the one entry point, used by :mod:`truenorth.stats.engine`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from truenorth.stats.summary import BoolArray, FloatArray

REQUIRED = ("metric", "variation", "n", "sum", "sum_squares")
RATIO_COLUMNS = ("denominator_sum", "denominator_sum_squares", "main_denominator_sum_product")
CUPED_COLUMNS = ("covariate_sum", "covariate_sum_squares", "main_covariate_sum_product")
QUANTILE_COLUMNS = ("quantile_level", "quantile", "quantile_lower", "quantile_upper")
NUMERIC = (
    "n",
    "sum",
    "sum_squares",
    *RATIO_COLUMNS,
    *CUPED_COLUMNS,
    *QUANTILE_COLUMNS,
    "quantile_nstar",
    "users",
    "weight",
)


class TableError(ValueError):
    """The summary table cannot be analysed; ``column`` names the culprit."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")
        self.column = column
        self.message = message


@dataclass
class Table:
    """The summary table as validated columns (one element per input row)."""

    metric: list[str]
    variation: list[str]
    values: dict[str, FloatArray]
    type: list[str]
    inverse: BoolArray
    role: list[str]

    def col(self, name: str) -> FloatArray:
        got = self.values.get(name)
        return got if got is not None else np.full(len(self.metric), np.nan)


def _columns(table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[Any]], int]:
    if isinstance(table, Mapping):
        lengths = {len(v) for v in table.values()}
        if len(lengths) > 1:
            raise TableError("table", "columns have different lengths")
        n = lengths.pop() if lengths else 0
        return {str(k): list(v) for k, v in table.items()}, n
    rows = list(table)
    keys: set[str] = set().union(*rows)
    out: dict[str, list[Any]] = {}
    for k in keys:
        try:
            out[k] = list(map(operator.itemgetter(k), rows))
        except KeyError:
            out[k] = [r.get(k) for r in rows]
    return out, len(rows)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _number(value: Any, column: str, line: int) -> float:
    if _missing(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise TableError(column, f"row {line}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TableError(column, f"row {line}: expected a number, got {value!r}") from None


def _numbers(values: list[Any], column: str) -> FloatArray:
    """A numeric column in one numpy call; the slow per-value path only to name a bad row."""
    types = set(map(type, values))
    if not types & {bool, np.bool_, str, bytes}:
        try:
            return np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    return np.array([_number(v, column, i) for i, v in enumerate(values, start=1)], dtype=np.float64)


def _truthy(value: Any) -> bool:
    if _missing(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "t")
    return bool(value)


def _names(values: list[Any], column: str, what: str) -> list[str]:
    if set(map(type, values)) == {str} and "" not in set(values):
        return values
    for i, v in enumerate(values, start=1):
        if _missing(v):
            raise TableError(column, f"row {i}: empty {what}")
    return [str(v) for v in values]


def _labels(values: list[Any] | None, n: int, normalise: Any) -> list[str]:
    """A text column mapped through ``normalise`` once per distinct value."""
    if values is None:
        return [""] * n
    mapping: dict[Any, str] = {}
    out = []
    for i, v in enumerate(values, start=1):
        key = v if isinstance(v, str) or v is None else repr(v)
        got = mapping.get(key)
        if got is None:
            got = mapping[key] = normalise(v, i)
        out.append(got)
    return out


def _type_label(value: Any, line: int) -> str:
    kind = "" if _missing(value) else str(value).strip().lower()
    if kind not in ("", "mean", "proportion", "ratio", "quantile"):
        raise TableError("type", f"row {line}: unknown type {kind!r}; use mean, proportion, ratio or quantile")
    return kind


def _role_label(value: Any, line: int) -> str:
    return "" if _missing(value) else str(value).strip().lower()


def parse_table(table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> Table:
    """Validate and normalise the table; :class:`TableError` names the bad column."""
    cols, n = _columns(table)
    if not n:
        raise TableError("table", "no rows")
    for col in REQUIRED:
        if col not in cols:
            raise TableError(col, "required column is missing")
    metric = _names(cols["metric"], "metric", "metric name")
    variation = _names(cols["variation"], "variation", "variation name")
    pairs = list(zip(metric, variation, strict=True))
    if len(set(pairs)) != n:
        seen: set[tuple[str, str]] = set()
        for i, (m, v) in enumerate(pairs, start=1):
            if (m, v) in seen:
                raise TableError("variation", f"row {i}: metric {m!r} has variation {v!r} twice")
            seen.add((m, v))
    values = {c: _numbers(cols[c], c) for c in NUMERIC if c in cols}
    kinds = _labels(cols.get("type"), n, _type_label)
    inverse_col = cols.get("inverse")
    inverse = (
        np.zeros(n, dtype=np.bool_)
        if inverse_col is None
        else np.array([_truthy(v) for v in inverse_col], dtype=np.bool_)
    )
    role = _labels(cols.get("role"), n, _role_label)
    return Table(metric, variation, values, kinds, inverse, role)
