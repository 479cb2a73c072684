"""The optional semantic similarity: a clear error without the extra, the packaged model loaded offline
through the package's own loader, and the index's semantic scale."""

from __future__ import annotations

import os
import sys
import types

import pytest

from truenorth.engagement import semantic
from truenorth.engagement.services import pulses as svc


class FakeModel:
    """Embeds a text as counts of a few words: enough to check the wiring, not the model."""

    WORDS = ("hikers", "trips", "weekend", "rust")

    def encode(self, texts: list[str]) -> list[list[float]]:
        return [[float(t.lower().count(w)) for w in self.WORDS] for t in texts]


@pytest.fixture
def fake_package(monkeypatch):
    calls: list[str | None] = []

    def load_model(device: str | None = None) -> FakeModel:
        calls.append(device)
        assert os.environ["HF_HUB_OFFLINE"] == "1"  # the hub is off before the model loads
        return FakeModel()

    monkeypatch.setitem(sys.modules, semantic.PACKAGE, types.SimpleNamespace(load_model=load_model))
    monkeypatch.setattr(semantic, "available", lambda: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    semantic.model.cache_clear()
    yield calls
    semantic.model.cache_clear()


@pytest.mark.skipif(semantic.available(), reason="the semantic extra is installed here")
def test_without_the_extra_the_error_says_how_to_install_it() -> None:
    semantic.model.cache_clear()
    with pytest.raises(semantic.SemanticUnavailable, match=r"pip install 'truenorth\[semantic\]'"):
        semantic.similarity("a", "b")


def test_semantic_method_uses_the_packaged_model_once(settings, fake_package) -> None:
    settings.TRUENORTH_SIMILARITY = "semantic"
    goal = "Double the hikers who plan weekend trips"
    close = svc.score_answer("More hikers planning weekend trips", goal)
    far = svc.score_answer("Rewrite it in Rust", goal)
    assert close > far and far == 0.0
    assert svc.score_answer("", goal) == 0.0
    assert fake_package == ["cpu"]  # loaded once, on the CPU
    assert svc.similarity_scale() == 0.7


def test_lexical_is_the_default(settings) -> None:
    settings.TRUENORTH_SIMILARITY = "lexical"
    assert svc.similarity_method() == "lexical" and svc.similarity_scale() == 0.5


@pytest.mark.skipif(not semantic.available(), reason="needs pip install 'truenorth[semantic]'")
def test_the_real_packaged_model_ranks_a_paraphrase_above_unrelated_text() -> None:
    goal = "Cut the time a new customer needs to get value from the product to under one day."
    paraphrase = semantic.similarity("Help new clients see value within their first day.", goal)
    unrelated = semantic.similarity("Rewrite the billing system in Rust.", goal)
    assert paraphrase > unrelated
