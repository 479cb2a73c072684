"""Every p-value shown belongs to the interval shown beside it (issue 9 items 5 and 6).

For every method x correction x family, on random tables of many metrics whose effects sit near the
decision boundary: on each scale the interval excludes 0 exactly when its p-value is below alpha, for
the uncorrected and the corrected numbers alike; ``significant`` agrees with the reported scale's
corrected interval; a Bayesian credible interval excludes 0 exactly when the chance to win is beyond
alpha/2 on either side. Both scales' numbers are always there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truenorth.stats import engine

ALPHA = 0.05
ROLES = ("primary", "secondary", "secondary", "guardrail", "guardrail", "secondary")


def random_table(seed: int, metrics: int = 12) -> list[dict[str, Any]]:
    """Means, proportions, ratios and zero-control metrics over three variations; each treatment's
    effect is a random number of standard errors (0 to 6), so many p-values land near the boundary."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(metrics):
        kind = int(rng.integers(0, 4))
        role = ROLES[i % len(ROLES)]
        n_c = float(rng.integers(20, 5000))
        for v in ("control", "B", "C"):
            n = n_c if v == "control" else float(rng.integers(20, 5000))
            z = 0.0 if v == "control" else float(rng.uniform(0, 6)) * (1 if rng.random() < 0.5 else -1)
            row: dict[str, Any] = {"metric": f"m{i}", "variation": v, "role": role, "n": n}
            if kind == 0:  # proportion
                p = 0.1 + z * math.sqrt(0.09 * 2 / min(n, n_c))
                c = float(round(min(max(p, 0.001), 0.999) * n))
                row.update(sum=c, sum_squares=c)
            else:
                sd = float(rng.uniform(0.5, 3))
                base = 0.0 if kind == 3 else 10.0
                mean = base + z * sd * math.sqrt(2 / min(n, n_c))
                row.update(sum=mean * n, sum_squares=sd * sd * (n - 1) + mean * mean * n)
                if kind == 2:  # ratio
                    d = float(rng.uniform(1, 3))
                    row.update(
                        denominator_sum=d * n,
                        denominator_sum_squares=(d * d + 0.5) * n,
                        main_denominator_sum_product=(mean * d + 0.3) * n,
                    )
            rows.append(row)
    return rows


def _excludes_zero(low: float, high: float) -> bool:
    return low > 0 or high < 0


def _near(p: float) -> bool:
    """p-values within 1e-9 of alpha: floating point decides; skip them."""
    return abs(p - ALPHA) < 1e-9


def check_agreement(rows: list[engine.ResultRow], method: str) -> int:
    """Assert the agreement on every row; returns how many rows were checked."""
    checked = 0
    for r in rows:
        if r.not_enough_data:
            continue
        checked += 1
        # both scales are always present (relative is NaN only without a control mean)
        assert not math.isnan(r.effect)
        if method == "bayesian":
            assert not r.significant and math.isnan(r.p_value_absolute) and math.isnan(r.p_value_relative)
            for scale, low, high in (
                ("absolute", r.ci_low, r.ci_high),
                ("relative", r.ci_low_relative, r.ci_high_relative),
            ):
                ctw = getattr(r, f"chance_to_win_{scale}")
                if math.isnan(low):
                    assert scale == "relative" and math.isnan(ctw)
                    continue
                assert 0 <= ctw <= 1
                assert not math.isnan(getattr(r, f"risk_treatment_{scale}"))
                decisive = ctw > 1 - ALPHA / 2 or ctw < ALPHA / 2
                if abs(ctw - (1 - ALPHA / 2)) > 1e-9 and abs(ctw - ALPHA / 2) > 1e-9:
                    assert _excludes_zero(low, high) == decisive, (r, scale)
            continue
        pairs = [
            (r.p_value_absolute, r.ci_low, r.ci_high),
            (r.p_value_absolute_adjusted, r.ci_low_absolute_adjusted, r.ci_high_absolute_adjusted),
            (r.p_value_relative, r.ci_low_relative, r.ci_high_relative),
            (r.p_value_relative_adjusted, r.ci_low_relative_adjusted, r.ci_high_relative_adjusted),
            (r.p_value_adjusted, r.ci_low_adjusted, r.ci_high_adjusted),
        ]
        for p, low, high in pairs:
            if math.isnan(p):
                assert math.isnan(low) and r.scale == "absolute"  # no relative effect
                continue
            if not _near(p):
                assert _excludes_zero(low, high) == (p < ALPHA), (r, p, low, high)
        if not _near(r.p_value_adjusted):
            assert r.significant == _excludes_zero(r.ci_low_adjusted, r.ci_high_adjusted), r
        # the reported numbers are the reported scale's
        if r.scale == "relative":
            assert r.p_value_adjusted == r.p_value_relative_adjusted
            assert r.ci_low_adjusted == r.ci_low_relative_adjusted
        else:
            assert r.p_value_adjusted == r.p_value_absolute_adjusted
            assert r.ci_low_adjusted == r.ci_low_absolute_adjusted
    return checked


