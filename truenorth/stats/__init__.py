"""TrueNorth's statistics engine: pure, typed, vectorised (numpy + scipy only, no Django).

Inputs are summary statistics per variation (``n``, ``sum``, ``sum_squares`` and cross-products)
held as numpy float64 arrays of any broadcastable shape: one element per comparison. Every test
takes the control's and the treatment's statistics and returns a :class:`Comparison` of arrays.
Elements that cannot be computed (zero or negative counts, n < 2, zero variance, NaN) are flagged
in ``Comparison.not_enough_data`` with a ``reason``; their numbers are NaN, never silently wrong.
"""

from truenorth.stats.summary import (
    Comparison,
    CupedStats,
    MeanStats,
    RatioStats,
)

__all__ = ["Comparison", "CupedStats", "MeanStats", "RatioStats"]
