"""Multiple-comparison corrections across metrics, with intervals that agree with them.

``holm`` (family-wise error, Holm-Bonferroni step-down) and ``benjamini_hochberg`` (false discovery
rate) adjust p-values across a family (every element, or along ``axis``). Elements without enough
data (NaN p-values) are left out of the family and stay NaN.

Intervals: each element gets its own level ``alpha* = alpha * p / p_adj`` - the alpha *implied by the
adjusted p-value* - and the interval is recomputed at alpha* (t interval with the comparison's Welch df;
for sequential results the always-valid interval at alpha* with the mixture's rho kept at its value for alpha,
so it still inverts the same e-value). Because the test and its interval come from the
same statistic, ``p < alpha*`` <=> ``p_adj < alpha`` <=> the corrected interval excludes 0. For Holm, when no
earlier rank dominates, alpha* = alpha / (m - rank + 1): exactly Holm's per-rank alpha. For BH, alpha* lies
between alpha/m and alpha; it is the interval that agrees with the decision, not a Benjamini-Yekutieli
false-coverage-rate interval (which can disagree with BH on which effects exclude 0).
Where p = 0 (so p_adj = 0) alpha* falls back to alpha/m, the most conservative level.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from truenorth.stats import frequentist, sequential
from truenorth.stats.summary import ArrayLike, Comparison, FloatArray, as_array

Method = Literal["holm", "bh"]


def _adjust_1d(p: FloatArray, method: Method) -> FloatArray:
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    s = q[order]
    rank = np.arange(1, m + 1, dtype=np.float64)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum((m - rank + 1) * s, 1.0))
    else:
        adj = np.minimum.accumulate((m / rank * s)[::-1])[::-1]
        adj = np.minimum(adj, 1.0)
    back = np.empty_like(adj)
    back[order] = adj
    out[ok] = back
    return out


def adjust(p_values: ArrayLike, method: Method = "holm", axis: int | None = None) -> FloatArray:
    """Adjusted p-values across all elements (``axis=None``) or along ``axis`` (vectorised over the
    rest). NaN p-values are not part of the family and stay NaN."""
    if method not in ("holm", "bh"):
        raise ValueError(f"unknown correction {method!r}: use 'holm' or 'bh'")
    p = as_array(p_values)
    if axis is None:
        return np.asarray(_adjust_1d(p.ravel(), method).reshape(p.shape), dtype=np.float64)
    return np.asarray(np.apply_along_axis(_adjust_1d, axis, p, method), dtype=np.float64)


def holm(p_values: ArrayLike, axis: int | None = None) -> FloatArray:
    """Holm-Bonferroni adjusted p-values (as statsmodels ``multipletests(method='holm')``)."""
    return adjust(p_values, "holm", axis)


def benjamini_hochberg(p_values: ArrayLike, axis: int | None = None) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (as statsmodels ``multipletests(method='fdr_bh')``)."""
    return adjust(p_values, "bh", axis)


def implied_alpha(p: FloatArray, p_adjusted: FloatArray, alpha: FloatArray, m: FloatArray) -> FloatArray:
    """alpha* = alpha * p / p_adj (alpha/m where p_adj is 0): the level whose interval agrees with p_adj < alpha.

    Holm and BH never adjust by more than m (p_adj <= m p), so alpha* >= alpha/m; it is held there
    against underflow when p is subnormal (alpha * p / p_adj would round to 0 and give an infinite
    interval)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p_adjusted > 0, alpha * p / p_adjusted, alpha / m)
        a = np.where(m > 0, np.maximum(a, alpha / m), a)
    return np.asarray(a, dtype=np.float64)


@dataclass(frozen=True)
class Corrected:
    """A comparison corrected for multiple testing; ``uncorrected`` keeps the original."""

    corrected: Comparison
    uncorrected: Comparison
    correction: str
    #: per element, the level alpha* at which ``corrected``'s intervals are computed.
    alpha_implied: FloatArray
    alpha_implied_relative: FloatArray


def _family_size(p: FloatArray, axis: int | None) -> FloatArray:
    ok = (~np.isnan(p)).astype(np.float64)
    if axis is None:
        return np.asarray(np.full(p.shape, ok.sum()), dtype=np.float64)
    return np.asarray(np.broadcast_to(ok.sum(axis=axis, keepdims=True), p.shape), dtype=np.float64)


def _interval(
    c: Comparison, effect: FloatArray, se: FloatArray, alpha: FloatArray
) -> tuple[FloatArray, FloatArray]:
    if c.method.startswith("sequential"):
        # keep the mixture's rho from the original alpha so the interval inverts the same e-value
        w = sequential.half_width(se, c.extra["n_total"], alpha, mixture_rho=c.extra["rho"])
        return effect - w, effect + w
    if c.df is None:
        raise ValueError(f"cannot recompute intervals for method {c.method!r}")
    return frequentist.t_interval(effect, se, c.df, alpha)


def correct(comparison: Comparison, method: Method = "holm", axis: int | None = None) -> Corrected:
    """Correct ``comparison`` (many metrics at once) by Holm or Benjamini-Hochberg.

    Two-sided frequentist and sequential comparisons only (the interval must invert the test).
    """
    c = comparison
    if "(" in c.method:
        raise ValueError("corrections need two-sided comparisons")
    p_adj = adjust(c.p_value, method, axis)
    alpha_star = implied_alpha(c.p_value, p_adj, c.alpha, _family_size(c.p_value, axis))
    lo, hi = _interval(c, c.effect, c.se, alpha_star)
    p_rel = c.p_value_relative if c.p_value_relative is not None else c.p_value
    p_rel_adj = adjust(p_rel, method, axis)
    alpha_star_rel = implied_alpha(p_rel, p_rel_adj, c.alpha, _family_size(p_rel, axis))
    lo_r, hi_r = _interval(c, c.effect_relative, c.se_relative, alpha_star_rel)
    name = {"holm": "Holm-Bonferroni", "bh": "Benjamini-Hochberg"}[method]
    corrected = dataclasses.replace(
        c,
        ci_low=lo,
        ci_high=hi,
        ci_low_relative=lo_r,
        ci_high_relative=hi_r,
        p_value=p_adj,
        p_value_relative=p_rel_adj,
        method=f"{c.method}, {name} corrected",
        extra=dict(c.extra),
    )
    return Corrected(corrected, c, method, alpha_star, alpha_star_rel)