@pytest.mark.parametrize("method", engine.METHODS)
@pytest.mark.parametrize("correction", [None, *engine.CORRECTIONS])
@pytest.mark.parametrize("family", engine.FAMILIES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_every_interval_excludes_zero_exactly_when_its_p_value_is_significant(
    method: str, correction: str | None, family: str, seed: int
) -> None:
    rows = engine.analyze(
        random_table(seed),
        method=method,  # type: ignore[arg-type]
        correction=correction,  # type: ignore[arg-type]
        family=family,  # type: ignore[arg-type]
        alpha=ALPHA,
    )
    assert check_agreement(rows, method) > 0


@pytest.mark.parametrize("correction", engine.CORRECTIONS)
def test_sequential_corrected_intervals_agree_on_many_tables_near_the_boundary(correction: str) -> None:
    """The regression of issue 9 item 6: the corrected always-valid interval keeps the mixture's rho."""
    checked = 0
    for seed in range(300):
        rows = engine.analyze(random_table(seed), method="sequential", correction=correction)  # type: ignore[arg-type]
        checked += check_agreement(rows, "sequential")
    assert checked > 5000


def test_corrections_run_within_each_role_by_default_and_say_so() -> None:
    rows = random_table(7, metrics=6)  # roles: primary, 3 secondary, 2 guardrail
    by_role = engine.analyze(rows)
    primary = [r for r in by_role if r.family == "primary"]
    assert {r.metric for r in primary} == {"m0"} and len(primary) == 2  # one metric, two treatments
    raw = {(r.metric, r.variation): r for r in engine.analyze(rows, correction=None)}
    everything = {(r.metric, r.variation): r for r in engine.analyze(rows, family="all")}
    for r in primary:
        assert r.family_size == 2
        assert r.p_value_adjusted <= everything[(r.metric, r.variation)].p_value_adjusted
        assert r.p_value_adjusted >= raw[(r.metric, r.variation)].p_value
    assert engine.correction_summary(by_role) == (
        "Holm across 2 primary comparisons (1 metric x 2 variations); "
        "Holm across 6 secondary comparisons (3 metrics x 2 variations); "
        "Holm across 4 guardrail comparisons (2 metrics x 2 variations)"
    )
    one_treatment = [r for r in rows if r["variation"] != "C"]
    assert engine.correction_summary(engine.analyze(one_treatment)) == (
        "Primary uncorrected (one metric); Holm across 3 secondary metrics; Holm across 2 guardrail metrics"
    )
    assert engine.correction_summary(engine.analyze(one_treatment, correction="bh", family="all")) == (
        "Benjamini-Hochberg across 6 metrics"
    )
    no_roles = [{k: v for k, v in r.items() if k != "role"} for r in one_treatment]
    assert {r.family for r in engine.analyze(no_roles)} == {"all"}
