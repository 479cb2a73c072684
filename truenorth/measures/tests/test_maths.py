"""The measure maths, by example and by property."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from truenorth.measures import maths

UTC = dt.UTC
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


def day(n: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(days=n)


def test_progress_examples():
    assert maths.progress(0, 10, 5, "higher") == 0.5
    assert maths.progress(10, 0, 2.5, "lower") == 0.75
    assert maths.progress(0, 10, 20, "higher") == 1.0
    assert maths.progress(0, 10, -5, "higher") == 0.0
    assert maths.progress(0, 10, None, "higher") is None
    assert maths.progress(None, 10, 3, "higher") is None
    assert maths.progress(5, 5, 3, "higher") is None
    assert maths.progress(0, 10, 3, "lower") is None  # target on the wrong side for the direction
    assert maths.progress(0, 10, 5, "increase") == 0.5
    with pytest.raises(ValueError):
        maths.progress(0, 10, 5, "sideways")


@given(finite, finite, finite, st.sampled_from(["higher", "lower"]))
def test_progress_is_a_share(baseline, target, current, direction):
    p = maths.progress(baseline, target, current, direction)
    assert p is None or 0.0 <= p <= 1.0


@given(finite, finite)
def test_reaching_the_target_is_complete(baseline, target):
    direction = "higher" if target > baseline else "lower"
    p = maths.progress(baseline, target, target, direction)
    assert p is None or p == pytest.approx(1.0)


def test_change():
    series = [(day(0), 10.0), (day(10), 12.0), (day(40), 20.0)]
    assert maths.change(series, dt.timedelta(days=30)) == 8.0  # 20 - the value on day 10
    assert maths.change(series, dt.timedelta(days=40)) == 10.0
    assert maths.change(series, dt.timedelta(days=41)) is None  # no value that far back
    assert maths.change([], dt.timedelta(days=1)) is None
    assert maths.change(list(reversed(series)), dt.timedelta(days=30)) == 8.0


def test_trend_slope_per_day():
    assert maths.trend_slope([day(0), day(1), day(2)], [1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert maths.trend_slope([day(0)], [1.0]) is None
    assert maths.trend_slope([day(3), day(3)], [1.0, 2.0]) is None
    assert maths.trend_slope([dt.date(2026, 1, 1), dt.date(2026, 1, 11)], [0.0, -5.0]) == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        maths.trend_slope([day(0)], [1.0, 2.0])


@given(
    st.lists(st.integers(min_value=0, max_value=3650), min_size=2, max_size=30, unique=True),
    st.floats(min_value=-1000, max_value=1000),
    st.floats(min_value=-1000, max_value=1000),
)
def test_trend_slope_recovers_a_line(days, slope, intercept):
    values = [intercept + slope * d for d in days]
    assert maths.trend_slope([day(d) for d in days], values) == pytest.approx(slope, abs=1e-6)


def test_distance_to_target():
    assert maths.distance_to_target(7, 10, "higher") == 3
    assert maths.distance_to_target(12, 10, "higher") == 0
    assert maths.distance_to_target(12, 10, "lower") == 2
    assert maths.distance_to_target(8, 10, "lower") == 0
    assert maths.distance_to_target(None, 10, "lower") is None
    assert maths.distance_to_target(3, None, "higher") is None


def test_is_stale():
    now = day(100)
    assert maths.is_stale(None, 30, now)
    assert not maths.is_stale(day(70), 30, now)  # exactly the cadence: not yet stale
    assert maths.is_stale(day(69), 30, now)


def test_working_days_examples():
    monday = dt.date(2026, 11, 23)
    assert maths.working_days(monday, monday + dt.timedelta(days=6)) == 5
    assert maths.working_days(monday + dt.timedelta(days=5), monday + dt.timedelta(days=6)) == 0
    assert maths.working_days(monday, monday) == 1
    assert maths.working_days(monday, monday - dt.timedelta(days=1)) == 0
    assert maths.working_days(dt.date(2026, 11, 1), dt.date(2026, 11, 30)) == 21


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 1, 1)), st.integers(0, 400))
def test_working_days_counts_weekdays(start, length):
    end = start + dt.timedelta(days=length)
    brute = sum(1 for i in range(length + 1) if (start + dt.timedelta(days=i)).weekday() < 5)
    assert maths.working_days(start, end) == brute


def test_sparkline_means_per_bucket():
    points = [(day(0), 1.0), (day(1), 3.0), (day(5), 10.0), (day(9), 4.0), (day(10), 6.0)]
    assert maths.sparkline(points, 2) == pytest.approx([2.0, 20 / 3])
    assert maths.sparkline(points, 5) == [2.0, None, 10.0, None, 5.0]
    assert maths.sparkline([], 4) == []
    assert maths.sparkline([(day(1), 2.0), (day(1), 4.0)], 3) == [None, None, 3.0]
    with pytest.raises(ValueError):
        maths.sparkline(points, 0)


@given(
    st.lists(st.tuples(st.integers(0, 1000), st.floats(-1e6, 1e6)), min_size=1, max_size=50),
    st.integers(1, 20),
)
def test_sparkline_buckets_hold_every_point(points, n):
    line = maths.sparkline([(day(d), v) for d, v in points], n)
    assert len(line) == n
    values = [v for _, v in points]
    known = [v for v in line if v is not None]
    assert known
    assert all(min(values) - 1e-6 <= v <= max(values) + 1e-6 for v in known)
