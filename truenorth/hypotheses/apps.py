from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from truenorth.orgs.models import Membership
    from truenorth.strategy.models import Goal
    from truenorth.strategy.panels import Panel


def goal_panel(membership: Membership, goal: Goal) -> Panel:
    """The goal page's "Hypotheses and decisions": the hypotheses serving the goal (one query)."""
    from truenorth.hypotheses import services
    from truenorth.strategy.panels import Panel

    return Panel("hypotheses/_goal_hypotheses.html", services.goal_context(membership, goal.pk))


class HypothesesConfig(AppConfig):
    name = "truenorth.hypotheses"
    label = "hypotheses"

    def ready(self) -> None:
        """Validation contributes to the pages of the pillars below it, which do not import it: a panel
        on the goal page (strategy/panels.py) and decision markers on a measure's chart
        (measures/annotations.py)."""
        from truenorth.hypotheses import services
        from truenorth.measures import annotations
        from truenorth.strategy import panels

        panels.register_goal_panel(goal_panel)
        annotations.register(services.annotations_for_measure)
