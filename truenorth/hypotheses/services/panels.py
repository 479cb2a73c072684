"""What other pillars' pages show of Validation: a goal's hypotheses and decisions, and the decisions
marked on a measure's chart."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from truenorth.hypotheses.models import Decision, Hypothesis
from truenorth.orgs.models import Membership


def decisions_for_goal(membership: Membership, goal_id: int) -> list[Decision]:
    return list(
        Decision.objects.filter(
            hypothesis__organisation_id=membership.organisation_id, hypothesis__goal_id=goal_id
        )
        .select_related("hypothesis", "decided_by")
        .order_by("-decided_at", "-id")[:50]
    )


def annotations_for_measure(membership: Membership, measure_id: int) -> list[tuple[dt.date, str]]:
    """Decisions on hypotheses that expected to move this measure, as (date, label) chart markers."""
    rows = (
        Decision.objects.filter(hypothesis__organisation_id=membership.organisation_id)
        .filter(
            Q(hypothesis__measure_id=measure_id) | Q(hypothesis__experiments__metrics__measure_id=measure_id)
        )
        .select_related("hypothesis")
        .distinct()
        .order_by("decided_at", "id")[:100]
    )
    return [
        (
            timezone.localtime(d.decided_at).date(),
            f"{d.get_outcome_display()}, {d.get_decision_display().lower()}: {d.hypothesis.title}"[:120],
        )
        for d in rows
    ]


def goal_context(membership: Membership, goal_id: int) -> dict[str, Any]:
    """What the goal page shows of this pillar: the hypotheses serving the goal and their decisions.

    One query: each hypothesis carries its decision (there is at most one) as annotations."""
    decision = Decision.objects.filter(hypothesis=OuterRef("pk")).order_by("-decided_at", "-id")
    rows = list(
        Hypothesis.objects.filter(organisation_id=membership.organisation_id, goal_id=goal_id)
        .annotate(
            decision_outcome=Subquery(decision.values("outcome")[:1]),
            decision_choice=Subquery(decision.values("decision")[:1]),
            decision_learning=Subquery(decision.values("learning")[:1]),
            decision_at=Subquery(decision.values("decided_at")[:1]),
        )
        .order_by("position", "id")[:100]
    )
    outcomes, choices = dict(Decision.Outcome.choices), dict(Decision.Choice.choices)
    decisions = [
        {
            "hypothesis": h,
            "outcome": outcomes.get(h.decision_outcome, h.decision_outcome),
            "decision": choices.get(h.decision_choice, h.decision_choice),
            "learning": h.decision_learning,
            "decided_at": h.decision_at,
        }
        for h in rows
        if h.decision_outcome
    ]
    decisions.sort(key=lambda d: d["decided_at"], reverse=True)
    return {"goal_hypotheses": rows, "goal_decisions": decisions}
