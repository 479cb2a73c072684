import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from truenorth.stats import CupedStats, MeanStats, RatioStats, frequentist, sequential
from truenorth.stats.summary import Comparison


def test_welch_matches_scipy_vectorised():
    rng = np.random.default_rng(1)
    n_a = rng.integers(2, 5000, 200).astype(float)
    n_b = rng.integers(2, 5000, 200).astype(float)
    mu_a, mu_b = rng.normal(0, 10, 200), rng.normal(0, 10, 200)
    sd_a, sd_b = rng.uniform(0.1, 20, 200), rng.uniform(0.1, 20, 200)

    def stats(n: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> MeanStats:
        s = mu * n
        return MeanStats(n, s, sd**2 * (n - 1) + s**2 / n)

    c = frequentist.welch(stats(n_a, mu_a, sd_a), stats(n_b, mu_b, sd_b))
    ref = sps.ttest_ind_from_stats(mu_b, sd_b, n_b, mu_a, sd_a, n_a, equal_var=False)
    np.testing.assert_allclose(c.p_value, ref.pvalue, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(c.effect / c.se, ref.statistic, rtol=1e-9)
    assert c.effect.shape == (200,) and not c.not_enough_data.any()
    # the interval excludes 0 exactly when p < alpha
    excludes = (c.ci_low > 0) | (c.ci_high < 0)
    np.testing.assert_array_equal(excludes, c.p_value < 0.05)


def test_welch_matches_raw_data_and_one_sided():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1, 2, 40), rng.normal(2, 3, 50)
    ref = sps.ttest_ind(b, a, equal_var=False)
    c = frequentist.welch(MeanStats.from_values(a), MeanStats.from_values(b))
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert float(c.ci_low) == pytest.approx(ci.low, rel=1e-9)
    assert float(c.ci_high) == pytest.approx(ci.high, rel=1e-9)
    greater = frequentist.welch(MeanStats.from_values(a), MeanStats.from_values(b), alternative="greater")
    assert greater.p_value == pytest.approx(
        sps.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue
    )
    assert greater.ci_high == np.inf and greater.method == "welch (greater)"


def test_proportion_and_ratio_and_cuped_shapes():
    c = frequentist.proportion([1000, 2000], [100, 250], [1000, 2000], [120, 230])
    assert c.effect == pytest.approx([0.02, -0.01]) and c.method == "proportion"
    r = RatioStats(100, 500, 3000, 200, 450, 1100)
    assert frequentist.ratio(r, r).effect == pytest.approx(0.0)
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, (2, 500))
    y = x + rng.normal(0, 1, (2, 500))
    y[1] += 0.5
    arms = [
        CupedStats(MeanStats.from_values(y[i]), MeanStats.from_values(x[i]), (x[i] * y[i]).sum())
        for i in (0, 1)
    ]
    cu = frequentist.cuped(arms[0], arms[1])
    plain = frequentist.welch(arms[0].post, arms[1].post)
    assert cu.variance_reduction is not None and cu.variance_reduction > 0.5
    assert cu.se < plain.se
    assert cu.extra["theta"] == pytest.approx(1.0, abs=0.1)


def test_cluster_randomised_by_ratio():
    """Randomised by account, analysed per user: per-account sums through the ratio method."""
    rng = np.random.default_rng(4)
    users = rng.integers(1, 20, (2, 300)).astype(float)
    revenue = users * rng.gamma(2, 5, (2, 300))
    arms = [
        RatioStats(
            300,
            revenue[i].sum(),
            (revenue[i] ** 2).sum(),
            users[i].sum(),
            (users[i] ** 2).sum(),
            (revenue[i] * users[i]).sum(),
        )
        for i in (0, 1)
    ]
    c = frequentist.ratio(arms[0], arms[1])
    assert c.control_mean == pytest.approx(revenue[0].sum() / users[0].sum())
    assert 0 < c.se < 5


