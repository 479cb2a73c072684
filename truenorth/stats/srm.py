"""Sample ratio mismatch: a chi-squared goodness-of-fit test of observed counts per variation
against the planned allocation (any number of variations, vectorised over leading axes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from truenorth.stats.summary import ArrayLike, BoolArray, FloatArray, as_array, check_inputs

DEFAULT_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """Per experiment (the leading axes): chi-squared statistic, p-value and the mismatch flag."""

    statistic: FloatArray
    p_value: FloatArray
    mismatch: BoolArray
    threshold: float
    not_enough_data: BoolArray
    reason: npt.NDArray[np.str_]


def check(
    observed: ArrayLike, weights: ArrayLike | None = None, threshold: float = DEFAULT_THRESHOLD
) -> SrmResult:
    """Test ``observed`` counts (last axis: variations) against ``weights`` (planned allocation,
    any positive scale; equal by default). ``mismatch`` is set where p < ``threshold`` (0.001).

    Counts must be finite and non-negative with a positive total, weights positive; otherwise the
    element is not enough data (NaN p-value, no flag). Shapes that do not broadcast: ``ValueError``.
    """
    obs = as_array(observed)
    if obs.ndim == 0 or obs.shape[-1] < 2:
        raise ValueError("SRM needs the counts of at least two variations (last axis)")
    w = np.ones(obs.shape[-1]) if weights is None else as_array(weights)
    try:
        obs, w = np.broadcast_arrays(obs, w)
    except ValueError:
        raise ValueError(
            f"observed counts {obs.shape} and weights {np.shape(w)} have mismatched shapes"
        ) from None
    shape = obs.shape[:-1]
    total = obs.sum(axis=-1)
    with np.errstate(invalid="ignore"):
        bad, reason = check_inputs(
            (np.any(~np.isfinite(obs), axis=-1) | np.any(~np.isfinite(w), axis=-1), "NaN or infinite input"),
            (np.any(obs < 0, axis=-1), "negative count"),
            (np.any(w <= 0, axis=-1), "allocation weights must be positive"),
            (~(total > 0), "no units observed"),
            shape=shape,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = w / w.sum(axis=-1, keepdims=True) * total[..., None]
        stat = np.sum((obs - expected) ** 2 / expected, axis=-1)
        p = sps.chi2.sf(stat, obs.shape[-1] - 1)
    stat = np.where(bad, np.nan, stat)
    p = np.where(bad, np.nan, p)
    with np.errstate(invalid="ignore"):
        mismatch = np.asarray((p < threshold) & ~bad, dtype=np.bool_)
    return SrmResult(
        statistic=np.asarray(stat, dtype=np.float64),
        p_value=np.asarray(p, dtype=np.float64),
        mismatch=mismatch,
        threshold=threshold,
        not_enough_data=bad,
        reason=reason,
    )
