"""Summary statistics per variation and the result of one comparison, as broadcasting arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike


def as_array(value: ArrayLike) -> FloatArray:
    """``value`` as a float64 array (a copy is not made when it already is one)."""
    return np.asarray(value, dtype=np.float64)


def broadcast_shape(*arrays: ArrayLike) -> tuple[int, ...]:
    """The common shape of ``arrays``; ``ValueError`` naming the shapes when they do not broadcast."""
    shapes = [np.shape(a) for a in arrays]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            f"statistics have mismatched shapes {shapes}: every input needs one element per comparison "
            "(or a shape that broadcasts)"
        ) from None


def _set(obj: object, **values: ArrayLike) -> None:
    """Store ``values`` as float64 arrays on a frozen dataclass and check that they broadcast."""
    arrays = {name: as_array(value) for name, value in values.items()}
    broadcast_shape(*arrays.values())
    for name, array in arrays.items():
        object.__setattr__(obj, name, array)


@dataclass(frozen=True, init=False, eq=False)
class MeanStats:
    """Count, sum and sum of squares of a metric's values per unit, for one or many variations."""

    n: FloatArray
    sum: FloatArray
    sum_squares: FloatArray
    #: 0/1 values: the variance is p(1 - p) (as gbstats' ProportionStatistic), not the n - 1 form.
    is_proportion: bool = False

    def __init__(
        self, n: ArrayLike, sum: ArrayLike, sum_squares: ArrayLike, is_proportion: bool = False
    ) -> None:
        _set(self, n=n, sum=sum, sum_squares=sum_squares)
        object.__setattr__(self, "is_proportion", is_proportion)

    @classmethod
    def from_values(cls, values: ArrayLike, axis: int = -1) -> MeanStats:
        """Summarise raw values along ``axis``."""
        x = as_array(values)
        return cls(
            n=np.asarray(np.sum(np.ones_like(x), axis=axis), dtype=np.float64),
            sum=np.asarray(np.sum(x, axis=axis), dtype=np.float64),
            sum_squares=np.asarray(np.sum(x * x, axis=axis), dtype=np.float64),
        )

    @classmethod
    def proportion(cls, n: ArrayLike, conversions: ArrayLike) -> MeanStats:
        """Conversions on 0/1 values: ``sum == sum_squares`` (the number of converted units)."""
        c = as_array(conversions)
        return cls(n=as_array(n), sum=c, sum_squares=c, is_proportion=True)

    @property
    def shape(self) -> tuple[int, ...]:
        return broadcast_shape(self.n, self.sum, self.sum_squares)

    @property
    def mean(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.sum / self.n, dtype=np.float64)

    @property
    def variance(self) -> FloatArray:
        """Sample variance (denominator n - 1; p(1 - p) for proportions), clipped at 0 against rounding."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.is_proportion:
                v = self.mean * (1 - self.mean)
            else:
                v = (self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1)
        return np.asarray(np.where(np.isnan(v), v, np.maximum(v, 0.0)), dtype=np.float64)


@dataclass(frozen=True, init=False, eq=False)
class RatioStats:
    """A ratio metric (numerator m over denominator d per unit; or per-cluster sums for
    cluster-randomised experiments): counts, sums, sums of squares and the cross-product."""

    n: FloatArray
    m_sum: FloatArray
    m_sum_squares: FloatArray
    d_sum: FloatArray
    d_sum_squares: FloatArray
    m_d_sum_of_products: FloatArray

    def __init__(
        self,
        n: ArrayLike,
        m_sum: ArrayLike,
        m_sum_squares: ArrayLike,
        d_sum: ArrayLike,
        d_sum_squares: ArrayLike,
        m_d_sum_of_products: ArrayLike,
    ) -> None:
        _set(
            self,
            n=n,
            m_sum=m_sum,
            m_sum_squares=m_sum_squares,
            d_sum=d_sum,
            d_sum_squares=d_sum_squares,
            m_d_sum_of_products=m_d_sum_of_products,
        )

    @property
    def numerator(self) -> MeanStats:
        return MeanStats(self.n, self.m_sum, self.m_sum_squares)

    def inputs(self) -> list[FloatArray]:
        return [
            self.n,
            self.m_sum,
            self.m_sum_squares,
            self.d_sum,
            self.d_sum_squares,
            self.m_d_sum_of_products,
        ]

    @property
    def denominator(self) -> MeanStats:
        return MeanStats(self.n, self.d_sum, self.d_sum_squares)

    @property
    def covariance(self) -> FloatArray:
        """Sample covariance of numerator and denominator (n - 1)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                (self.m_d_sum_of_products - self.m_sum * self.d_sum / self.n) / (self.n - 1),
                dtype=np.float64,
            )

    @property
    def mean(self) -> FloatArray:
        """The ratio of means (sum m / sum d)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.m_sum / self.d_sum, dtype=np.float64)

    @property
    def variance(self) -> FloatArray:
        """Delta-method variance of the ratio of means *per unit* (divide by n for the mean's)."""
        mm, dm = self.numerator.mean, self.denominator.mean
        with np.errstate(divide="ignore", invalid="ignore"):
            v = (
                self.numerator.variance / dm**2
                - 2 * self.covariance * mm / dm**3
                + self.denominator.variance * mm**2 / dm**4
            )
        return np.asarray(v, dtype=np.float64)


@dataclass(frozen=True, init=False, eq=False)
class CupedStats:
    """A metric (``post``) with a pre-period covariate (``pre``) and their cross-product."""

    post: MeanStats
    pre: MeanStats
    post_pre_sum_of_products: FloatArray

    def __init__(self, post: MeanStats, pre: MeanStats, post_pre_sum_of_products: ArrayLike) -> None:
        object.__setattr__(self, "post", post)
        object.__setattr__(self, "pre", pre)
        _set(self, post_pre_sum_of_products=post_pre_sum_of_products)
        broadcast_shape(
            post.n, post.sum, post.sum_squares, pre.n, pre.sum, pre.sum_squares, self.post_pre_sum_of_products
        )

    @property
    def n(self) -> FloatArray:
        return self.post.n

    @property
    def covariance(self) -> FloatArray:
        """Sample covariance of post and pre (n - 1)."""
        n = self.post.n
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                (self.post_pre_sum_of_products - self.post.sum * self.pre.sum / n) / (n - 1),
                dtype=np.float64,
            )


