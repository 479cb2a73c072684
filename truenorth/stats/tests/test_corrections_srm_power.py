import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from truenorth.stats import MeanStats, corrections, frequentist, power, sequential, srm


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjusted_p_values_match_statsmodels(ours, theirs):
    rng = np.random.default_rng(5)
    for size in (1, 2, 7, 50, 500):
        p = rng.uniform(0, 0.2, size) ** 2
        p[: size // 5] = p[0]  # ties
        np.testing.assert_allclose(
            corrections.adjust(p, ours), multipletests(p, method=theirs)[1], rtol=1e-12
        )
    # along an axis: one family per row
    p = rng.uniform(0, 0.1, (4, 9))
    by_row = corrections.adjust(p, ours, axis=1)
    for i in range(4):
        np.testing.assert_allclose(by_row[i], multipletests(p[i], method=theirs)[1], rtol=1e-12)


def test_nan_p_values_are_not_in_the_family():
    adj = corrections.holm([0.01, np.nan, 0.02])
    assert np.isnan(adj[1]) and adj[[0, 2]] == pytest.approx([0.02, 0.02])
    with pytest.raises(ValueError, match="unknown correction"):
        corrections.adjust([0.1], "bonferroni")  # type: ignore[arg-type]


def _many_metrics(seed: int = 6, m: int = 40) -> tuple[MeanStats, MeanStats]:
    rng = np.random.default_rng(seed)
    n = rng.integers(50, 3000, (2, m)).astype(float)
    sd = rng.uniform(1, 5, (2, m))
    mu = np.stack([np.full(m, 10.0), 10 + rng.normal(0, 0.4, m)])
    s = mu * n
    return MeanStats(n[0], s[0], sd[0] ** 2 * (n[0] - 1) + s[0] ** 2 / n[0]), MeanStats(
        n[1], s[1], sd[1] ** 2 * (n[1] - 1) + s[1] ** 2 / n[1]
    )


@pytest.mark.parametrize("method", ["holm", "bh"])
@pytest.mark.parametrize("engine", [frequentist.welch, sequential.welch])
def test_corrected_intervals_agree_with_corrected_p_values(method, engine):
    for seed in range(6):
        a, b = _many_metrics(seed)
        c = engine(a, b)
        out = corrections.correct(c, method)
        k = out.corrected
        assert out.uncorrected is c
        assert np.all(k.p_value >= c.p_value - 1e-15)
        assert k.p_value_relative is not None
        excludes = (k.ci_low > 0) | (k.ci_high < 0)
        np.testing.assert_array_equal(excludes, k.p_value < 0.05)
        excludes_rel = (k.ci_low_relative > 0) | (k.ci_high_relative < 0)
        np.testing.assert_array_equal(excludes_rel, k.p_value_relative < 0.05)
        # corrected intervals contain the uncorrected ones
        assert np.all(k.ci_low <= c.ci_low + 1e-12) and np.all(k.ci_high >= c.ci_high - 1e-12)
        assert "corrected" in k.method


def test_holm_interval_uses_the_per_rank_alpha():
    a, b = _many_metrics(7, m=5)
    c = frequentist.welch(a, b)
    out = corrections.correct(c, "holm")
    order = np.argsort(c.p_value)
    adj = out.corrected.p_value
    for rank, i in enumerate(order):
        if adj[i] == (5 - rank) * c.p_value[i]:  # no carry-over from an earlier rank
            assert out.alpha_implied[i] == pytest.approx(0.05 / (5 - rank))
    assert c.df is not None
    lo, _ = frequentist.t_interval(c.effect, c.se, c.df, out.alpha_implied)
    np.testing.assert_allclose(out.corrected.ci_low, lo)


def test_srm_matches_scipy_chisquare():
    rng = np.random.default_rng(8)
    for k in (2, 3, 5):
        w = rng.uniform(0.5, 2, k)
        obs = rng.multinomial(10_000, w / w.sum(), size=20).astype(float)
        res = srm.check(obs, w)
        for i in range(20):
            ref = sps.chisquare(obs[i], w / w.sum() * obs[i].sum())
            assert res.p_value[i] == pytest.approx(ref.pvalue, rel=1e-10)
            assert res.statistic[i] == pytest.approx(ref.statistic, rel=1e-10)


def test_srm_flags_a_planted_mismatch_only():
    res = srm.check([[5000, 5000], [5000, 5400], [5000, 5100]])
    assert res.mismatch.tolist() == [False, True, False]
    assert srm.check([1000, 1000, 1200], [1, 1, 1.2]).p_value == pytest.approx(1.0)


def test_srm_bad_input():
    res = srm.check(np.array([[0, 0], [10, -1], [10, np.nan], [10, 10]]), [[1, 1], [1, 1], [1, 1], [1, 0]])
    assert res.not_enough_data.tolist() == [True, True, True, True]
    assert res.reason.tolist() == [
        "no units observed",
        "negative count",
        "NaN or infinite input",
        "allocation weights must be positive",
    ]
    assert not res.mismatch.any() and np.isnan(res.p_value).all()
    with pytest.raises(ValueError, match="at least two variations"):
        srm.check([10])
    with pytest.raises(ValueError, match="mismatched shapes"):
        srm.check([10, 10, 10], [1, 1])


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
@pytest.mark.parametrize("target", [0.8, 0.9])
def test_sample_size_means_matches_statsmodels(alpha, target):
    mde = np.array([0.05, 0.3, 1.0, 4.0])
    n = power.sample_size_means(mde, 2.0, alpha=alpha, power=target)
    for i, d in enumerate(mde / 2.0):
        ref = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=target, ratio=1.0)
        assert n[i] == pytest.approx(ref, rel=1e-6)
    relative = power.sample_size_means(0.1, 2.0, alpha=alpha, power=target, relative=True, baseline_mean=10.0)
    assert relative == pytest.approx(power.sample_size_means(1.0, 2.0, alpha=alpha, power=target))


