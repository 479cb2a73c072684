"""Monte Carlo forecasts from daily throughput, pure (no Django; numpy, vectorised, seeded; mypy --strict).

Every trial replays a future made of days drawn at random, with replacement, from the history (one
entry per calendar day: items completed that day, zeros included).

- ``how_many(history, days)``: items completed in ``days`` days. The figure "at 85% confidence" is the
  count reached in at least 85% of trials: with the totals sorted ascending, ``totals[floor(0.15 * n)]``
  (the largest v such that at least 85% of trials reach v). 50 and 95 likewise. The draws are made for
  blocks of trials at once (a matrix of random day indexes, summed by row).
- ``when(history, items)``: days until ``items`` are done. "At 85%": the smallest d such that at least
  85% of trials finished within d days, ``days[ceil(0.85 * n) - 1]`` of the sorted days. Days with no
  throughput only add time, so each trial draws non-zero days until the items are reached (cumulative
  sums over blocks of draws for all trials at once) and then the zero days in between, a negative
  binomial count. A trial longer than ``max_days`` counts as ``max_days`` (``Forecast.capped`` says how
  many).
- ``backtest(history)``: at each cut (day ``min_history``, then every ``step_days``), forecast
  ``how_many`` over ``horizon_days`` from the history before the cut and compare with what happened.
  ``hit_rate_85`` is the share of cuts where the actual count reached the 85% figure (a calibrated
  forecast scores about 0.85); ``mean_abs_pct_error_50`` the mean of |p50 - actual| / actual over cuts
  with a non-zero actual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

CONFIDENCES: Final = (50, 85, 95)
IntArray = npt.NDArray[np.int64]
BLOCK_DRAWS: Final = 1_000_000  # days drawn per block of trials (bounds the memory: a few MB)


@dataclass
class Forecast:
    percentiles: dict[int, float]
    histogram: list[tuple[float, int]]
    trials: int
    capped: int = 0


@dataclass
class BacktestPoint:
    cut: int
    p50: float
    p85: float
    p95: float
    actual: int


@dataclass
class Backtest:
    points: list[BacktestPoint] = field(default_factory=list)
    hit_rate_85: float | None = None
    mean_abs_pct_error_50: float | None = None
    horizon_days: int = 14


def history_array(daily_throughput: Sequence[int] | npt.NDArray[np.generic]) -> IntArray:
    """The history as int64, or ValueError naming what is wrong."""
    arr = np.asarray(daily_throughput)
    if arr.ndim != 1:
        raise ValueError("daily throughput must be a flat list of daily counts")
    if arr.size == 0:
        raise ValueError("daily throughput history is empty: at least one day is needed")
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("daily throughput must be whole numbers of items")
    ints = arr.astype(np.int64)
    negative = np.flatnonzero(ints < 0)
    if negative.size:
        day = int(negative[0])
        raise ValueError(f"daily throughput cannot be negative (day {day}: {int(ints[day])})")
    return ints


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (got {value})")


def _histogram(values: IntArray) -> list[tuple[float, int]]:
    found, counts = np.unique(values, return_counts=True)
    return [(float(v), int(c)) for v, c in zip(found, counts, strict=True)]


def _reached(totals: IntArray) -> dict[int, float]:
    """For each confidence c, the largest value reached in at least c% of trials."""
    n = totals.size
    idx = [(100 - c) * n // 100 for c in CONFIDENCES]
    part = np.partition(totals, idx)
    return {c: float(part[i]) for c, i in zip(CONFIDENCES, idx, strict=True)}


def _within(days: IntArray) -> dict[int, float]:
    """For each confidence c, the smallest number of days within which at least c% of trials finished."""
    n = days.size
    idx = [max((c * n + 99) // 100 - 1, 0) for c in CONFIDENCES]
    part = np.partition(days, idx)
    return {c: float(part[i]) for c, i in zip(CONFIDENCES, idx, strict=True)}


def how_many_totals(hist: IntArray, days: int, trials: int, rng: np.random.Generator) -> IntArray:
    """Items done over ``days`` days drawn with replacement from ``hist``, for each trial (in blocks of
    trials, small integer types: a 2-year history, 90 days and 100,000 trials take about 35 ms)."""
    top = int(hist.max())
    if top == int(hist.min()):
        return np.full(trials, top * days, dtype=np.int64)
    small = hist.astype(np.uint8 if top <= np.iinfo(np.uint8).max else np.int64)
    index_type = np.int16 if hist.size <= np.iinfo(np.int16).max else np.int64
    totals = np.empty(trials, dtype=np.int64)
    rows = max(1, BLOCK_DRAWS // days)
    for first in range(0, trials, rows):
        n = min(rows, trials - first)
        picks = rng.integers(0, hist.size, size=(n, days), dtype=index_type)
        totals[first : first + n] = small[picks].sum(axis=1, dtype=np.int64)
    return totals


def how_many(
    daily_throughput: Sequence[int] | npt.NDArray[np.generic],
    days: int,
    *,
    trials: int = 10_000,
    seed: int | None = 0,
) -> Forecast:
    """How many items will be done in ``days`` days (percentiles: counts reached in at least 50/85/95% of
    trials)."""
    hist = history_array(daily_throughput)
    _positive("days", days)
    _positive("trials", trials)
    totals = how_many_totals(hist, days, trials, np.random.default_rng(seed))
    return Forecast(percentiles=_reached(totals), histogram=_histogram(totals), trials=trials)


def when(
    daily_throughput: Sequence[int] | npt.NDArray[np.generic],
    items: int,
    *,
    trials: int = 10_000,
    seed: int | None = 0,
    max_days: int = 3650,
) -> Forecast:
    """Days until ``items`` items are done (percentiles: days within which 50/85/95% of trials finished)."""
    hist = history_array(daily_throughput)
    _positive("items", items)
    _positive("trials", trials)
    _positive("max_days", max_days)
    nonzero = hist[hist > 0]
    if nonzero.size == 0:
        raise ValueError("daily throughput history has no completed items: cannot forecast when")
    rng = np.random.default_rng(seed)
    busy = np.zeros(trials, dtype=np.int64)  # non-zero days needed per trial
    total = np.zeros(trials, dtype=np.int64)
    todo = np.arange(trials)
    block = int(min(items, max_days + 1, np.ceil(items / nonzero.mean() * 1.25) + 4))
    block = max(1, min(block, BLOCK_DRAWS * 4 // trials))  # bounded memory for huge targets
    while todo.size:
        draws = nonzero[rng.integers(0, nonzero.size, size=(todo.size, block))]
        run = np.cumsum(draws, axis=1) + total[todo, None]
        hit = run >= items
        finished = hit[:, -1]
        first = np.argmax(hit, axis=1)
        done = todo[finished]
        busy[done] += first[finished] + 1
        left = todo[~finished]
        busy[left] += block
        total[left] = run[~finished, -1]
        todo = left[busy[left] <= max_days]  # more than max_days busy days: capped whatever follows
    p_busy = nonzero.size / hist.size
    idle = rng.negative_binomial(busy, p_busy) if p_busy < 1 else np.zeros(trials, dtype=np.int64)
    days = (busy + idle).astype(np.int64)
    capped = int(np.count_nonzero(days > max_days))
    days = np.minimum(days, max_days)
    return Forecast(percentiles=_within(days), histogram=_histogram(days), trials=trials, capped=capped)


def backtest(
    daily_throughput: Sequence[int] | npt.NDArray[np.generic],
    *,
    horizon_days: int = 14,
    step_days: int = 7,
    min_history: int = 28,
    trials: int = 2000,
    seed: int | None = 0,
) -> Backtest:
    """How well ``how_many`` would have forecast this history (see the module docstring)."""
    hist = history_array(daily_throughput)
    for name, value in (
        ("horizon_days", horizon_days),
        ("step_days", step_days),
        ("min_history", min_history),
    ):
        _positive(name, value)
    _positive("trials", trials)
    result = Backtest(horizon_days=horizon_days)
    rng = np.random.default_rng(seed)
    for cut in range(min_history, hist.size - horizon_days + 1, step_days):
        totals = how_many_totals(hist[:cut], horizon_days, trials, rng)
        got = _reached(totals)
        actual = int(hist[cut : cut + horizon_days].sum())
        result.points.append(BacktestPoint(cut, got[50], got[85], got[95], actual))
    if result.points:
        result.hit_rate_85 = sum(1 for p in result.points if p.actual >= p.p85) / len(result.points)
        errors = [abs(p.p50 - p.actual) / p.actual for p in result.points if p.actual > 0]
        result.mean_abs_pct_error_50 = sum(errors) / len(errors) if errors else None
    return result
