"""Frequentist two-sample tests: Welch's t-test on means, proportions, ratio metrics and CUPED.

Numbers follow GrowthBook's gbstats 0.8.0 (``TwoSidedTTest`` and friends):

* absolute effect ``D = mean_B - mean_A`` with variance ``s²_B/n_B + s²_A/n_A``;
* relative effect ``D / mean_A`` with delta-method variance
  ``s²_B / (mean_A² n_B) + s²_A mean_B² / (mean_A⁴ n_A)`` (for CUPED ``mean`` are the unadjusted means there);
* Welch-Satterthwaite degrees of freedom (from the absolute variances) for both;
* two-sided intervals ``effect ± t_{1-alpha/2, df} * se`` and p-values ``2*(1 - T_df(|effect/se|))``.

``p_value`` tests the absolute effect, ``p_value_relative`` the relative one (they differ slightly
because the delta-method variance is not a rescaled absolute variance).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import special

from truenorth.stats.summary import (
    ArrayLike,
    Comparison,
    CupedStats,
    FloatArray,
    MeanStats,
    RatioStats,
    as_array,
    broadcast_shape,
    check_inputs,
    finite_or_nan,
)

Alternative = Literal["two-sided", "greater", "less"]


def _f(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def welch_df(var_a: FloatArray, n_a: FloatArray, var_b: FloatArray, n_b: FloatArray) -> FloatArray:
    """Welch-Satterthwaite degrees of freedom."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _f(
            (var_b / n_b + var_a / n_a) ** 2
            / (var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1)))
        )


def _p_value(z: FloatArray, df: FloatArray, alternative: Alternative) -> FloatArray:
    # scipy.special's Student t functions directly: the same numbers as scipy.stats.t, less overhead
    if alternative == "greater":
        return _f(special.stdtr(df, -z))
    if alternative == "less":
        return _f(special.stdtr(df, z))
    return _f(2 * special.stdtr(df, -np.abs(z)))


def _critical(df: FloatArray, alpha: FloatArray, alternative: Alternative) -> FloatArray:
    """The t quantile for the interval: 1 - alpha/2 (two-sided) or 1 - alpha (one-sided)."""
    return _f(special.stdtrit(df, 1 - alpha / 2 if alternative == "two-sided" else 1 - alpha))


def _interval(
    effect: FloatArray, se: FloatArray, crit: FloatArray, alternative: Alternative
) -> tuple[FloatArray, FloatArray]:
    width = _f(crit * se)
    if alternative == "two-sided":
        return effect - width, effect + width
    if alternative == "greater":
        return effect - width, _f(np.full_like(effect, np.inf))
    return _f(np.full_like(effect, -np.inf)), effect + width


