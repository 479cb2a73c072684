"""Bayesian engine: agreement with gbstats 0.8.0 (rel 1e-6), invariants and not-enough-data."""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from truenorth.stats import bayesian, quantile, sequential
from truenorth.stats.summary import Comparison, MeanStats
from truenorth.stats.tests.gbstats_cases import _cuped, _mean, _ratio, _stats

ROOT = Path(__file__).resolve().parents[3]
GB_PYTHON = ROOT / ".venv-gbstats" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "gbstats_reference.py"
REL, ABS = 1e-6, 1e-12


def _quantile(x: np.ndarray, nu: float) -> dict[str, float]:
    q = quantile.QuantileStats.from_values(x, nu)
    return {
        "n": float(q.n),
        "n_star": float(q.n_star),
        "nu": nu,
        "quantile": float(q.quantile),
        "lower": float(q.lower),
        "upper": float(q.upper),
    }


def make_cases(seed: int = 5) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for n_a, n_b, mu, eff, sd in [
        (5, 6, 10.0, 1.0, 2.0),
        (300, 310, 4.0, 0.1, 2.0),
        (20_000, 20_100, -7.0, 0.05, 3.0),
    ]:
        pairs.append(("mean", _mean(rng.normal(mu, sd, n_a)), _mean(rng.normal(mu + eff, sd, n_b))))
    for n, pa, pb in [(1000, 0.01, 0.014), (40_000, 0.2, 0.205), (60, 0.5, 0.6)]:
        pairs.append(
            (
                "proportion",
                {"n": n, "sum": int(rng.binomial(n, pa))},
                {"n": n + 3, "sum": int(rng.binomial(n + 3, pb))},
            )
        )
    for n in (50, 5000):
        da, db = rng.poisson(3, n) + 1.0, rng.poisson(3, n + 5) + 1.0
        pairs.append(
            (
                "ratio",
                _ratio(da * rng.gamma(2, 1.0, n), da),
                _ratio(db * rng.gamma(2.2, 1.0, n + 5), db),
            )
        )
    for n, rho in [(80, 0.7), (10_000, -0.4)]:
        xa, xb = rng.normal(20, 3, n), rng.normal(20, 3, n + 9)
        ya = 20 + rho * (xa - 20) + rng.normal(0, 2, n)
        yb = 20.4 + rho * (xb - 20) + rng.normal(0, 2, n + 9)
        pairs.append(("cuped", _cuped(ya, xa), _cuped(yb, xb)))
    xa, xb = rng.binomial(1, 0.4, 4000).astype(float), rng.binomial(1, 0.4, 4000).astype(float)
    ya = np.where(rng.random(4000) < 0.3 + 0.3 * xa, 1.0, 0.0)
    yb = np.where(rng.random(4000) < 0.33 + 0.3 * xb, 1.0, 0.0)
    pairs.append(("cuped", _cuped(ya, xa, True), _cuped(yb, xb, True)))

    configs = [
        {},
        {"prior": {"mean": 0.0, "variance": 0.01, "proper": True}},
        {"prior": {"mean": 0.02, "variance": 0.3**2, "proper": True}, "alpha": 0.1},
        {"prior": {"mean": 0.5, "variance": 4.0, "proper": True}, "prior_type": "absolute"},
        {"inverse": True},
        {"inverse": True, "prior": {"mean": -0.01, "variance": 0.05, "proper": True}},
    ]
    cases = []
    for i, (stat, a, b) in enumerate(pairs):
        for j, config in enumerate(configs):
            if (i + j) % 2 == 0 or j in (0, 1):
                cases.append({"stat": stat, "test": "bayesian", "a": a, "b": b, "config": config})
    # quantile metrics (gbstats QuantileStatistic) through all three tests
    for n_a, n_b, nu in [(500, 520, 0.9), (20_000, 19_000, 0.5), (3000, 3100, 0.99)]:
        a = _quantile(rng.lognormal(3, 0.8, n_a), nu)
        b = _quantile(rng.lognormal(3.05, 0.8, n_b), nu)
        for test, config in [("ttest", {}), ("sequential", {}), ("bayesian", {}), ("bayesian", configs[1])]:
            cases.append({"stat": "quantile", "test": test, "a": a, "b": b, "config": config})
    return cases


CASES = make_cases()