@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (MeanStats(0, 0, 0), MeanStats(10, 10, 20), "zero or negative count"),
        (MeanStats(-5, 10, 30), MeanStats(10, 10, 20), "zero or negative count"),
        (MeanStats(1, 3, 9), MeanStats(10, 10, 20), "fewer than 2 units in a variation"),
        (MeanStats(10, 10, 10), MeanStats(10, 10, 20), "zero variance"),
        (MeanStats(10, np.nan, 20), MeanStats(10, 10, 20), "NaN or infinite input"),
        (MeanStats(10, 10, 20), MeanStats(10, 10, np.inf), "NaN or infinite input"),
    ],
)
def test_bad_input_is_not_enough_data(control, treatment, reason):
    for fn in (frequentist.welch, sequential.welch):
        c = fn(control, treatment)
        assert bool(c.not_enough_data) and str(c.reason) == reason
        for name in ("effect", "effect_relative", "ci_low", "ci_high", "p_value", "se"):
            assert np.isnan(getattr(c, name)), name
        assert not c.significant()


def test_bad_elements_do_not_spoil_good_ones():
    control = MeanStats([100, 1, 100, 100], [1000, 3, 0, 1000], [12000, 9, 500, 12000])
    treatment = MeanStats([100, 100, 100, 100], [1100, 1100, 100, np.nan], [13000, 13000, 600, 1])
    c = frequentist.welch(control, treatment)
    assert c.not_enough_data.tolist() == [False, True, False, True]
    assert c.reason.tolist() == [
        "",
        "fewer than 2 units in a variation",
        "control mean is zero: no relative effect",
        "NaN or infinite input",
    ]
    assert np.isfinite(c.effect[2]) and np.isnan(c.effect_relative[2])
    single = frequentist.welch(MeanStats(100, 1000, 12000), MeanStats(100, 1100, 13000))
    assert c.p_value[0] == pytest.approx(float(single.p_value))


