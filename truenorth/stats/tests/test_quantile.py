"""Quantile metrics: the order-statistic interval against a brute-force bootstrap and its coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from truenorth.stats import quantile
from truenorth.stats.quantile import QuantileStats


def _p90_lognormal(mu: float, sigma: float) -> float:
    return float(np.exp(mu + sigma * sps.norm.ppf(0.9)))


def test_summary_brackets_the_quantile():
    rng = np.random.default_rng(0)
    q = QuantileStats.from_values(rng.exponential(1.0, 10_000), 0.9)
    assert float(q.lower) < float(q.quantile) < float(q.upper)
    assert float(q.quantile) == pytest.approx(np.log(10), rel=0.05)
    # Var(q̂) ≈ nu(1 - nu) / (n f(q)²) for the exponential: f(q) = 0.1
    assert float(q.se) == pytest.approx(np.sqrt(0.09 / 10_000) / 0.1, rel=0.15)
    with pytest.raises(ValueError):
        QuantileStats.from_values([1.0, 2.0], 1.0)


def test_standard_error_matches_brute_force_bootstrap():
    rng = np.random.default_rng(42)
    a = rng.lognormal(3.0, 0.8, 3000)
    b = rng.lognormal(3.1, 0.8, 3200)
    ours = quantile.welch(QuantileStats.from_values(a, 0.9), QuantileStats.from_values(b, 0.9))
    boot = []
    for _ in range(600):
        qa = np.quantile(rng.choice(a, a.size), 0.9, method="inverted_cdf")
        qb = np.quantile(rng.choice(b, b.size), 0.9, method="inverted_cdf")
        boot.append(qb - qa)
    boot_se = float(np.std(boot, ddof=1))
    assert float(ours.se) == pytest.approx(boot_se, rel=0.2)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert float(ours.ci_low) == pytest.approx(lo, abs=0.75 * boot_se)
    assert float(ours.ci_high) == pytest.approx(hi, abs=0.75 * boot_se)


def test_interval_has_nominal_coverage_on_simulated_data():
    rng = np.random.default_rng(7)
    truth = _p90_lognormal(2.2, 0.9) - _p90_lognormal(2.0, 0.9)
    covered = 0
    sims = 400
    for _ in range(sims):
        a = QuantileStats.from_values(rng.lognormal(2.0, 0.9, 1500), 0.9)
        b = QuantileStats.from_values(rng.lognormal(2.2, 0.9, 1500), 0.9)
        c = quantile.welch(a, b)
        covered += float(c.ci_low) <= truth <= float(c.ci_high)
    assert 0.92 <= covered / sims <= 0.985


def test_not_enough_data_is_flagged_not_crashed():
    rng = np.random.default_rng(3)
    small = QuantileStats.from_values(rng.normal(size=20), 0.99)  # the bracket cannot be formed
    big = QuantileStats.from_values(rng.normal(size=2000), 0.99)
    c = quantile.welch(small, big)
    assert bool(c.not_enough_data) and "too few values" in str(c.reason)
    other_level = QuantileStats.from_values(rng.normal(size=2000), 0.5)
    c = quantile.bayes(big, other_level)
    assert bool(c.not_enough_data) and "different quantile levels" in str(c.reason)
    empty = QuantileStats.from_values([], 0.5)
    assert bool(quantile.welch(empty, big).not_enough_data)


values = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=200, max_size=400, unique=True)


@settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(values, values)
def test_swapping_variations_negates_the_effect(x, y):
    a, b = QuantileStats.from_values(x, 0.5), QuantileStats.from_values(y, 0.5)
    ab, ba = quantile.welch(a, b), quantile.welch(b, a)
    if not bool(ab.not_enough_data):
        assert float(ab.effect) == pytest.approx(-float(ba.effect))
        assert float(ab.ci_low) == pytest.approx(-float(ba.ci_high))


@settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(values, values, st.floats(0.01, 100))
def test_scaling_units_scales_the_effect(x, y, k):
    a, b = QuantileStats.from_values(x, 0.5), QuantileStats.from_values(y, 0.5)
    ka = QuantileStats.from_values(np.array(x) * k, 0.5)
    kb = QuantileStats.from_values(np.array(y) * k, 0.5)
    c, ck = quantile.welch(a, b), quantile.welch(ka, kb)
    floor = min(float(s.variance_init) for s in (a, b, ka, kb))
    if not bool(c.not_enough_data) and floor > 1e-4:  # away from gbstats' 1e-5 variance floor
        assert float(ck.effect) == pytest.approx(k * float(c.effect), rel=1e-9, abs=1e-9)
        assert float(ck.se) == pytest.approx(k * float(c.se), rel=1e-6)


def test_more_data_shrinks_the_interval():
    rng = np.random.default_rng(11)
    widths = []
    for n in (500, 5000, 50_000):
        a = QuantileStats.from_values(rng.lognormal(1, 1, n), 0.9)
        b = QuantileStats.from_values(rng.lognormal(1, 1, n), 0.9)
        c = quantile.welch(a, b)
        widths.append(float(c.ci_high - c.ci_low))
    assert widths[0] > widths[1] > widths[2]
