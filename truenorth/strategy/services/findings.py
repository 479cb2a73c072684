"""Lint findings: the quality rules of strategy/lint.py applied to the organisation's live goals."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from truenorth.orgs.models import Membership
from truenorth.strategy import lint as lint_core
from truenorth.strategy.models import Goal
from truenorth.strategy.services.progress import stale_target_ids


def lint(
    membership: Membership,
    *,
    product_id: int | None = None,
    goal_id: int | None = None,
    org_level: bool = False,
    today: dt.date | None = None,
) -> list[tuple[Goal, lint_core.Finding]]:
    """Quality findings for one goal, one product's goals, the organisation-level goals, or everything."""
    qs = (
        Goal.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True)
        .select_related("owner", "parent", "product")
        .prefetch_related("targets")
        .order_by("product__name", "position", "id")
    )
    if goal_id is not None:
        qs = qs.filter(pk=goal_id)
    elif product_id is not None:
        qs = qs.filter(product_id=product_id)
    elif org_level:
        qs = qs.filter(product__isnull=True)
    today = today or timezone.localdate()
    goals = list(qs)
    stale = stale_target_ids(t for goal in goals for t in goal.targets.all())
    out: list[tuple[Goal, lint_core.Finding]] = []
    for goal in goals:
        if goal.status in (Goal.Status.ABANDONED,):
            continue
        facts = lint_core.GoalFacts(
            id=goal.pk,
            title=goal.title,
            outcome=goal.outcome,
            status=goal.status,
            owner=goal.owner.email if goal.owner else None,
            target_date=goal.target_date,
            targets=[
                lint_core.TargetFacts(t.name, t.baseline, t.target, stale=t.pk in stale)
                for t in goal.targets.all()
            ],
            parent_target_date=goal.parent.target_date if goal.parent else None,
            parent_title=goal.parent.title if goal.parent else None,
        )
        out.extend((goal, f) for f in lint_core.lint_goal(facts, today))
    return out