@dataclass(frozen=True, eq=False)
class Comparison:
    """The result of comparing treatment with control, one element per comparison.

    ``effect`` is treatment - control; ``effect_relative`` is (treatment - control) / |control|
    ... as a fraction (0.05 = +5 %). Elements in ``not_enough_data`` hold NaN and a ``reason``.
    """

    effect: FloatArray
    effect_relative: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    ci_low_relative: FloatArray
    ci_high_relative: FloatArray
    se: FloatArray
    se_relative: FloatArray
    p_value: FloatArray
    alpha: FloatArray
    method: str
    not_enough_data: BoolArray
    reason: npt.NDArray[np.str_]
    control_mean: FloatArray | None = None
    treatment_mean: FloatArray | None = None
    p_value_relative: FloatArray | None = None
    df: FloatArray | None = None
    chance_to_win: FloatArray | None = None
    risk_control: FloatArray | None = None
    risk_treatment: FloatArray | None = None
    variance_reduction: FloatArray | None = None
    extra: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def errors(self) -> BoolArray:
        """Alias of ``not_enough_data``."""
        return self.not_enough_data

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.effect.shape)

    def significant(self) -> BoolArray:
        """Elements whose two-sided p-value is below alpha (False where not enough data)."""
        with np.errstate(invalid="ignore"):
            return np.asarray((self.p_value < self.alpha) & ~self.not_enough_data, dtype=np.bool_)


def check_inputs(
    *checks: tuple[ArrayLike, str], shape: tuple[int, ...]
) -> tuple[BoolArray, npt.NDArray[np.str_]]:
    """Combine ``(bad_mask, reason)`` pairs into one mask and the first reason per element."""
    bad = np.zeros(shape, dtype=np.bool_)
    reason = np.full(shape, "", dtype=object)
    for mask, text in checks:
        m = np.broadcast_to(np.asarray(mask, dtype=np.bool_), shape)
        new = m & ~bad
        reason[new] = text
        bad = np.asarray(bad | m, dtype=np.bool_)
    return bad, reason.astype(np.str_)


def finite_or_nan(value: ArrayLike, bad: BoolArray) -> FloatArray:
    """``value`` broadcast to ``bad``'s shape with NaN wherever ``bad`` is set."""
    v = np.broadcast_to(as_array(value), bad.shape)
    return np.asarray(np.where(bad, np.nan, v), dtype=np.float64)