def _prior(config: dict[str, Any]) -> bayesian.GaussianPrior:
    p = config.get("prior", {})
    return bayesian.GaussianPrior(
        mean=p.get("mean", 0.0),
        variance=p.get("variance", 1.0),
        proper=p.get("proper", False),
        scale=config.get("prior_type", "relative"),
    )


def _qstats(d: dict[str, Any]) -> quantile.QuantileStats:
    return quantile.QuantileStats(d["n"], d["nu"], d["quantile"], d["lower"], d["upper"], d["n_star"])


def ours(case: dict[str, Any]) -> Comparison:
    config = case["config"]
    kw = {
        "prior": _prior(config),
        "alpha": config.get("alpha", 0.05),
        "inverse": config.get("inverse", False),
    }
    if case["stat"] == "quantile":
        a, b = _qstats(case["a"]), _qstats(case["b"])
        if case["test"] == "ttest":
            return quantile.welch(a, b)
        if case["test"] == "sequential":
            return quantile.sequential_welch(a, b)
        return quantile.bayes(a, b, **kw)
    a, b = _stats(case, "a"), _stats(case, "b")
    fn: dict[str, Callable[..., Comparison]] = {
        "mean": bayesian.means,
        "proportion": bayesian.means,
        "ratio": bayesian.ratio,
        "cuped": bayesian.cuped,
    }
    return fn[case["stat"]](a, b, **kw)