def t_interval(
    effect: FloatArray, se: FloatArray, df: FloatArray, alpha: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Two-sided t interval at ``alpha`` (used by the multiple-comparison corrections)."""
    return _interval(effect, se, _critical(df, as_array(alpha), "two-sided"), "two-sided")


def _validity(
    raw: list[FloatArray],
    derived: list[FloatArray],
    n_a: FloatArray,
    n_b: FloatArray,
    var_a: FloatArray,
    var_b: FloatArray,
    shape: tuple[int, ...],
    extra: tuple[tuple[ArrayLike, str], ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    def non_finite(arrays: list[FloatArray]) -> np.ndarray:
        out = np.zeros(shape, dtype=np.bool_)
        for x in arrays:
            out = out | ~np.isfinite(np.broadcast_to(x, shape))
        return out

    with np.errstate(invalid="ignore"):
        return check_inputs(
            ((n_a <= 0) | (n_b <= 0), "zero or negative count"),
            ((n_a < 2) | (n_b < 2), "fewer than 2 units in a variation"),
            (non_finite(raw), "NaN or infinite input"),
            *extra,
            (~(var_a > 0) | ~(var_b > 0), "zero variance"),
            (non_finite(derived), "means or variances are not finite"),
            shape=shape,
        )


def compare(
    mean_a: ArrayLike,
    var_a: ArrayLike,
    n_a: ArrayLike,
    mean_b: ArrayLike,
    var_b: ArrayLike,
    n_b: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    alternative: Alternative = "two-sided",
    method: str = "welch",
    unadjusted_mean_a: ArrayLike | None = None,
    unadjusted_mean_b: ArrayLike | None = None,
    inputs: list[FloatArray] | None = None,
    extra_checks: tuple[tuple[ArrayLike, str], ...] = (),
) -> Comparison:
    """Welch comparison from per-arm means, per-unit variances and counts (the common core).

    ``unadjusted_mean_*`` are the means the relative effect is scaled by (CUPED); default: the means.
    """
    ma, va, na, mb, vb, nb = (as_array(x) for x in (mean_a, var_a, n_a, mean_b, var_b, n_b))
    ua = ma if unadjusted_mean_a is None else as_array(unadjusted_mean_a)
    ub = mb if unadjusted_mean_b is None else as_array(unadjusted_mean_b)
    al = as_array(alpha)
    shape = broadcast_shape(ma, va, na, mb, vb, nb, ua, ub, al)
    derived = [ma, va, mb, vb, ua, ub]
    raw = [na, nb, al, *(derived if inputs is None else inputs)]
    bad, reason = _validity(raw, derived, na, nb, va, vb, shape, extra_checks)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        effect = mb - ma
        var_abs = vb / nb + va / na
        se = np.sqrt(var_abs)
        df = welch_df(va, na, vb, nb)
        effect_rel = effect / ua
        var_rel = vb / (ua**2 * nb) + va * ub**2 / (ua**4 * na)
        se_rel = np.sqrt(var_rel)
        p = _p_value(_f(effect / se), df, alternative)
        p_rel = _p_value(_f(effect_rel / se_rel), df, alternative)
        crit = _critical(df, al, alternative)  # shared by the absolute and relative intervals
        lo, hi = _interval(_f(effect), _f(se), crit, alternative)
        lo_r, hi_r = _interval(_f(effect_rel), _f(se_rel), crit, alternative)
    zero_control = np.broadcast_to(ua == 0, shape) & ~bad
    reason = np.where(zero_control, "control mean is zero: no relative effect", reason)

    def rel(x: ArrayLike) -> FloatArray:
        return finite_or_nan(x, bad | zero_control)

    return Comparison(
        effect=finite_or_nan(effect, bad),
        effect_relative=rel(effect_rel),
        ci_low=finite_or_nan(lo, bad),
        ci_high=finite_or_nan(hi, bad),
        ci_low_relative=rel(lo_r),
        ci_high_relative=rel(hi_r),
        se=finite_or_nan(se, bad),
        se_relative=rel(se_rel),
        p_value=finite_or_nan(p, bad),
        p_value_relative=rel(p_rel),
        alpha=_f(np.broadcast_to(al, shape)),
        method=method if alternative == "two-sided" else f"{method} ({alternative})",
        not_enough_data=bad,
        reason=reason,
        control_mean=finite_or_nan(ma, bad),
        treatment_mean=finite_or_nan(mb, bad),
        df=finite_or_nan(df, bad),
    )


def welch(
    control: MeanStats,
    treatment: MeanStats,
    *,
    alpha: ArrayLike = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Welch two-sample t-test on the difference in means (gbstats ``TwoSidedTTest``)."""
    return compare(
        control.mean,
        control.variance,
        control.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        alpha=alpha,
        alternative=alternative,
        method="proportion" if control.is_proportion else "welch",
        inputs=[control.sum, control.sum_squares, treatment.sum, treatment.sum_squares],
    )


def proportion(
    control_n: ArrayLike,
    control_conversions: ArrayLike,
    treatment_n: ArrayLike,
    treatment_conversions: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """The same test on 0/1 values, variance p(1 - p) (gbstats ``ProportionStatistic``).

    Conversions outside [0, n] are reported as not enough data.
    """
    a = MeanStats.proportion(control_n, control_conversions)
    b = MeanStats.proportion(treatment_n, treatment_conversions)
    with np.errstate(invalid="ignore"):
        out_of_range = (a.sum < 0) | (a.sum > a.n) | (b.sum < 0) | (b.sum > b.n)
    return compare(
        a.mean,
        a.variance,
        a.n,
        b.mean,
        b.variance,
        b.n,
        alpha=alpha,
        alternative=alternative,
        method="proportion",
        inputs=[a.sum, b.sum],
        extra_checks=((_f(out_of_range), "conversions outside 0..n"),),
    )


def ratio(
    control: RatioStats,
    treatment: RatioStats,
    *,
    alpha: ArrayLike = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Ratio metric (Σm / Σd) by the delta method with the numerator/denominator cross-product
    (gbstats ``RatioStatistic``). Also the analysis of cluster-randomised experiments: one row per
    cluster, m = the cluster's metric total, d = its number of analysis units."""
    with np.errstate(invalid="ignore"):
        zero_d = (control.denominator.mean == 0) | (treatment.denominator.mean == 0)
    return compare(
        control.mean,
        control.variance,
        control.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        alpha=alpha,
        alternative=alternative,
        method="ratio",
        inputs=[*control.inputs(), *treatment.inputs()],
        extra_checks=((_f(zero_d), "denominator mean is zero"),),
    )


def cuped_theta(control: CupedStats, treatment: CupedStats) -> FloatArray:
    """theta = cov(Y, X) / var(X) pooled over both arms (gbstats ``compute_theta``); 0 where the pooled
    pre- or post-period variance is zero (no adjustment)."""
    n = control.n + treatment.n
    prop_post = control.post.is_proportion and treatment.post.is_proportion
    prop_pre = control.pre.is_proportion and treatment.pre.is_proportion
    post = MeanStats(
        n,
        control.post.sum + treatment.post.sum,
        control.post.sum_squares + treatment.post.sum_squares,
        prop_post,
    )
    pre = MeanStats(
        n, control.pre.sum + treatment.pre.sum, control.pre.sum_squares + treatment.pre.sum_squares, prop_pre
    )
    joint = CupedStats(post, pre, control.post_pre_sum_of_products + treatment.post_pre_sum_of_products)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = joint.covariance / pre.variance
    return _f(np.where((pre.variance == 0) | (post.variance == 0), 0.0, theta))


def cuped(
    control: CupedStats,
    treatment: CupedStats,
    *,
    alpha: ArrayLike = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """CUPED (regression adjustment by a pre-period covariate X), as gbstats'
    ``RegressionAdjustedStatistic``: adjusted mean ``mean(Y) - theta*mean(X)`` per arm (the E[X] term cancels in
    the difference), variance ``s²_Y + theta² s²_X - 2theta cov(Y, X)``; the relative effect is scaled by the
    unadjusted control mean. ``variance_reduction`` = 1 - var(adjusted D) / var(unadjusted D)."""
    theta = cuped_theta(control, treatment)

    def adjusted(s: CupedStats) -> tuple[FloatArray, FloatArray]:
        with np.errstate(invalid="ignore"):
            mean = s.post.mean - theta * s.pre.mean
            var = s.post.variance + theta**2 * s.pre.variance - 2 * theta * s.covariance
        return _f(mean), _f(var)

    ma, va = adjusted(control)
    mb, vb = adjusted(treatment)
    result = compare(
        ma,
        va,
        control.n,
        mb,
        vb,
        treatment.n,
        alpha=alpha,
        alternative=alternative,
        method="cuped",
        unadjusted_mean_a=control.post.mean,
        unadjusted_mean_b=treatment.post.mean,
        inputs=[
            control.post.sum,
            treatment.post.sum,
            control.post.sum_squares,
            treatment.post.sum_squares,
            control.pre.n,
            treatment.pre.n,
            control.pre.sum,
            treatment.pre.sum,
            control.pre.sum_squares,
            treatment.pre.sum_squares,
            control.post_pre_sum_of_products,
            treatment.post_pre_sum_of_products,
        ],
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        unadjusted = control.post.variance / control.n + treatment.post.variance / treatment.n
        reduction = 1 - (va / control.n + vb / treatment.n) / unadjusted
    result.extra["theta"] = finite_or_nan(theta, result.not_enough_data)
    object.__setattr__(result, "variance_reduction", finite_or_nan(reduction, result.not_enough_data))
    return result
