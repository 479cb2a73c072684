"""Measure maths. Pure: no Django, usable as a library.

Rules:
- progress: where `current` sits between `baseline` and `target`, in [0, 1]; "higher" (or "increase")
  is better or "lower" (or "decrease") is better. Unknown (None) when a value is missing, the target
  equals the baseline, or the target lies on the wrong side of the baseline for the direction.
- change: the latest value minus the value in force one `period` earlier (the last value observed at or
  before that moment); None when the series does not reach back that far.
- trend_slope: least-squares slope of value against time, in value units per day.
- distance_to_target: how far the current value still is from the target (0 once reached or passed).
- is_stale: no observation at all, or the last one is older than the cadence.
- working_days: Monday to Friday, both ends included.
- sparkline: the time range split into equal buckets, the mean value of each (None for an empty bucket).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

HIGHER = frozenset({"higher", "increase"})
LOWER = frozenset({"lower", "decrease"})
SECONDS_PER_DAY = 86400.0

TimeLike = dt.datetime | dt.date | float


def _is_missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _lower_is_better(direction: str) -> bool:
    if direction in LOWER:
        return True
    if direction in HIGHER:
        return False
    raise ValueError(f"Unknown direction {direction!r}: use 'higher' or 'lower'.")


def progress(
    baseline: float | None, target: float | None, current: float | None, direction: str = "higher"
) -> float | None:
    """Share of the way from baseline to target reached by current, clamped to [0, 1]."""
    lower = _lower_is_better(direction)
    if _is_missing(baseline) or _is_missing(target) or _is_missing(current):
        return None
    assert baseline is not None and target is not None and current is not None
    span = target - baseline
    if span == 0 or not math.isfinite(span) or (span < 0) != lower:
        return None
    share = (current - baseline) / span
    if math.isnan(share):
        return None
    return min(1.0, max(0.0, share))


def _days(t: TimeLike) -> float:
    """A time as a number of days (datetimes: since the epoch, naive ones taken as UTC)."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return t.timestamp() / SECONDS_PER_DAY
    if isinstance(t, dt.date):
        return float(t.toordinal() - dt.date(1970, 1, 1).toordinal())
    return float(t)


def change(values_by_time: Sequence[tuple[dt.datetime, float]], period: dt.timedelta) -> float | None:
    """Latest value minus the value in force `period` before the latest observation."""
    if not values_by_time:
        return None
    points = sorted(values_by_time, key=lambda p: p[0])
    latest_at, latest = points[-1]
    cutoff = latest_at - period
    earlier = [v for t, v in points if t <= cutoff]
    if not earlier:
        return None
    return latest - earlier[-1]


def trend_slope(times: Sequence[TimeLike], values: Sequence[float]) -> float | None:
    """Least-squares slope (value per day); None with fewer than two distinct times."""
    if len(times) != len(values):
        raise ValueError("times and values must have the same length.")
    if len(times) < 2:
        return None
    xs = [_days(t) for t in times]
    n = len(xs)
    # Centre the times first: epoch-sized day numbers would lose precision when squared.
    x0 = xs[0]
    xs = [x - x0 for x in xs]
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(values) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx <= 1e-18:
        return None
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True))
    return sxy / sxx


def distance_to_target(
    current: float | None, target: float | None, direction: str = "higher"
) -> float | None:
    """How far current still is from target in the good direction; 0 when reached or passed."""
    lower = _lower_is_better(direction)
    if _is_missing(current) or _is_missing(target):
        return None
    assert current is not None and target is not None
    gap = current - target if lower else target - current
    return max(0.0, gap)


def is_stale(last_observed_at: dt.datetime | None, cadence_days: int, now: dt.datetime) -> bool:
    """True when there is no observation, or the last one is older than the cadence allows."""
    if last_observed_at is None:
        return True
    return now - last_observed_at > dt.timedelta(days=cadence_days)


def working_days(start: dt.date, end: dt.date) -> int:
    """Weekdays (Monday to Friday) from start to end, both included; 0 when end is before start."""
    if end < start:
        return 0
    total = (end - start).days + 1
    weeks, rest = divmod(total, 7)
    count = weeks * 5
    first = start.weekday()
    count += sum(1 for i in range(rest) if (first + i) % 7 < 5)
    return count


def sparkline(points: Sequence[tuple[TimeLike, float]], n_buckets: int) -> list[float | None]:
    """Mean value per equal slice of the time range (None for a slice with no point)."""
    if n_buckets < 1:
        raise ValueError("n_buckets must be at least 1.")
    if not points:
        return []
    xs = [_days(t) for t, _ in points]
    lo, hi = min(xs), max(xs)
    width = (hi - lo) / n_buckets
    sums = [0.0] * n_buckets
    counts = [0] * n_buckets
    for x, (_, value) in zip(xs, points, strict=True):
        index = n_buckets - 1 if width == 0 else min(n_buckets - 1, int((x - lo) / width))
        sums[index] += value
        counts[index] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]
