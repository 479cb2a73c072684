"""The board, ranking and lint: a product's hypotheses by lifecycle column, by score, and those without a
measurable success signal."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from truenorth.core.validate import choice as _choice
from truenorth.hypotheses import scoring
from truenorth.hypotheses.models import Hypothesis
from truenorth.hypotheses.services.hypotheses import SCORE_FIELDS, UNMEASURED, S, _product, hypotheses_of
from truenorth.orgs.models import Membership


def board(
    membership: Membership,
    product_id: int,
    *,
    goal_id: int | None = None,
    owner_id: int | None = None,
    q: str = "",
) -> dict[str, list[Hypothesis]]:
    """The product's hypotheses by lifecycle column, in their positions (one query)."""
    _product(membership, product_id)
    qs = hypotheses_of(membership).filter(product_id=product_id)
    if goal_id is not None:
        qs = qs.filter(goal_id=goal_id)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(capability__icontains=q) | Q(outcome__icontains=q))
    columns: dict[str, list[Hypothesis]] = {state: [] for state in S.values}
    for hypothesis in qs.order_by("position", "id"):
        columns[hypothesis.state].append(hypothesis)
    return columns


def inputs_of(hypothesis: Hypothesis) -> scoring.Inputs:
    return scoring.Inputs(**{name: getattr(hypothesis, name) for name in SCORE_FIELDS})


def ranked(
    membership: Membership, product_id: int, method: str, *, include_concluded: bool = False
) -> list[tuple[Hypothesis, float | None]]:
    """The product's open hypotheses by the chosen score (ice, rice, wsjf, cd3), highest first."""
    chosen = _choice(method, scoring.METHODS, "method")
    _product(membership, product_id)
    qs = hypotheses_of(membership).filter(product_id=product_id).order_by("position", "id")
    if not include_concluded:
        qs = qs.exclude(state=S.CONCLUDED)
    method_key: scoring.Method = chosen  # type: ignore[assignment]
    return list(scoring.rank(((h, inputs_of(h)) for h in qs), method_key))


@dataclass(frozen=True)
class Finding:
    hypothesis: Hypothesis
    rule: str
    severity: str
    message: str


def lint(
    membership: Membership, *, product_id: int | None = None, goal_id: int | None = None
) -> list[Finding]:
    """Open hypotheses without a measurable success signal: "How will we measure its success?"."""
    qs = hypotheses_of(membership).exclude(state=S.CONCLUDED).order_by("product__name", "position", "id")
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    if goal_id is not None:
        qs = qs.filter(goal_id=goal_id)
    return [Finding(h, "unmeasured-hypothesis", "warning", UNMEASURED) for h in qs if not h.is_measurable]