def test_bad_proportions_and_ratios():
    c = frequentist.proportion([100, 100, 100], [120, -1, 0], [100, 100, 100], [5, 5, 5])
    assert c.reason.tolist() == ["conversions outside 0..n", "conversions outside 0..n", "zero variance"]
    r0 = RatioStats(10, 5, 10, 0, 0, 0)
    assert frequentist.ratio(r0, r0).reason.item() == "denominator mean is zero"


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="mismatched shapes"):
        MeanStats([1, 2, 3], [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="mismatched shapes"):
        frequentist.welch(MeanStats([10, 20, 30], [5, 5, 5], [9, 9, 9]), MeanStats([10, 20], [5, 5], [9, 9]))


def _arm(n: float, mean: float, sd: float) -> MeanStats:
    s = mean * n
    return MeanStats(n, s, sd**2 * (n - 1) + s * s / n)


arms = st.tuples(
    st.integers(5, 100_000), st.floats(-1000, 1000).filter(lambda m: abs(m) > 1e-3), st.floats(0.01, 100)
)


@settings(max_examples=60, deadline=None)
@given(arms, arms)
def test_swapping_variations_negates_the_effect(a, b):
    for fn in (frequentist.welch, sequential.welch):
        ab, ba = fn(_arm(*a), _arm(*b)), fn(_arm(*b), _arm(*a))
        assert float(ab.effect) == pytest.approx(-float(ba.effect), rel=1e-9, abs=1e-9)
        assert float(ab.ci_low) == pytest.approx(-float(ba.ci_high), rel=1e-9, abs=1e-9)
        assert float(ab.p_value) == pytest.approx(float(ba.p_value), rel=1e-6, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(arms, arms, st.floats(1e-3, 1e3))
def test_scaling_units_scales_effects_not_p_values(a, b, k):
    for fn in (frequentist.welch, sequential.welch):
        base = fn(_arm(*a), _arm(*b))
        scaled = fn(_arm(a[0], a[1] * k, a[2] * k), _arm(b[0], b[1] * k, b[2] * k))
        for name in ("effect", "ci_low", "ci_high", "se"):
            assert float(getattr(scaled, name)) == pytest.approx(
                k * float(getattr(base, name)), rel=1e-6, abs=1e-9
            )
        for name in ("p_value", "effect_relative", "ci_low_relative", "ci_high_relative", "p_value_relative"):
            assert float(getattr(scaled, name)) == pytest.approx(
                float(getattr(base, name)), rel=1e-6, abs=1e-10
            )


@settings(max_examples=40, deadline=None)
@given(arms, arms)
def test_more_data_shrinks_the_interval(a, b):
    for fn in (frequentist.welch, sequential.welch):
        widths = [
            float(c.ci_high - c.ci_low)
            for c in (
                fn(_arm(a[0] * f, a[1], a[2]), _arm(b[0] * f, b[1], b[2])) for f in (1, 10, 1000, 100_000)
            )
        ]
        assert all(w2 < w1 for w1, w2 in itertools.pairwise(widths))
        assert widths[-1] < widths[0] / 100


def test_sequential_is_wider_than_fixed_and_valid_p():
    a, b = _arm(1000, 10, 3), _arm(1000, 10.5, 3)
    fixed, seq = frequentist.welch(a, b), sequential.welch(a, b)
    assert seq.ci_low < fixed.ci_low and seq.ci_high > fixed.ci_high
    assert fixed.p_value < seq.p_value <= 1
    assert ((seq.ci_low > 0) | (seq.ci_high < 0)) == (seq.p_value < 0.05)


def test_swapping_negates_ratio_cuped_and_proportion_effects():
    rng = np.random.default_rng(9)
    d = rng.poisson(3, (2, 400)) + 1.0
    m = d * rng.gamma(2, 1, (2, 400))
    ratios = [
        RatioStats(400, m[i].sum(), (m[i] ** 2).sum(), d[i].sum(), (d[i] ** 2).sum(), (m[i] * d[i]).sum())
        for i in (0, 1)
    ]
    x = rng.normal(5, 1, (2, 400))
    y = x + rng.normal(0.2, 1, (2, 400))
    cupeds = [
        CupedStats(MeanStats.from_values(y[i]), MeanStats.from_values(x[i]), (x[i] * y[i]).sum())
        for i in (0, 1)
    ]
    pairs: list[tuple[Callable[..., Comparison], list[Any]]] = [
        (frequentist.ratio, ratios),
        (frequentist.cuped, cupeds),
        (sequential.cuped, cupeds),
        (frequentist.welch, [MeanStats.proportion(1000, 100), MeanStats.proportion(900, 120)]),
    ]
    for fn, (a, b) in pairs:
        ab, ba = fn(a, b), fn(b, a)
        assert float(ab.effect) == pytest.approx(-float(ba.effect), rel=1e-12)
        assert float(ab.ci_low) == pytest.approx(-float(ba.ci_high), rel=1e-12)
        assert float(ab.p_value) == pytest.approx(float(ba.p_value), rel=1e-9)


def test_vectorised_over_metrics_and_variations():
    """A (metrics x variations) grid in one call equals element-by-element calls."""
    rng = np.random.default_rng(10)
    n = rng.integers(10, 1000, (5, 3)).astype(float)
    mu, sd = rng.normal(10, 1, (5, 3)), rng.uniform(1, 3, (5, 3))
    s = mu * n
    treatment = MeanStats(n, s, sd**2 * (n - 1) + s**2 / n)
    control = MeanStats(n[:, :1], s[:, :1], (sd**2 * (n - 1) + s**2 / n)[:, :1])  # broadcasts over variations
    grid = frequentist.welch(control, treatment)
    assert grid.p_value.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            one = frequentist.welch(
                MeanStats(n[i, 0], s[i, 0], sd[i, 0] ** 2 * (n[i, 0] - 1) + s[i, 0] ** 2 / n[i, 0]),
                MeanStats(n[i, j], s[i, j], sd[i, j] ** 2 * (n[i, j] - 1) + s[i, j] ** 2 / n[i, j]),
            )
            if j == 0:
                assert bool(one.not_enough_data) is False and float(one.effect) == 0
            assert float(grid.ci_low[i, j]) == pytest.approx(float(one.ci_low), rel=1e-12, abs=1e-12)
