"""Cases checked against gbstats 0.8.0 and the engine functions that answer them.

Extend ``CASES`` (via ``make_cases``) and ``ENGINES`` for new methods: an engine takes a case and
returns ``{"absolute": Comparison, "relative": Comparison}``-like numbers (see ``engine_numbers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from truenorth.stats import CupedStats, MeanStats, RatioStats, frequentist, sequential
from truenorth.stats.summary import Comparison

Case = dict[str, Any]


def _mean(x: np.ndarray) -> dict[str, float]:
    return {"n": len(x), "sum": float(x.sum()), "sum_squares": float((x * x).sum())}


def _ratio(m: np.ndarray, d: np.ndarray) -> dict[str, float]:
    return {
        "n": len(m),
        "m_sum": float(m.sum()),
        "m_sum_squares": float((m * m).sum()),
        "d_sum": float(d.sum()),
        "d_sum_squares": float((d * d).sum()),
        "m_d_sum_of_products": float((m * d).sum()),
    }


def _cuped(y: np.ndarray, x: np.ndarray, proportion: bool = False) -> dict[str, Any]:
    return {
        "n": len(y),
        "post_sum": float(y.sum()),
        "post_sum_squares": float((y * y).sum()),
        "pre_sum": float(x.sum()),
        "pre_sum_squares": float((x * x).sum()),
        "post_pre_sum_of_products": float((x * y).sum()),
        "proportion": proportion,
    }


def make_cases(seed: int = 20261128) -> list[Case]:
    rng = np.random.default_rng(seed)
    pairs: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = []
    # means: small and large n, tiny effects, negative means, heavy skew
    for n_a, n_b, mu, eff, sd in [
        (3, 4, 10.0, 1.0, 2.0),
        (10, 12, 5.0, 0.5, 1.0),
        (50, 45, -20.0, 2.0, 5.0),
        (200, 210, 0.3, 0.001, 1.0),
        (1000, 1000, 100.0, 0.01, 30.0),
        (5000, 5100, -3.0, -0.2, 4.0),
        (100_000, 99_000, 2.0, 0.0001, 0.5),
    ]:
        a = rng.normal(mu, sd, n_a)
        b = rng.normal(mu + eff, sd * 1.2, n_b)
        pairs.append(("mean", _mean(a), _mean(b), {}))
    a = rng.lognormal(1, 1.5, 800)
    b = rng.lognormal(1.05, 1.5, 820)
    pairs.append(("mean", _mean(a), _mean(b), {"alpha": 0.1}))
    # proportions: near 0, near 1, middling, tiny effect
    for n_a, n_b, p_a, p_b in [
        (1000, 1000, 0.002, 0.004),
        (50_000, 50_500, 0.001, 0.0012),
        (400, 420, 0.98, 0.99),
        (20_000, 20_000, 0.5, 0.501),
        (30, 35, 0.3, 0.4),
    ]:
        ca = max(1, int(rng.binomial(n_a, p_a)))
        cb = max(1, int(rng.binomial(n_b, p_b)))
        pairs.append(("proportion", {"n": n_a, "sum": ca}, {"n": n_b, "sum": cb}, {}))
    # ratios (e.g. revenue per session) and cluster-randomised (units per cluster as denominator)
    for n, scale in [(40, 1.0), (2000, 3.0), (30_000, 0.2)]:
        da = rng.poisson(3, n) + 1.0
        db = rng.poisson(3.2, n + 7) + 1.0
        ma = da * rng.gamma(2, scale, n)
        mb = db * rng.gamma(2.1, scale, n + 7)
        pairs.append(("ratio", _ratio(ma, da), _ratio(mb, db), {}))
    # CUPED: strong, weak and negative correlation; proportion covariate
    for n, rho, mu in [(60, 0.8, 5.0), (3000, 0.3, -2.0), (20_000, -0.6, 50.0)]:
        xa = rng.normal(mu, 3, n)
        xb = rng.normal(mu, 3, n + 11)
        ya = mu + rho * (xa - mu) + rng.normal(0, 2, n)
        yb = mu + 0.3 + rho * (xb - mu) + rng.normal(0, 2, n + 11)
        pairs.append(("cuped", _cuped(ya, xa), _cuped(yb, xb), {}))
    xa = rng.binomial(1, 0.3, 5000).astype(float)
    xb = rng.binomial(1, 0.3, 5000).astype(float)
    ya = np.where(rng.random(5000) < 0.5 + 0.3 * xa, 1.0, 0.0)
    yb = np.where(rng.random(5000) < 0.52 + 0.3 * xb, 1.0, 0.0)
    pairs.append(("cuped", _cuped(ya, xa, True), _cuped(yb, xb, True), {}))
    # constant covariate: theta = 0, gbstats falls back to the unadjusted test
    ya, yb = rng.normal(3, 1, 300), rng.normal(3.2, 1, 310)
    pairs.append(("cuped", _cuped(ya, np.full(300, 2.0)), _cuped(yb, np.full(310, 2.0)), {}))

    cases: list[Case] = []
    for stat, sa, sb, config in pairs:
        cases.append({"stat": stat, "test": "ttest", "a": sa, "b": sb, "config": config})
        cases.append(
            {
                "stat": stat,
                "test": "sequential",
                "a": sa,
                "b": sb,
                "config": {**config, "sequential_tuning_parameter": 5000},
            }
        )
    cases.append({**cases[8], "config": {"sequential_tuning_parameter": 200, "alpha": 0.01}})
    for stat, sa, sb, _config in pairs[::2]:
        cases.append({"stat": stat, "test": "ttest", "a": sa, "b": sb, "config": {"alpha": 0.01}})
    return cases


def _stats(case: Case, side: str) -> Any:
    d = case[side]
    kind = case["stat"]
    if kind == "mean":
        return MeanStats(d["n"], d["sum"], d["sum_squares"])
    if kind == "proportion":
        return MeanStats.proportion(d["n"], d["sum"])
    if kind == "ratio":
        return RatioStats(
            d["n"], d["m_sum"], d["m_sum_squares"], d["d_sum"], d["d_sum_squares"], d["m_d_sum_of_products"]
        )
    if d.get("proportion"):
        return CupedStats(
            MeanStats.proportion(d["n"], d["post_sum"]),
            MeanStats.proportion(d["n"], d["pre_sum"]),
            d["post_pre_sum_of_products"],
        )
    return CupedStats(
        MeanStats(d["n"], d["post_sum"], d["post_sum_squares"]),
        MeanStats(d["n"], d["pre_sum"], d["pre_sum_squares"]),
        d["post_pre_sum_of_products"],
    )


def stacked(cases: list[Case]) -> Case:
    """One case whose statistics are arrays (one element per case); alpha and tuning too."""
    first = cases[0]
    return {
        "stat": first["stat"],
        "test": first["test"],
        "a": {k: np.array([c["a"][k] for c in cases]) for k in first["a"] if k != "proportion"}
        | {"proportion": first["a"].get("proportion", False)},
        "b": {k: np.array([c["b"][k] for c in cases]) for k in first["b"] if k != "proportion"}
        | {"proportion": first["b"].get("proportion", False)},
        "config": {
            "alpha": np.array([c["config"].get("alpha", 0.05) for c in cases]),
            "sequential_tuning_parameter": np.array(
                [c["config"].get("sequential_tuning_parameter", 5000) for c in cases]
            ),
        },
    }


def _frequentist(case: Case) -> Comparison:
    a, b = _stats(case, "a"), _stats(case, "b")
    alpha = case["config"].get("alpha", 0.05)
    fn: dict[str, Callable[..., Comparison]] = {
        "mean": frequentist.welch,
        "proportion": frequentist.welch,
        "ratio": frequentist.ratio,
        "cuped": frequentist.cuped,
    }
    return fn[case["stat"]](a, b, alpha=alpha)


def _sequential(case: Case) -> Comparison:
    a, b = _stats(case, "a"), _stats(case, "b")
    config = case["config"]
    fn: dict[str, Callable[..., Comparison]] = {
        "mean": sequential.welch,
        "proportion": sequential.welch,
        "ratio": sequential.ratio,
        "cuped": sequential.cuped,
    }
    return fn[case["stat"]](
        a, b, alpha=config.get("alpha", 0.05), tuning=config.get("sequential_tuning_parameter", 5000)
    )


#: (test name) -> engine; returns a Comparison whose absolute/relative numbers are compared.
ENGINES: dict[str, Callable[[Case], Comparison]] = {"ttest": _frequentist, "sequential": _sequential}


def engine_numbers(c: Comparison) -> dict[str, dict[str, float]]:
    """The numbers gbstats reports, from one Comparison: expected, ci, stddev, p_value."""

    def f(x: Any) -> float:
        return float(np.asarray(x))

    return {
        "absolute": {
            "expected": f(c.effect),
            "ci_low": f(c.ci_low),
            "ci_high": f(c.ci_high),
            "stddev": f(c.se),
            "p_value": f(c.p_value),
        },
        "relative": {
            "expected": f(c.effect_relative),
            "ci_low": f(c.ci_low_relative),
            "ci_high": f(c.ci_high_relative),
            "stddev": f(c.se_relative),
            "p_value": f(c.p_value_relative),
        },
    }
