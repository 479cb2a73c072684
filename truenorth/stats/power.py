"""Power and sample size for two-sided two-sample tests with equal allocation.

* Means: the two-sample t-test's power from the noncentral t distribution (as statsmodels'
  ``TTestIndPower``): standardised effect ``d = D / sigma``, ``df = 2n - 2``, noncentrality ``d*sqrt(n/2)``.
* Proportions: the normal approximation with unpooled variance (as statsmodels' ``NormalIndPower``
  with ``d = (p2 - p1) / sqrt((p1(1 - p1) + p2(1 - p2)) / 2)``).

Both tails count towards power. The minimum detectable effect is absolute, or relative to the
baseline mean when ``relative=True``. ``sample_size_*`` returns the (fractional) units per variation
needed; round up with ``np.ceil``. ``power_*`` is the power achieved with ``n`` units per variation.
Invalid inputs (non-positive sigma, n or MDE; proportions outside (0, 1); alpha/power outside (0, 1))
give NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from truenorth.stats.summary import ArrayLike, FloatArray, as_array


def _f(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _t_power(d: FloatArray, n: FloatArray, alpha: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        df = 2 * n - 2
        nc = np.abs(d) * np.sqrt(n / 2)
        crit = sps.t.isf(alpha / 2, df)
        return _f(sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc))


def _z_power(d: FloatArray, n: FloatArray, alpha: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        crit = sps.norm.isf(alpha / 2)
        shift = np.abs(d) * np.sqrt(n / 2)
        return _f(sps.norm.sf(crit - shift) + sps.norm.cdf(-crit - shift))


def _solve(power_fn: object, d: FloatArray, alpha: FloatArray, power: FloatArray, low: float) -> FloatArray:
    """Smallest n with power_fn(d, n, alpha) = power, by vectorised bisection on log n."""
    fn = power_fn  # typed loosely for brevity; always one of _t_power/_z_power
    d, alpha, power = np.broadcast_arrays(d, alpha, power)
    valid = (np.abs(d) > 0) & (alpha > 0) & (alpha < 1) & (power > alpha) & (power < 1) & np.isfinite(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the normal approximation brackets the answer: the t-test needs a little more
        guess = 2 * (sps.norm.isf(alpha / 2) + sps.norm.ppf(power)) ** 2 / d**2
        lo = np.log(np.full(d.shape, low))
        hi = np.log(np.where(valid, np.maximum(4 * guess, 16 * low), 16 * low))
    for _ in range(200):
        mid = (lo + hi) / 2
        ok = ~(fn(d, np.exp(mid), alpha) < power)  # type: ignore[operator]
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
        if np.all((hi - lo) < 1e-13):
            break
    return _f(np.where(valid, np.exp(hi), np.nan))


def _mean_effect(
    mde: ArrayLike, sd: ArrayLike, baseline_mean: ArrayLike | None, relative: bool
) -> FloatArray:
    delta = as_array(mde)
    if relative:
        if baseline_mean is None:
            raise ValueError("a relative minimum detectable effect needs the baseline mean")
        delta = delta * as_array(baseline_mean)
    s = as_array(sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _f(np.where(s > 0, delta / s, np.nan))


def _proportion_effect(baseline: ArrayLike, mde: ArrayLike, relative: bool) -> FloatArray:
    p1 = as_array(baseline)
    p2 = p1 * (1 + as_array(mde)) if relative else p1 + as_array(mde)
    valid = (p1 > 0) & (p1 < 1) & (p2 > 0) & (p2 < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (p2 - p1) / np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    return _f(np.where(valid, d, np.nan))


def sample_size_means(
    mde: ArrayLike,
    sd: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    power: ArrayLike = 0.8,
    relative: bool = False,
    baseline_mean: ArrayLike | None = None,
) -> FloatArray:
    """Units per variation to detect a difference in means of ``mde`` (per-unit std dev ``sd``)."""
    d = _mean_effect(mde, sd, baseline_mean, relative)
    return _solve(_t_power, d, as_array(alpha), as_array(power), low=2.0)


def sample_size_proportions(
    baseline: ArrayLike,
    mde: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    power: ArrayLike = 0.8,
    relative: bool = False,
) -> FloatArray:
    """Units per variation to detect a change in conversion rate from ``baseline`` by ``mde``."""
    return _solve(
        _z_power, _proportion_effect(baseline, mde, relative), as_array(alpha), as_array(power), low=1e-6
    )


def power_means(
    n: ArrayLike,
    mde: ArrayLike,
    sd: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    relative: bool = False,
    baseline_mean: ArrayLike | None = None,
) -> FloatArray:
    """Power achieved with ``n`` units per variation (n >= 2) for a difference in means of ``mde``."""
    nn = as_array(n)
    p = _t_power(_mean_effect(mde, sd, baseline_mean, relative), nn, as_array(alpha))
    return _f(np.where(nn >= 2, p, np.nan))


def power_proportions(
    n: ArrayLike, baseline: ArrayLike, mde: ArrayLike, *, alpha: ArrayLike = 0.05, relative: bool = False
) -> FloatArray:
    """Power achieved with ``n`` units per variation for a change in conversion rate of ``mde``."""
    nn = as_array(n)
    p = _z_power(_proportion_effect(baseline, mde, relative), nn, as_array(alpha))
    return _f(np.where(nn > 0, p, np.nan))
