"""Cluster-randomised experiments: randomised by a cluster (an account), analysed per user.

Users in one account are correlated, so treating them as independent understates the variance and
the per-user test is anti-conservative. The fix is the ratio/delta method over clusters: per
cluster ``k`` take ``m_k`` = the sum of the metric over its users and ``d_k`` = its number of users;
the per-user mean is ``Σm / Σd`` and its variance comes from the cluster-level sums, squares and
cross-product (:class:`~truenorth.stats.summary.RatioStats` with ``n`` = the number of clusters).
Compare two arms with ``frequentist.ratio``, ``sequential.ratio`` or ``bayesian.ratio``.
"""

from __future__ import annotations

import numpy as np

from truenorth.stats.summary import ArrayLike, FloatArray, RatioStats, as_array


def _f(x: object) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def from_cluster_totals(metric_totals: ArrayLike, users: ArrayLike, axis: int = -1) -> RatioStats:
    """RatioStats from per-cluster metric totals and per-cluster user counts (along ``axis``).

    A cluster with no users would still count in ``n``: pass only clusters that were assigned users.
    """
    m, d = as_array(metric_totals), as_array(users)
    if m.shape != d.shape:
        raise ValueError(f"metric totals {m.shape} and user counts {d.shape} must have the same shape")
    return RatioStats(
        n=_f(np.sum(np.ones_like(m), axis=axis)),
        m_sum=_f(np.sum(m, axis=axis)),
        m_sum_squares=_f(np.sum(m * m, axis=axis)),
        d_sum=_f(np.sum(d, axis=axis)),
        d_sum_squares=_f(np.sum(d * d, axis=axis)),
        m_d_sum_of_products=_f(np.sum(m * d, axis=axis)),
    )


def from_sums(
    clusters: ArrayLike,
    metric_sum: ArrayLike,
    metric_sum_squares: ArrayLike,
    users_sum: ArrayLike,
    users_sum_squares: ArrayLike,
    metric_users_sum_of_products: ArrayLike,
) -> RatioStats:
    """RatioStats from sums over clusters already computed elsewhere (e.g. in SQL): the number of
    clusters, Σm_k, Σm_k², Σd_k, Σd_k² and Σm_k·d_k."""
    return RatioStats(
        as_array(clusters),
        as_array(metric_sum),
        as_array(metric_sum_squares),
        as_array(users_sum),
        as_array(users_sum_squares),
        as_array(metric_users_sum_of_products),
    )


def from_units(cluster_ids: ArrayLike, values: ArrayLike) -> RatioStats:
    """RatioStats from per-user values and each user's cluster id (1-D, one arm)."""
    ids = np.asarray(cluster_ids).ravel()
    v = as_array(values).ravel()
    if ids.shape != v.shape:
        raise ValueError(f"cluster ids {ids.shape} and values {v.shape} must have the same length")
    _, index = np.unique(ids, return_inverse=True)
    totals = np.bincount(index, weights=v)
    users = np.bincount(index).astype(np.float64)
    return from_cluster_totals(totals, users)
