"""Always-valid (sequential) inference by the mixture SPRT, as gbstats' ``SequentialTwoSidedTTest``.

With ``N = n_A + n_B``, ``s² = Var(D)*N`` and the mixing parameter
``rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / tau)`` (tau = ``sequential_tuning_parameter``, 5000 by default:
roughly the total sample size at which the interval is tightest relative to a fixed-horizon one),
the confidence sequence is (Waudby-Smith et al. 2023, eq. 9)

    D ± s * sqrt(2 (Nrho² + 1) ln(sqrt(Nrho² + 1) / alpha) / (Nrho)²)

and the always-valid p-value is ``min(1, 1/E)`` with the e-value
``E = exp(rho² * D²N/s² / (2 (Nrho² + 1))) / sqrt(Nrho² + 1)``. Both the absolute and the relative
effect (delta-method variance) get their own interval and p-value; they may be peeked at any time.
"""

from __future__ import annotations

import numpy as np

from truenorth.stats import frequentist
from truenorth.stats.summary import (
    ArrayLike,
    Comparison,
    CupedStats,
    FloatArray,
    MeanStats,
    RatioStats,
    as_array,
    finite_or_nan,
)

DEFAULT_TUNING = 5000.0


def rho(alpha: ArrayLike, tuning: ArrayLike = DEFAULT_TUNING) -> FloatArray:
    """The mixture's scale rho for ``alpha`` and the tuning parameter."""
    a, t = as_array(alpha), as_array(tuning)
    return np.asarray(np.sqrt((-2 * np.log(a) + np.log(-2 * np.log(a) + 1)) / t), dtype=np.float64)


def half_width(
    se: ArrayLike,
    n_total: ArrayLike,
    alpha: ArrayLike,
    tuning: ArrayLike = DEFAULT_TUNING,
    mixture_rho: ArrayLike | None = None,
) -> FloatArray:
    """Half-width of the always-valid interval for an estimate with standard error ``se``.

    ``mixture_rho`` fixes rho (default rho(alpha, tuning)); the interval at level ``alpha`` excludes 0
    exactly when the p-value computed with the same rho is below ``alpha``.
    """
    s, n, a = as_array(se), as_array(n_total), as_array(alpha)
    r2 = (rho(a, tuning) if mixture_rho is None else as_array(mixture_rho)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        s_unit = s * np.sqrt(n)
        return np.asarray(
            s_unit * np.sqrt(2 * (n * r2 + 1) * np.log(np.sqrt(n * r2 + 1) / a) / (n * n * r2)),
            dtype=np.float64,
        )


def p_value(
    effect: ArrayLike, se: ArrayLike, n_total: ArrayLike, alpha: ArrayLike, tuning: ArrayLike = DEFAULT_TUNING
) -> FloatArray:
    """Always-valid p-value ``min(1, 1/E)`` for H0: effect = 0."""
    d, s, n = as_array(effect), as_array(se), as_array(n_total)
    r2 = rho(alpha, tuning) ** 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        st2 = d * d * n / (s * s)  # D² N / Var(D), as gbstats
        tr2p1 = n * r2 + 1
        log_e = r2 * st2 / (2 * tr2p1) - 0.5 * np.log(tr2p1)
        return np.asarray(np.minimum(np.exp(-log_e), 1.0), dtype=np.float64)


def from_fixed(fixed: Comparison, n_total: ArrayLike, tuning: ArrayLike = DEFAULT_TUNING) -> Comparison:
    """Turn a fixed-horizon Welch :class:`Comparison` into its always-valid version."""
    bad = fixed.not_enough_data
    n, a = as_array(n_total), fixed.alpha
    w = half_width(fixed.se, n, a, tuning)
    w_rel = half_width(fixed.se_relative, n, a, tuning)
    result = Comparison(
        effect=fixed.effect,
        effect_relative=fixed.effect_relative,
        ci_low=fixed.effect - w,
        ci_high=fixed.effect + w,
        ci_low_relative=fixed.effect_relative - w_rel,
        ci_high_relative=fixed.effect_relative + w_rel,
        se=fixed.se,
        se_relative=fixed.se_relative,
        p_value=finite_or_nan(p_value(fixed.effect, fixed.se, n, a, tuning), bad),
        p_value_relative=p_value(fixed.effect_relative, fixed.se_relative, n, a, tuning),
        alpha=a,
        method=f"sequential {fixed.method}",
        not_enough_data=bad,
        reason=fixed.reason,
        control_mean=fixed.control_mean,
        treatment_mean=fixed.treatment_mean,
        variance_reduction=fixed.variance_reduction,
        extra={
            **fixed.extra,
            "n_total": finite_or_nan(np.broadcast_to(n, bad.shape), bad),
            "tuning": np.asarray(np.broadcast_to(as_array(tuning), bad.shape), dtype=np.float64),
            "rho": np.asarray(np.broadcast_to(rho(a, tuning), bad.shape), dtype=np.float64),
        },
    )
    return result


def welch(
    control: MeanStats, treatment: MeanStats, *, alpha: ArrayLike = 0.05, tuning: ArrayLike = DEFAULT_TUNING
) -> Comparison:
    """Always-valid comparison of means (proportions when built with ``MeanStats.proportion``)."""
    return from_fixed(frequentist.welch(control, treatment, alpha=alpha), control.n + treatment.n, tuning)


def proportion(
    control_n: ArrayLike,
    control_conversions: ArrayLike,
    treatment_n: ArrayLike,
    treatment_conversions: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    tuning: ArrayLike = DEFAULT_TUNING,
) -> Comparison:
    fixed = frequentist.proportion(
        control_n, control_conversions, treatment_n, treatment_conversions, alpha=alpha
    )
    return from_fixed(fixed, as_array(control_n) + as_array(treatment_n), tuning)


def ratio(
    control: RatioStats, treatment: RatioStats, *, alpha: ArrayLike = 0.05, tuning: ArrayLike = DEFAULT_TUNING
) -> Comparison:
    return from_fixed(frequentist.ratio(control, treatment, alpha=alpha), control.n + treatment.n, tuning)


def cuped(
    control: CupedStats, treatment: CupedStats, *, alpha: ArrayLike = 0.05, tuning: ArrayLike = DEFAULT_TUNING
) -> Comparison:
    return from_fixed(frequentist.cuped(control, treatment, alpha=alpha), control.n + treatment.n, tuning)
