"""Bayesian comparison with a Gaussian prior on the effect, as gbstats 0.8.0's ``EffectBayesianABTest``.

The data give a normal likelihood for the effect ``Δ`` — absolute ``x̄_B - x̄_A`` with variance
``s²_B/n_B + s²_A/n_A``, or relative ``Δ/x̄_A`` with the delta-method variance — and the prior is
``N(μ₀, sigma₀²)`` on the relative scale by default (converted to the absolute scale by the control
mean: ``μ₀·|x̄_A|``, ``sigma₀²·x̄_A²``). With a *proper* prior the posterior is the precision-weighted
combination; with a flat (improper) prior it is the likelihood itself. From the posterior
``N(m, s²)``:

* chance to beat control ``P(Δ > 0) = Φ(m/s)`` (``P(Δ < 0)`` for inverse metrics, where less is better);
* expected loss (risk) of choosing control ``E[max(Δ, 0)] = m Φ(m/s) + s φ(m/s)`` and of choosing
  the treatment ``E[max(-Δ, 0)]`` (swapped for inverse metrics);
* the equal-tailed credible interval ``m ± z_{1-alpha/2} s``.

A chance to win is a posterior probability, *not* a p-value: ``Comparison.p_value`` is NaN here.
Elements with zero or negative counts, n < 2, zero variance or NaN inputs are "not enough data"
(NaN numbers and a reason) where gbstats would return its uninformative default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from truenorth.stats import frequentist
from truenorth.stats.summary import (
    ArrayLike,
    BoolArray,
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

Scale = Literal["relative", "absolute"]


def _f(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class GaussianPrior:
    """A normal prior on the effect. ``proper=False`` is the flat (improper) prior: mean and variance
    are then ignored. ``scale`` says whether mean and variance are relative (fractions of the control
    mean, gbstats' default) or absolute (metric units)."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False
    scale: Scale = "relative"

    def __post_init__(self) -> None:
        if self.proper and not (np.isfinite(self.variance) and self.variance > 0):
            raise ValueError(f"prior variance must be positive and finite, got {self.variance}")
        if not np.isfinite(self.mean):
            raise ValueError(f"prior mean must be finite, got {self.mean}")
        if self.scale not in ("relative", "absolute"):
            raise ValueError(f"prior scale must be 'relative' or 'absolute', got {self.scale!r}")

    @classmethod
    def from_stddev(cls, mean: float, stddev: float, *, scale: Scale = "relative") -> GaussianPrior:
        """A proper prior given its standard deviation (gbstats' ``prior_stddev``)."""
        return cls(mean=mean, variance=stddev * stddev, proper=True, scale=scale)


FLAT = GaussianPrior()


def _phi(z: FloatArray) -> FloatArray:
    return _f(np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi))


def _cdf(z: FloatArray) -> FloatArray:
    return _f(special.ndtr(z))


