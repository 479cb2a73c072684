"""The alignment index of a set of pulse answers, 0 to 100 (pure Python, no Django).

    index = 100 * (0.35·C + 0.35·K + 0.30·S)

- C (clarity) = mean of (clarity - 1) / 4 over the answers: 1 → 0, 3 → 0.5, 5 → 1;
- K (commitment) = mean of (commitment - 1) / 4, the same way;
- S (shared understanding) = mean of min(1, similarity / scale): each answer's similarity to the
  official goal statement, calibrated by the method's scale (lexical 0.5, semantic 0.7) and clipped at 1,
  because even a faithful paraphrase in one's own words rarely shares more than half its words with
  the statement (lexical), or reaches a cosine above 0.7 (sentence embeddings).

No answers: no index (None). The result is rounded to one decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CLARITY_WEIGHT = 0.35
COMMITMENT_WEIGHT = 0.35
SIMILARITY_WEIGHT = 0.30
SCALES: dict[str, float] = {"lexical": 0.5, "semantic": 0.7}


@dataclass(frozen=True)
class Components:
    """Means of the three components, each 0 to 1, and the index 0 to 100 (None without answers)."""

    clarity: float | None
    commitment: float | None
    similarity: float | None
    index: float | None


def scaled(similarity: float, scale: float) -> float:
    """A similarity calibrated to 0 to 1: min(1, similarity / scale), never below 0."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    return max(0.0, min(1.0, similarity / scale))


def components(
    clarity: Sequence[int], commitment: Sequence[int], similarity: Sequence[float], *, scale: float
) -> Components:
    """The index of answers given as three parallel sequences (one value per answer)."""
    if not (len(clarity) == len(commitment) == len(similarity)):
        raise ValueError("clarity, commitment and similarity need one value per answer")
    n = len(clarity)
    if n == 0:
        return Components(None, None, None, None)
    c = sum((v - 1) / 4 for v in clarity) / n
    k = sum((v - 1) / 4 for v in commitment) / n
    s = sum(scaled(v, scale) for v in similarity) / n
    index = 100 * (CLARITY_WEIGHT * c + COMMITMENT_WEIGHT * k + SIMILARITY_WEIGHT * s)
    return Components(c, k, s, round(index, 1))


def alignment_index(
    clarity: Sequence[int], commitment: Sequence[int], similarity: Sequence[float], *, scale: float
) -> float | None:
    return components(clarity, commitment, similarity, scale=scale).index


def weighted_mean(values: Sequence[tuple[float, int]]) -> float | None:
    """Mean of values weighted by counts ((value, count) pairs); None when the counts sum to 0."""
    total = sum(count for _, count in values)
    if total <= 0:
        return None
    return sum(value * count for value, count in values) / total
