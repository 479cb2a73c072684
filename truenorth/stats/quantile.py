"""Quantile metrics (e.g. the 90th-percentile latency) compared between variations.

The input per variation is a quantile summary, as gbstats 0.8.0's ``QuantileStatistic``:
``n`` (values), ``nu`` (the quantile level, 0.9 for p90), ``quantile`` (the sample quantile) and
``lower``/``upper``: the sample quantiles at the levels ``nu ∓ z_{0.975}·sqrt(nu(1 - nu)/n_star)``
(``n_star`` is the sample size those were evaluated on, usually ``n``). Those two order statistics
bracket a distribution-free 95 % interval for the quantile (the binomial / Woodruff construction), so

    Var(q̂) ≈ ((upper - lower) / (2 z_{0.975}))²

and, as gbstats does, the per-unit variance ``(n_star/n)·(n - 1)·((upper - lower)/(2 z))²`` (floored
at 1e-5 once n ≥ 100) goes through the same Welch / Bayesian / sequential machinery as a mean.
A quantile whose bracketing levels fall outside (0, 1) — ``n ≤ z² nu/(1 - nu)`` or
``n ≤ z² (1 - nu)/nu`` — or whose bracket has zero width with n < 1000 is "not enough data".
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import special

from truenorth.stats import bayesian, frequentist, sequential
from truenorth.stats.summary import (
    ArrayLike,
    BoolArray,
    Comparison,
    FloatArray,
    as_array,
    broadcast_shape,
)

#: z_{0.975}: the bracket is always a 95 % one (gbstats' convention), whatever alpha the test uses.
Z = float(special.ndtri(0.975))


def _f(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class QuantileStats:
    """A quantile summary per variation (arrays broadcast: one element per comparison)."""

    n: FloatArray
    nu: FloatArray
    quantile: FloatArray
    lower: FloatArray
    upper: FloatArray
    n_star: FloatArray

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, as_array(getattr(self, f.name)))
        broadcast_shape(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def from_values(cls, values: ArrayLike, nu: float) -> QuantileStats:
        """Summarise raw values (1-D): the sample quantile and its 95 % order-statistic bracket."""
        if not 0 < nu < 1:
            raise ValueError(f"quantile level must be in (0, 1), got {nu}")
        x = np.sort(as_array(values).ravel())
        n = x.size
        if n == 0:
            return cls(_f(0.0), _f(nu), _f(np.nan), _f(np.nan), _f(np.nan), _f(0.0))
        half = Z * np.sqrt(nu * (1 - nu) / n)
        levels = np.clip(np.array([nu, nu - half, nu + half]), 0.0, 1.0)
        q, lo, hi = np.quantile(x, levels, method="inverted_cdf")
        return cls(_f(n), _f(nu), _f(q), _f(lo), _f(hi), _f(n))

    @property
    def variance_init(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = (self.n_star / self.n) * (self.n - 1) * ((self.upper - self.lower) / (2 * Z)) ** 2
        return _f(np.where(self.n <= 1, 0.0, v))

    @property
    def variance(self) -> FloatArray:
        """Per-unit variance (Var(q̂) · n), as gbstats' ``QuantileStatistic.variance``."""
        v = self.variance_init
        return _f(np.where(self.n < 100, v, np.maximum(v, 1e-5)))

    @property
    def se(self) -> FloatArray:
        """Standard error of the sample quantile."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return _f(np.sqrt(self.variance / self.n))

    def unusable(self) -> BoolArray:
        """gbstats' ``_has_zero_variance`` for quantiles: the bracket cannot be formed."""
        with np.errstate(divide="ignore", invalid="ignore"):
            above = self.n <= Z**2 * self.nu / (1 - self.nu)
            below = self.n <= Z**2 * (1 - self.nu) / self.nu
            flat = (self.variance_init <= 0) & (self.n < 1000)
            out_of_range = (self.nu <= 0) | (self.nu >= 1) | (self.lower > self.upper)
        return np.asarray(above | below | flat | out_of_range, dtype=np.bool_)

    def inputs(self) -> list[FloatArray]:
        return [self.n, self.nu, self.quantile, self.lower, self.upper, self.n_star]


def _checks(control: QuantileStats, treatment: QuantileStats) -> tuple[tuple[BoolArray, str], ...]:
    mismatch = np.asarray(control.nu != treatment.nu, dtype=np.bool_)
    bad = control.unusable() | treatment.unusable()
    return (
        (mismatch, "variations summarise different quantile levels"),
        (bad, "too few values to bracket the quantile"),
    )


def welch(control: QuantileStats, treatment: QuantileStats, *, alpha: ArrayLike = 0.05) -> Comparison:
    """Frequentist comparison of the quantiles (gbstats ``TwoSidedTTest`` on ``QuantileStatistic``)."""
    return frequentist.compare(
        control.quantile,
        control.variance,
        control.n,
        treatment.quantile,
        treatment.variance,
        treatment.n,
        alpha=alpha,
        method="quantile",
        inputs=[*control.inputs(), *treatment.inputs()],
        extra_checks=_checks(control, treatment),
    )


def sequential_welch(
    control: QuantileStats,
    treatment: QuantileStats,
    *,
    alpha: ArrayLike = 0.05,
    tuning: ArrayLike = sequential.DEFAULT_TUNING,
) -> Comparison:
    """Always-valid version of :func:`welch`."""
    return sequential.from_fixed(welch(control, treatment, alpha=alpha), control.n + treatment.n, tuning)


def bayes(
    control: QuantileStats,
    treatment: QuantileStats,
    *,
    prior: bayesian.GaussianPrior = bayesian.FLAT,
    alpha: ArrayLike = 0.05,
    inverse: bool = False,
    scale: bayesian.Scale = "relative",
) -> Comparison:
    """Bayesian comparison of the quantiles (gbstats ``EffectBayesianABTest`` on quantiles)."""
    return bayesian.compare(
        control.quantile,
        control.variance,
        control.n,
        treatment.quantile,
        treatment.variance,
        treatment.n,
        prior=prior,
        alpha=alpha,
        inverse=inverse,
        scale=scale,
        method="bayesian quantile",
        inputs=[*control.inputs(), *treatment.inputs()],
        extra_checks=_checks(control, treatment),
    )