def posterior(
    data_mean: ArrayLike,
    data_variance: ArrayLike,
    prior_mean: ArrayLike,
    prior_variance: ArrayLike,
    proper: bool,
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and standard deviation of a normal likelihood with a normal prior."""
    d, v = as_array(data_mean), as_array(data_variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        if not proper:
            return d, _f(np.sqrt(v))
        m0, v0 = as_array(prior_mean), as_array(prior_variance)
        precision = 1 / v + 1 / v0
        return _f((d / v + m0 / v0) / precision), _f(np.sqrt(1 / precision))


def chance_to_win(mean: ArrayLike, sd: ArrayLike, *, inverse: bool = False) -> FloatArray:
    """``P(Δ > 0)`` under ``N(mean, sd²)`` (``P(Δ < 0)`` when ``inverse``)."""
    m, s = as_array(mean), as_array(sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = m / s
    return _cdf(_f(-z)) if inverse else _cdf(_f(z))


def risk(mean: ArrayLike, sd: ArrayLike, *, inverse: bool = False) -> tuple[FloatArray, FloatArray]:
    """Expected loss of choosing control and of choosing the treatment: ``E[max(Δ, 0)]`` and
    ``E[max(-Δ, 0)]`` under ``N(mean, sd²)`` (swapped when ``inverse``)."""
    m, s = as_array(mean), as_array(sd)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = m / s
        dens = s * _phi(_f(z))
        loss_control = m * _cdf(_f(z)) + dens
        loss_treatment = -m * _cdf(_f(-z)) + dens
    lc, lt = _f(np.maximum(loss_control, 0.0)), _f(np.maximum(loss_treatment, 0.0))
    return (lt, lc) if inverse else (lc, lt)


def credible_interval(mean: ArrayLike, sd: ArrayLike, alpha: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Equal-tailed ``1 - alpha`` interval of ``N(mean, sd²)``."""
    m, s, a = as_array(mean), as_array(sd), as_array(alpha)
    z = _f(special.ndtri(1 - a / 2))
    with np.errstate(invalid="ignore"):
        return _f(m - z * s), _f(m + z * s)


def compare(
    mean_a: ArrayLike,
    var_a: ArrayLike,
    n_a: ArrayLike,
    mean_b: ArrayLike,
    var_b: ArrayLike,
    n_b: ArrayLike,
    *,
    prior: GaussianPrior = FLAT,
    alpha: ArrayLike = 0.05,
    inverse: bool = False,
    scale: Scale = "relative",
    method: str = "bayesian",
    unadjusted_mean_a: ArrayLike | None = None,
    unadjusted_mean_b: ArrayLike | None = None,
    inputs: list[FloatArray] | None = None,
    extra_checks: tuple[tuple[BoolArray, str], ...] = (),
) -> Comparison:
    """The Bayesian core from per-arm means, per-unit variances and counts.

    Both scales are computed (each with the prior converted to it, as gbstats does for each
    ``difference_type``); ``chance_to_win`` and the risks come from ``scale`` and the other scale's
    are in ``extra`` (``chance_to_win_absolute`` …). ``se`` holds the posterior standard deviation.
    """
    ma, va, na, mb, vb, nb = (as_array(x) for x in (mean_a, var_a, n_a, mean_b, var_b, n_b))
    ua = ma if unadjusted_mean_a is None else as_array(unadjusted_mean_a)
    ub = mb if unadjusted_mean_b is None else as_array(unadjusted_mean_b)
    al = as_array(alpha)
    shape = broadcast_shape(ma, va, na, mb, vb, nb, ua, ub, al)
    nan_input = np.zeros(shape, dtype=np.bool_)
    for x in [*(inputs or []), ma, va, na, mb, vb, nb, ua, ub]:
        nan_input = nan_input | ~np.isfinite(np.broadcast_to(x, shape))
    with np.errstate(invalid="ignore"):
        bad, reason = check_inputs(
            ((na <= 0) | (nb <= 0), "zero or negative count"),
            ((na < 2) | (nb < 2), "fewer than 2 units in a variation"),
            (nan_input, "NaN or infinite input"),
            *extra_checks,
            (~(va > 0) | ~(vb > 0), "zero variance"),
            shape=shape,
        )
        zero_control = np.broadcast_to((ua == 0) | (ma == 0), shape) & ~bad
    reason = np.where(zero_control, "control mean is zero: no relative effect", reason).astype(np.str_)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d_abs = mb - ma
        v_abs = vb / nb + va / na
        d_rel = d_abs / ua
        v_rel = vb / (ua**2 * nb) + va * ub**2 / (ua**4 * na)
        if prior.scale == "relative":
            p_rel = (as_array(prior.mean), as_array(prior.variance))
            p_abs = (prior.mean * np.abs(ua), prior.variance * ua**2)
        else:
            p_abs = (as_array(prior.mean), as_array(prior.variance))
            p_rel = (prior.mean / np.abs(ua), prior.variance / ua**2)
    m_abs, s_abs = posterior(d_abs, v_abs, p_abs[0], p_abs[1], prior.proper)
    m_rel, s_rel = posterior(d_rel, v_rel, p_rel[0], p_rel[1], prior.proper)
    lo, hi = credible_interval(m_abs, s_abs, al)
    lo_r, hi_r = credible_interval(m_rel, s_rel, al)

    ctw_abs = chance_to_win(m_abs, s_abs, inverse=inverse)
    ctw_rel = chance_to_win(m_rel, s_rel, inverse=inverse)
    risk_abs = risk(m_abs, s_abs, inverse=inverse)
    risk_rel = risk(m_rel, s_rel, inverse=inverse)
    if prior.proper and prior.scale == "relative":
        # A relative prior is put on the absolute scale by the control mean: impossible when it is 0
        # (gbstats 0.8.0 raises ZeroDivisionError there).
        bad = bad | zero_control
        reason = np.where(
            zero_control,
            "control mean is zero: no relative effect, and a relative prior has no absolute scale",
            reason,
        ).astype(np.str_)
    bad_rel = bad | zero_control
    if scale == "relative":
        ctw, (rc, rt), other = finite_or_nan(ctw_rel, bad_rel), risk_rel, "absolute"
        extra_ctw, (erc, ert), mask, other_mask = ctw_abs, risk_abs, bad_rel, bad
    else:
        ctw, (rc, rt), other = finite_or_nan(ctw_abs, bad), risk_abs, "relative"
        extra_ctw, (erc, ert), mask, other_mask = ctw_rel, risk_rel, bad, bad_rel

    def rel(x: ArrayLike) -> FloatArray:
        return finite_or_nan(x, bad_rel)

    nan = _f(np.full(shape, np.nan))
    return Comparison(
        effect=finite_or_nan(m_abs, bad),
        effect_relative=rel(m_rel),
        ci_low=finite_or_nan(lo, bad),
        ci_high=finite_or_nan(hi, bad),
        ci_low_relative=rel(lo_r),
        ci_high_relative=rel(hi_r),
        se=finite_or_nan(s_abs, bad),
        se_relative=rel(s_rel),
        p_value=nan,
        p_value_relative=nan,
        alpha=_f(np.broadcast_to(al, shape)),
        method=method,
        not_enough_data=bad,
        reason=reason,
        control_mean=finite_or_nan(ua, bad),
        treatment_mean=finite_or_nan(ub, bad),
        chance_to_win=ctw,
        risk_control=finite_or_nan(rc, mask),
        risk_treatment=finite_or_nan(rt, mask),
        extra={
            f"chance_to_win_{other}": finite_or_nan(extra_ctw, other_mask),
            f"risk_control_{other}": finite_or_nan(erc, other_mask),
            f"risk_treatment_{other}": finite_or_nan(ert, other_mask),
        },
    )


def means(
    control: MeanStats,
    treatment: MeanStats,
    *,
    prior: GaussianPrior = FLAT,
    alpha: ArrayLike = 0.05,
    inverse: bool = False,
    scale: Scale = "relative",
) -> Comparison:
    """Means (and proportions, when built with ``MeanStats.proportion``)."""
    return compare(
        control.mean,
        control.variance,
        control.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        prior=prior,
        alpha=alpha,
        inverse=inverse,
        scale=scale,
        method="bayesian proportion" if control.is_proportion else "bayesian",
        inputs=[control.sum, control.sum_squares, treatment.sum, treatment.sum_squares],
    )


def proportion(
    control_n: ArrayLike,
    control_conversions: ArrayLike,
    treatment_n: ArrayLike,
    treatment_conversions: ArrayLike,
    *,
    prior: GaussianPrior = FLAT,
    alpha: ArrayLike = 0.05,
    inverse: bool = False,
    scale: Scale = "relative",
) -> Comparison:
    """Conversion rates (variance p(1 - p)); conversions outside 0..n are not enough data."""
    a = MeanStats.proportion(control_n, control_conversions)
    b = MeanStats.proportion(treatment_n, treatment_conversions)
    with np.errstate(invalid="ignore"):
        out_of_range = _f((a.sum < 0) | (a.sum > a.n) | (b.sum < 0) | (b.sum > b.n)).astype(np.bool_)
    return compare(
        a.mean,
        a.variance,
        a.n,
        b.mean,
        b.variance,
        b.n,
        prior=prior,
        alpha=alpha,
        inverse=inverse,
        scale=scale,
        method="bayesian proportion",
        inputs=[a.sum, b.sum],
        extra_checks=((out_of_range, "conversions outside 0..n"),),
    )


def ratio(
    control: RatioStats,
    treatment: RatioStats,
    *,
    prior: GaussianPrior = FLAT,
    alpha: ArrayLike = 0.05,
    inverse: bool = False,
    scale: Scale = "relative",
) -> Comparison:
    """Ratio metrics (Σm / Σd) with the delta-method variance (also cluster-randomised experiments)."""
    with np.errstate(invalid="ignore"):
        zero_d = np.asarray(
            (control.denominator.mean == 0) | (treatment.denominator.mean == 0), dtype=np.bool_
        )
    return compare(
        control.mean,
        control.variance,
        control.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        prior=prior,
        alpha=alpha,
        inverse=inverse,
        scale=scale,
        method="bayesian ratio",
        inputs=[*control.inputs(), *treatment.inputs()],
        extra_checks=((zero_d, "denominator mean is zero"),),
    )


def cuped(
    control: CupedStats,
    treatment: CupedStats,
    *,
    prior: GaussianPrior = FLAT,
    alpha: ArrayLike = 0.05,
    inverse: bool = False,
    scale: Scale = "relative",
) -> Comparison:
    """CUPED-adjusted means (θ pooled over both arms, as the frequentist ``cuped``); the relative
    effect and the prior conversion use the unadjusted control mean, as gbstats does."""
    theta = frequentist.cuped_theta(control, treatment)

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
        prior=prior,
        alpha=alpha,
        inverse=inverse,
        scale=scale,
        method="bayesian cuped",
        unadjusted_mean_a=control.post.mean,
        unadjusted_mean_b=treatment.post.mean,
        inputs=[
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
