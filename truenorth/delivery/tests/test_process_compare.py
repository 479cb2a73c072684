"""The pure before/after comparison (delivery/process_compare.py): every interval checked against an
independent reference (scipy, statsmodels or the formula by hand), and the verdicts on hand-made windows."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from truenorth.delivery import dora
from truenorth.delivery import process_compare as pc

BEFORE_CYCLES = [5.0, 6.5, 7.0, 8.0, 6.0, 9.5, 7.5, 6.8, 8.2, 5.5, 7.2, 6.1]
AFTER_CYCLES = [2.0, 2.5, 3.0, 1.8, 2.2, 3.5, 2.7, 2.1, 2.9, 3.1, 2.4, 1.9]


def test_rate_ratio_is_the_exact_conditional_interval() -> None:
    found = pc.rate_ratio(20, 6.0, 40, 6.0)
    assert found.estimate == pytest.approx(2.0)
    ci = stats.binomtest(40, 60).proportion_ci(confidence_level=0.95, method="exact")
    assert found.low == pytest.approx(ci.low / (1 - ci.low), rel=1e-9)
    assert found.high == pytest.approx(ci.high / (1 - ci.high), rel=1e-9)
    # unequal exposure: the odds are rescaled by t_before / t_after
    other = pc.rate_ratio(12, 4.0, 30, 6.0)
    ci = stats.binomtest(30, 42).proportion_ci(method="exact")
    assert other.estimate == pytest.approx((30 / 6) / (12 / 4))
    assert other.low == pytest.approx(ci.low / (1 - ci.low) * 4 / 6, rel=1e-9)
    assert other.high == pytest.approx(ci.high / (1 - ci.high) * 4 / 6, rel=1e-9)
    with pytest.raises(ValueError):
        pc.rate_ratio(0, 6.0, 4, 6.0)


def test_newcombe_difference_matches_statsmodels() -> None:
    for k1, n1, k2, n2 in ((3, 20, 1, 25), (0, 10, 4, 12), (5, 5, 0, 8), (7, 30, 7, 30)):
        found = pc.newcombe_difference(k1, n1, k2, n2)
        low, high = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff")
        assert found.estimate == pytest.approx(k2 / n2 - k1 / n1)
        assert found.low == pytest.approx(low, abs=1e-9)
        assert found.high == pytest.approx(high, abs=1e-9)


def test_log_mean_ratio_matches_welch_on_the_logs() -> None:
    found = pc.log_mean_ratio(BEFORE_CYCLES, AFTER_CYCLES)
    assert isinstance(found, pc.Interval)
    t = stats.ttest_ind(np.log(AFTER_CYCLES), np.log(BEFORE_CYCLES), equal_var=False)
    ci = t.confidence_interval(0.95)
    assert found.low == pytest.approx(math.exp(ci.low), rel=1e-9)
    assert found.high == pytest.approx(math.exp(ci.high), rel=1e-9)
    geo = math.exp(np.mean(np.log(AFTER_CYCLES)) - np.mean(np.log(BEFORE_CYCLES)))
    assert found.estimate == pytest.approx(geo)


def _bracket_by_hand(values: list[float], nu: float) -> tuple[float, float, int]:
    x = np.sort(values)
    n = len(x)
    z = stats.norm.ppf(0.975)
    half = z * math.sqrt(nu * (1 - nu) / n)
    q, lo, hi = (np.quantile(x, p, method="inverted_cdf") for p in (nu, nu - half, nu + half))
    var_q = ((hi - lo) / (2 * z)) ** 2  # Var of the sample quantile
    return float(q), float(var_q), n


def test_quantile_difference_is_welch_on_the_order_statistic_bracket() -> None:
    found = pc.quantile_difference(BEFORE_CYCLES, AFTER_CYCLES, 0.5)
    assert isinstance(found, pc.Interval)
    qa, va, na = _bracket_by_hand(BEFORE_CYCLES, 0.5)
    qb, vb, nb = _bracket_by_hand(AFTER_CYCLES, 0.5)
    # per-unit variances (n - 1)·Var(q̂) as the engine; Welch-Satterthwaite degrees of freedom
    ua, ub = (na - 1) * va, (nb - 1) * vb
    se = math.sqrt(ub / nb + ua / na)
    df = (ub / nb + ua / na) ** 2 / ((ub / nb) ** 2 / (nb - 1) + (ua / na) ** 2 / (na - 1))
    t = stats.t.ppf(0.975, df)
    assert found.estimate == pytest.approx(qb - qa)
    assert found.low == pytest.approx(qb - qa - t * se, rel=1e-9)
    assert found.high == pytest.approx(qb - qa + t * se, rel=1e-9)


def _by_key(effects: list[pc.Effect]) -> dict[str, pc.Effect]:
    return {e.key: e for e in effects}


def test_a_clear_improvement_is_better_with_an_interval_excluding_no_effect() -> None:
    before = pc.WindowData(
        days=42, cycle_days=BEFORE_CYCLES, done=12, deployments=12, failed=4, lead_hours=[30.0] * 6, wip=9
    )
    after = pc.WindowData(
        days=42, cycle_days=AFTER_CYCLES * 3, done=36, deployments=40, failed=1, lead_hours=[5.0] * 6, wip=4
    )
    found = _by_key(pc.compare(before, after))
    p50 = found["cycle_time_p50"]
    assert p50.verdict == pc.BETTER and p50.high is not None and p50.high < 0
    assert p50.before == pytest.approx(6.8) and p50.after == pytest.approx(2.4)  # inverted-CDF quantiles
    assert found["cycle_time_geomean"].verdict == pc.BETTER
    assert found["cycle_time_geomean"].high is not None and found["cycle_time_geomean"].high < 1
    assert found["throughput"].verdict == pc.BETTER and found["throughput"].effect == pytest.approx(3.0)
    assert found["deployment_frequency"].verdict == pc.BETTER
    cfr = found["change_failure_rate"]
    assert cfr.effect == pytest.approx(1 / 40 - 4 / 12)
    assert cfr.verdict == pc.BETTER and cfr.high is not None and cfr.high < 0
    assert found["wip"].verdict == pc.NOT_TESTED and found["wip"].low is None
    # constant lead times: zero variance, which the engine refuses rather than inventing an interval
    assert found["lead_time"].verdict == pc.TOO_LITTLE and found["lead_time"].low is None
    assert found["time_to_restore"].verdict == pc.TOO_LITTLE
    assert "0 restores before" in found["time_to_restore"].reason


def test_no_change_is_unclear() -> None:
    window = pc.WindowData(days=42, cycle_days=BEFORE_CYCLES, done=12, deployments=10, failed=2)
    found = _by_key(pc.compare(window, window))
    for key in (
        "cycle_time_p50",
        "cycle_time_geomean",
        "throughput",
        "deployment_frequency",
        "change_failure_rate",
    ):
        e = found[key]
        assert e.verdict == pc.UNCLEAR, key
        assert e.low is not None and e.high is not None and e.low < e.high
    assert found["throughput"].effect == pytest.approx(1.0)
    assert found["cycle_time_p50"].effect == pytest.approx(0.0)


def test_too_little_data_says_so_without_an_interval() -> None:
    before = pc.WindowData(days=42, cycle_days=[3.0, 4.0], done=2, deployments=0)
    after = pc.WindowData(days=42, cycle_days=[1.0], done=0, deployments=3, failed=1)
    found = pc.compare(before, after)
    for e in found:
        if e.key == "wip":
            continue
        assert e.verdict == pc.TOO_LITTLE, e.key
        assert (e.effect, e.low, e.high) == (None, None, None)
        assert e.reason
    by = _by_key(found)
    assert by["cycle_time_p50"].reason.startswith("2 items before and 1 after")
    assert "rate of 0" in by["throughput"].reason
    # the engine's own limit: a p85 needs more values than a median
    eight = pc.WindowData(days=42, cycle_days=BEFORE_CYCLES[:8], done=8)
    p85 = _by_key(pc.compare(eight, eight))["cycle_time_p85"]
    assert p85.verdict == pc.TOO_LITTLE and "bracket" in p85.reason


def test_as_dict_is_json_ready() -> None:
    e = _by_key(pc.compare(pc.WindowData(days=7), pc.WindowData(days=7)))["throughput"]
    out = e.as_dict()
    assert out["verdict"] == pc.TOO_LITTLE and out["before"] == 0.0 and out["effect"] is None


def test_dora_samples_follow_the_dora_rules() -> None:
    t = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

    def h(hours: float) -> dt.datetime:
        return t + dt.timedelta(hours=hours)

    deployments = [
        dora.DeploymentRecord("1", h(10), True, commit_shas=("a", "b")),
        dora.DeploymentRecord("2", h(20), False, service="s"),
        dora.DeploymentRecord("3", h(26), True, service="s", commit_shas=("c",)),
        dora.DeploymentRecord("4", h(30), True, "staging"),
        dora.DeploymentRecord("5", h(40), True, run_id="r"),
        dora.DeploymentRecord("6", h(41), True, run_id="r"),
    ]
    commits = [dora.CommitRecord("a", h(0)), dora.CommitRecord("b", h(4)), dora.CommitRecord("c", h(22))]
    incidents = [dora.IncidentRecord("i", h(11), h(14), "1")]
    found = pc.dora_samples(deployments, commits, [], incidents, start=t, end=h(48))
    assert (found.deployments, found.failed) == (4, 2)
    # deployment 1 is failed (an incident names it): its commits are not delivered by it
    assert sorted(found.lead_hours) == [4.0]
    # the incident (3 h) and failed deployment 2, restored by the next success of its service (6 h)
    assert sorted(found.restore_hours) == [3.0, 6.0]
    reference = dora.dora_metrics(deployments, commits, [], incidents, start=t, end=h(48))
    assert reference.lead_time_hours == pytest.approx(float(np.median(found.lead_hours)))
    assert reference.time_to_restore_hours == pytest.approx(float(np.median(found.restore_hours)))
    assert reference.deployments == found.deployments
