"""Monte Carlo forecasts against analytic cases (truenorth/delivery/forecast.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from truenorth.delivery.forecast import backtest, how_many, when


def test_constant_throughput_is_degenerate():
    f = how_many([3] * 30, 10, trials=500)
    assert f.percentiles == {50: 30.0, 85: 30.0, 95: 30.0}
    assert f.histogram == [(30.0, 500)] and f.trials == 500
    w = when([2] * 30, 9, trials=500)  # 2 a day: 9 items need 5 days
    assert w.percentiles == {50: 5.0, 85: 5.0, 95: 5.0} and w.histogram == [(5.0, 500)]


def test_how_many_matches_the_binomial():
    # each day 0 or 2 with p = 1/2: the total over n days is 2 * Binomial(n, 1/2)
    n = 40
    f = how_many([0, 2] * 50, n, trials=100_000, seed=3)
    # "at c% confidence" = reached in at least c% of trials = the (100 - c)th percentile of totals
    for c in (50, 85, 95):
        expected = 2 * stats.binom.ppf((100 - c) / 100, n, 0.5)
        assert f.percentiles[c] == pytest.approx(expected, abs=2)
    assert f.percentiles[95] <= f.percentiles[85] <= f.percentiles[50]
    mean = sum(v * c for v, c in f.histogram) / f.trials
    assert mean == pytest.approx(n, rel=0.01)


def test_how_many_figure_is_reached_in_at_least_that_share_of_trials():
    f = how_many([0, 1, 1, 2, 5], 20, trials=20_000, seed=7)
    totals = np.repeat([v for v, _ in f.histogram], [c for _, c in f.histogram])
    for c in (50, 85, 95):
        assert np.mean(totals >= f.percentiles[c]) >= c / 100
        assert np.mean(totals >= f.percentiles[c] + 1) < c / 100  # the largest such value


def test_when_matches_the_negative_binomial():
    # each day 0 or 1 with p = 1/2: days to k items = k + NegBinomial(k, 1/2) failures
    k = 30
    w = when([0, 1] * 50, k, trials=100_000, seed=5)
    for c in (50, 85, 95):
        expected = k + stats.nbinom.ppf(c / 100, k, 0.5)
        assert w.percentiles[c] == pytest.approx(expected, abs=1)
    days = np.repeat([v for v, _ in w.histogram], [c for _, c in w.histogram])
    for c in (50, 85, 95):
        assert np.mean(days <= w.percentiles[c]) >= c / 100
        assert np.mean(days <= w.percentiles[c] - 1) < c / 100


def test_when_consistent_with_how_many():
    history = [0, 0, 1, 3, 2, 0, 1, 4, 0, 2]
    items = 40
    d85 = int(when(history, items, trials=100_000, seed=1).percentiles[85])
    assert how_many(history, d85, trials=100_000, seed=2).percentiles[85] >= items
    assert how_many(history, d85 - 1, trials=100_000, seed=2).percentiles[85] < items


def test_when_caps_at_max_days():
    w = when([0] * 99 + [1], 5, trials=1000, max_days=50)
    assert w.percentiles[50] == 50.0 and w.capped > 900


def test_seed_makes_forecasts_repeatable():
    history = [0, 1, 2, 3, 0, 1]
    assert how_many(history, 30, seed=11) == how_many(history, 30, seed=11)
    assert when(history, 25, seed=11) == when(history, 25, seed=11)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "history is empty"),
        ([1, -1, 2], r"cannot be negative \(day 1: -1\)"),
        ([1.5, 2], "whole numbers"),
        ([[1, 2]], "flat list"),
    ],
)
def test_bad_history_is_refused(history, message):
    for call in (lambda: how_many(history, 5), lambda: when(history, 5), lambda: backtest(history)):
        with pytest.raises(ValueError, match=message):
            call()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="days must be at least 1"):
        how_many([1], 0)
    with pytest.raises(ValueError, match="items must be at least 1"):
        when([1], 0)
    with pytest.raises(ValueError, match="trials must be at least 1"):
        how_many([1], 3, trials=0)
    with pytest.raises(ValueError, match="no completed items"):
        when([0, 0, 0], 3)


def test_backtest_on_constant_history_hits_exactly():
    b = backtest([2] * 60, horizon_days=7, step_days=7, min_history=28, trials=200)
    assert [p.cut for p in b.points] == [28, 35, 42, 49]
    assert all(p.p50 == p.p85 == p.p95 == p.actual == 14 for p in b.points)
    assert b.hit_rate_85 == 1.0 and b.mean_abs_pct_error_50 == 0.0


def test_backtest_measures_a_change_in_pace():
    # the team slows from 2 a day to 1 a day: the forecast from the past overshoots by 100%
    b = backtest([2] * 28 + [1] * 7, horizon_days=7, step_days=7, min_history=28, trials=200)
    assert [(p.cut, p.p50, p.p85, p.actual) for p in b.points] == [(28, 14.0, 14.0, 7)]
    assert b.hit_rate_85 == 0.0 and b.mean_abs_pct_error_50 == pytest.approx(1.0)
    short = backtest([1] * 10)
    assert short.points == [] and short.hit_rate_85 is None and short.mean_abs_pct_error_50 is None


def test_backtest_on_a_stationary_history_is_calibrated_on_average():
    # Poisson days: the actual count reaches the 85% figure in about 85% of cuts (averaged over histories)
    rates = [backtest(np.random.default_rng(s).poisson(1.5, size=400), seed=s).hit_rate_85 for s in range(10)]
    assert all(r is not None for r in rates)
    assert 0.78 <= float(np.mean([r for r in rates if r is not None])) <= 0.92


def test_when_with_a_huge_target_stays_bounded():
    w = when([1, 2], 10_000_000, trials=10_000, max_days=400)
    assert w.percentiles == {50: 400.0, 85: 400.0, 95: 400.0} and w.capped == 10_000