@pytest.mark.parametrize("baseline", [0.001, 0.05, 0.5, 0.97])
def test_sample_size_proportions_matches_statsmodels(baseline):
    for mde in (0.01, 0.1, -0.02):
        n = power.sample_size_proportions(baseline, mde, relative=True)
        p2 = baseline * (1 + mde)
        if p2 >= 1:
            assert np.isnan(n)
            continue
        d = (p2 - baseline) / np.sqrt((baseline * (1 - baseline) + p2 * (1 - p2)) / 2)
        ref = NormalIndPower().solve_power(effect_size=abs(d), alpha=0.05, power=0.8, ratio=1.0)
        assert n == pytest.approx(ref, rel=1e-6)
        assert power.power_proportions(n, baseline, mde, relative=True) == pytest.approx(0.8, rel=1e-9)


def test_achieved_power_matches_statsmodels():
    n = np.array([10, 100, 1000, 10_000])
    got = power.power_means(n, 0.2, 1.5)
    ref = [TTestIndPower().power(0.2 / 1.5, k, 0.05) for k in n]
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    got = power.power_proportions(n, 0.1, 0.02)
    d = 0.02 / np.sqrt((0.09 + 0.12 * 0.88) / 2)
    np.testing.assert_allclose(got, [NormalIndPower().power(d, k, 0.05) for k in n], rtol=1e-9)


def test_power_bad_input_is_nan():
    assert np.isnan(power.sample_size_means([0, 1], [1, 0])).all()
    assert np.isnan(power.sample_size_proportions([0, 1, 0.5], [0.1, 0.1, 0.6])).all()
    assert np.isnan(power.power_means(1, 1, 1))
    with pytest.raises(ValueError, match="baseline mean"):
        power.sample_size_means(0.1, 1, relative=True)