def numbers(c: Comparison, kind: str, bayes: bool) -> dict[str, float]:
    def f(x: Any) -> float:
        return float(np.asarray(x))

    rel = kind == "relative"
    out = {
        "expected": f(c.effect_relative if rel else c.effect),
        "ci_low": f(c.ci_low_relative if rel else c.ci_low),
        "ci_high": f(c.ci_high_relative if rel else c.ci_high),
        "stddev": f(c.se_relative if rel else c.se),
    }
    if bayes:
        out["chance_to_win"] = f(c.chance_to_win if rel else c.extra["chance_to_win_absolute"])
        out["risk_control"] = f(c.risk_control if rel else c.extra["risk_control_absolute"])
        out["risk_treatment"] = f(c.risk_treatment if rel else c.extra["risk_treatment_absolute"])
    else:
        out["p_value"] = f(c.p_value_relative if rel else c.p_value)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if not GB_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("gbstats venv missing")
        pytest.skip("gbstats venv missing: run `make gbstats-venv`")
    tmp = tmp_path_factory.mktemp("gbstats-bayes")
    (tmp / "in.json").write_text(json.dumps(CASES))
    subprocess.run(
        [str(GB_PYTHON), str(SCRIPT), str(tmp / "in.json"), str(tmp / "out.json")],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return json.loads((tmp / "out.json").read_text())


@pytest.mark.parametrize(
    "index", range(len(CASES)), ids=[f"{c['stat']}-{c['test']}-{i}" for i, c in enumerate(CASES)]
)
def test_agrees_with_gbstats(reference, index):
    case = CASES[index]
    c = ours(case)
    bayes = case["test"] == "bayesian"
    assert not bool(np.asarray(c.not_enough_data)), c.reason
    for kind in ("absolute", "relative"):
        gb = reference[index][kind]
        assert gb.get("error_message") is None, gb
        expected = {
            "expected": gb["expected"],
            "ci_low": gb["ci"][0],
            "ci_high": gb["ci"][1],
            "stddev": gb["uplift"]["stddev"],
        }
        if bayes:
            expected |= {
                "chance_to_win": gb["chance_to_win"],
                "risk_control": gb["risk"][0],
                "risk_treatment": gb["risk"][1],
            }
        else:
            expected["p_value"] = gb["p_value"]
        got = numbers(c, kind, bayes)
        for name, value in expected.items():
            assert math.isclose(got[name], value, rel_tol=REL, abs_tol=ABS), (
                f"{case['stat']} {case['test']} {case['config']} {kind} {name}: ours {got[name]!r} gbstats {value!r}"
            )


def test_case_coverage():
    kinds = {(c["stat"], c["test"]) for c in CASES}
    for stat in ("mean", "proportion", "ratio", "cuped", "quantile"):
        assert (stat, "bayesian") in kinds
    assert sum(c["test"] == "bayesian" for c in CASES) >= 30


# --- closed forms and not-enough-data ------------------------------------------------------------


def test_risk_matches_numerical_integration():
    mu, sd = 0.3, 1.2
    x = np.linspace(mu - 12 * sd, mu + 12 * sd, 400_001)
    pdf = np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    dx = x[1] - x[0]
    rc, rt = bayesian.risk(mu, sd)
    assert float(rc) == pytest.approx(np.sum(np.maximum(x, 0) * pdf) * dx, rel=1e-6)
    assert float(rt) == pytest.approx(np.sum(np.maximum(-x, 0) * pdf) * dx, rel=1e-6)
    # E[max(X,0)] - E[max(-X,0)] = E[X]
    assert float(rc - rt) == pytest.approx(mu, rel=1e-12)


def test_not_enough_data_elements_never_crash():
    a = MeanStats([0, 1, 10, 10, 10, np.nan], [0, 1, 5, 50, 0, 1], [0, 1, 2.5, 250, 10, 1])
    b = MeanStats([10, 10, 10, 10, 10, 10], [5, 6, 7, 60, 5, 5], [3, 5, 9, 400, 5, 5])
    c = bayesian.means(a, b)
    assert c.not_enough_data.tolist() == [True, True, True, True, False, True]
    assert list(c.reason[:4]) == [
        "zero or negative count",
        "fewer than 2 units in a variation",
        "zero variance",
        "zero variance",
    ]
    assert np.isnan(np.asarray(c.chance_to_win)[:4]).all() and np.isnan(c.effect[:4]).all()
    # control mean zero: absolute effect exists, relative does not
    assert not c.not_enough_data[4] and np.isfinite(c.effect[4]) and np.isnan(c.effect_relative[4])
    assert "control mean is zero" in c.reason[4]
    assert np.isnan(c.p_value).all()  # a chance to win is not a p-value


def test_bad_prior_is_refused():
    with pytest.raises(ValueError, match="prior variance"):
        bayesian.GaussianPrior(0.0, 0.0, proper=True)


def test_proper_prior_shrinks_towards_prior_mean():
    a = MeanStats(50, 500, 5200)
    b = MeanStats(50, 540, 6100)
    flat = bayesian.means(a, b)
    tight = bayesian.means(a, b, prior=bayesian.GaussianPrior.from_stddev(0.0, 0.01))
    assert abs(float(tight.effect_relative)) < abs(float(flat.effect_relative))
    assert float(tight.se_relative) < float(flat.se_relative)


def test_sequential_quantile_is_wider():
    rng = np.random.default_rng(1)
    a = quantile.QuantileStats.from_values(rng.exponential(1, 5000), 0.9)
    b = quantile.QuantileStats.from_values(rng.exponential(1.1, 5000), 0.9)
    fixed, seq = quantile.welch(a, b), quantile.sequential_welch(a, b)
    assert float(seq.ci_high - seq.ci_low) > float(fixed.ci_high - fixed.ci_low)
    assert sequential.DEFAULT_TUNING == 5000


# --- properties ----------------------------------------------------------------------------------

arm = st.tuples(
    st.integers(5, 100_000), st.floats(-50, 50).filter(lambda m: m == 0 or abs(m) > 1e-3), st.floats(0.1, 20)
)  # n, mean, sd


def _arm(n: int, mean: float, sd: float) -> MeanStats:
    s = mean * n
    return MeanStats(n, s, sd * sd * (n - 1) + s * s / n)


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(arm, arm)
def test_swapping_variations_negates_effect(x, y):
    a, b = _arm(*x), _arm(*y)
    ab, ba = bayesian.means(a, b, scale="absolute"), bayesian.means(b, a, scale="absolute")
    assert float(ab.effect) == pytest.approx(-float(ba.effect), rel=1e-9, abs=1e-9)
    assert float(ab.ci_low) == pytest.approx(-float(ba.ci_high), rel=1e-9, abs=1e-9)
    assert float(np.asarray(ab.chance_to_win)) == pytest.approx(
        1 - float(np.asarray(ba.chance_to_win)), abs=1e-9
    )
    assert float(np.asarray(ab.risk_control)) == pytest.approx(
        float(np.asarray(ba.risk_treatment)), rel=1e-9, abs=1e-9
    )


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(arm, arm, st.floats(0.001, 1000))
def test_scaling_units_scales_effects(x, y, k):
    a, b = _arm(*x), _arm(*y)
    ka = MeanStats(a.n, a.sum * k, a.sum_squares * k * k)
    kb = MeanStats(b.n, b.sum * k, b.sum_squares * k * k)
    c, ck = bayesian.means(a, b), bayesian.means(ka, kb)
    assert float(ck.effect) == pytest.approx(k * float(c.effect), rel=1e-7, abs=1e-9)
    assert float(ck.se) == pytest.approx(k * float(c.se), rel=1e-7)
    if np.isfinite(c.effect_relative):
        assert float(ck.effect_relative) == pytest.approx(float(c.effect_relative), rel=1e-7, abs=1e-12)
        assert float(np.asarray(ck.chance_to_win)) == pytest.approx(
            float(np.asarray(c.chance_to_win)), abs=1e-7
        )


@settings(max_examples=40, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(arm, arm, st.integers(2, 100))
def test_more_data_shrinks_the_interval(x, y, k):
    a, b = _arm(*x), _arm(*y)
    big_a, big_b = _arm(x[0] * k, x[1], x[2]), _arm(y[0] * k, y[1], y[2])
    c, big = bayesian.means(a, b), bayesian.means(big_a, big_b)
    assert float(big.ci_high - big.ci_low) < float(c.ci_high - c.ci_low)


ERROR_CASES: list[dict[str, Any]] = [
    # n = 1 in control: zero variance
    {
        "stat": "mean",
        "a": {"n": 1, "sum": 3.0, "sum_squares": 9.0},
        "b": {"n": 20, "sum": 70.0, "sum_squares": 300.0},
    },
    # every value equal: zero variance
    {
        "stat": "mean",
        "a": {"n": 10, "sum": 50.0, "sum_squares": 250.0},
        "b": {"n": 20, "sum": 70.0, "sum_squares": 300.0},
    },
    # no conversions in control: zero variance and a zero baseline
    {"stat": "proportion", "a": {"n": 500, "sum": 0}, "b": {"n": 500, "sum": 4}},
]


def test_zero_control_mean_gives_the_absolute_effect_only():
    # gbstats 0.8.0 raises ZeroDivisionError here (it rescales the prior by the control mean, even a
    # flat one); we give the absolute effect with a flat prior and "not enough data" with a proper
    # relative prior, which has no absolute scale when the control mean is 0.
    a, b = MeanStats(10, 0.0, 40.0), MeanStats(10, 5.0, 45.0)
    flat = bayesian.means(a, b)
    assert not bool(flat.not_enough_data) and float(flat.effect) == pytest.approx(0.5)
    assert np.isnan(flat.effect_relative) and "control mean is zero" in str(flat.reason)
    assert 0.5 < float(np.asarray(flat.extra["chance_to_win_absolute"])) < 1
    proper = bayesian.means(a, b, prior=bayesian.GaussianPrior.from_stddev(0, 0.1))
    assert (
        bool(proper.not_enough_data) and np.isnan(proper.effect) and "no absolute scale" in str(proper.reason)
    )
    absolute_prior = bayesian.means(a, b, prior=bayesian.GaussianPrior.from_stddev(0, 1.0, scale="absolute"))
    assert not bool(absolute_prior.not_enough_data) and np.isfinite(absolute_prior.effect)


def test_where_gbstats_gives_up_we_say_not_enough_data(tmp_path):
    if not GB_PYTHON.exists():
        pytest.skip("gbstats venv missing")
    cases = [{**c, "test": "bayesian", "config": {}} for c in ERROR_CASES]
    (tmp_path / "in.json").write_text(json.dumps(cases))
    subprocess.run(
        [str(GB_PYTHON), str(SCRIPT), str(tmp_path / "in.json"), str(tmp_path / "out.json")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    reference = json.loads((tmp_path / "out.json").read_text())
    for case, gb in zip(cases, reference, strict=True):
        c = ours(case)
        assert gb["relative"]["error_message"] is not None
        assert gb["absolute"]["error_message"] is not None
        assert bool(c.not_enough_data) and str(c.reason) != ""
        assert np.isnan(c.effect_relative).all() and np.isnan(np.asarray(c.chance_to_win)).all()
