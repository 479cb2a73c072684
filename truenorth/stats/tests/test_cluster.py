"""Cluster-randomised experiments: the per-user test is anti-conservative, the cluster one is not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from truenorth.stats import bayesian, cluster, frequentist
from truenorth.stats.summary import MeanStats


def test_from_units_sums_per_cluster():
    r = cluster.from_units(["a", "a", "b", "c", "c", "c"], [1.0, 2.0, 5.0, 1.0, 1.0, 1.0])
    # clusters: a (3, 2 users), b (5, 1), c (3, 3)
    assert float(r.n) == 3
    assert float(r.m_sum) == 11 and float(r.m_sum_squares) == 9 + 25 + 9
    assert float(r.d_sum) == 6 and float(r.d_sum_squares) == 4 + 1 + 9
    assert float(r.m_d_sum_of_products) == 6 + 5 + 9
    assert float(r.mean) == pytest.approx(11 / 6)
    same = cluster.from_sums(3, 11, 43, 6, 14, 20)
    assert float(same.variance) == pytest.approx(float(r.variance))
    with pytest.raises(ValueError):
        cluster.from_units([1, 2], [1.0])


def _arm(rng: np.random.Generator, accounts: int, effect: float) -> tuple[np.ndarray, np.ndarray]:
    users = rng.poisson(15, accounts) + 1
    account_effect = rng.normal(0, 1.0, accounts)  # strong intra-account correlation
    ids = np.repeat(np.arange(accounts), users)
    values = 5 + effect + account_effect[ids] + rng.normal(0, 0.5, ids.size)
    return ids, values


def test_naive_per_user_test_is_anti_conservative_and_cluster_test_is_nominal():
    rng = np.random.default_rng(2026)
    sims, effect = 400, 0.3
    naive_cover = cluster_cover = 0
    for _ in range(sims):
        ia, va = _arm(rng, 40, 0.0)
        ib, vb = _arm(rng, 40, effect)
        naive = frequentist.welch(MeanStats.from_values(va), MeanStats.from_values(vb))
        clustered = frequentist.ratio(cluster.from_units(ia, va), cluster.from_units(ib, vb))
        naive_cover += float(naive.ci_low) <= effect <= float(naive.ci_high)
        cluster_cover += float(clustered.ci_low) <= effect <= float(clustered.ci_high)
    assert naive_cover / sims < 0.6  # far below the nominal 95 %
    assert 0.91 <= cluster_cover / sims <= 0.98


def test_bayesian_on_clusters():
    rng = np.random.default_rng(5)
    ia, va = _arm(rng, 200, 0.0)
    ib, vb = _arm(rng, 200, 1.0)
    c = bayesian.ratio(cluster.from_units(ia, va), cluster.from_units(ib, vb))
    assert c.chance_to_win is not None and float(c.chance_to_win) > 0.99


sizes = st.lists(st.integers(1, 30), min_size=5, max_size=40)


@settings(max_examples=40, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(sizes, sizes, st.integers(0, 10_000), st.floats(0.01, 100))
def test_swap_negates_and_scaling_scales(sa, sb, seed, k):
    rng = np.random.default_rng(seed)
    ma, mb = rng.gamma(2, 1, len(sa)) * sa, rng.gamma(2, 1, len(sb)) * sb
    a, b = cluster.from_cluster_totals(ma, sa), cluster.from_cluster_totals(mb, sb)
    ab, ba = frequentist.ratio(a, b), frequentist.ratio(b, a)
    assert float(ab.effect) == pytest.approx(-float(ba.effect), rel=1e-9, abs=1e-12)
    ka, kb = cluster.from_cluster_totals(ma * k, sa), cluster.from_cluster_totals(mb * k, sb)
    kab = frequentist.ratio(ka, kb)
    assert float(kab.effect) == pytest.approx(k * float(ab.effect), rel=1e-7, abs=1e-12)
    assert float(kab.se) == pytest.approx(k * float(ab.se), rel=1e-7)


def test_more_clusters_shrink_the_interval():
    rng = np.random.default_rng(9)
    widths = []
    for accounts in (20, 200, 2000):
        ia, va = _arm(rng, accounts, 0.0)
        ib, vb = _arm(rng, accounts, 0.0)
        c = frequentist.ratio(cluster.from_units(ia, va), cluster.from_units(ib, vb))
        widths.append(float(c.ci_high - c.ci_low))
    assert widths[0] > widths[1] > widths[2]
