"""Fixtures of the Validation tests: a product with a goal and a measure in organisation A."""

from __future__ import annotations

from typing import Any

import pytest

from truenorth.hypotheses import services
from truenorth.hypotheses.models import Hypothesis
from truenorth.measures.models import Measure
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal, Product


@pytest.fixture
def product(owner) -> Product:
    return strategy.create_product(owner.membership, owner.user, name="Trail App")


@pytest.fixture
def goal(owner, product) -> Goal:
    return strategy.create_goal(
        owner.membership, owner.user, title="Hikers plan trips", product_id=product.pk
    )


@pytest.fixture
def measure(owner, product) -> Measure:
    return Measure.objects.create(
        organisation=owner.membership.organisation,
        product=product,
        name="Weekly planners",
        kva="current_value",
    )


MEASURABLE: dict[str, Any] = {"metric_name": "Download rate", "baseline": 20, "target": 30}


@pytest.fixture
def make(member, product, goal):
    """make(title, **fields): a hypothesis written by the member."""

    def _make(title: str = "One-tap download", **fields: Any) -> Hypothesis:
        fields.setdefault("goal_id", goal.pk)
        return services.create_hypothesis(member.membership, member.user, product.pk, title=title, **fields)

    return _make


AB: dict[str, Any] = {
    "name": "Download button",
    "kind": "ab",
    "variations": [{"name": "control", "allocation": 0.5}, {"name": "one_tap", "allocation": 0.5}],
    "metrics": [
        {"role": "primary", "name": "Download rate"},
        {"role": "guardrail", "name": "Crash rate"},
    ],
}


@pytest.fixture
def testing(member, make) -> Hypothesis:
    """A measurable hypothesis with an A/B experiment, being tested."""
    h = make(**MEASURABLE)
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    services.create_experiment(member.membership, member.user, h.pk, **AB)
    return services.move_hypothesis(member.membership, member.user, h.pk, "testing")
