"""What Engagement adds to Vision's pages, through Vision's panel registry (strategy/panels.py),
registered in EngagementConfig.ready(): on a goal page, following it and the stakeholders who care
about it; on a product page, following it, its alignment index and the way to its brief, activity and
pulses. Vision never imports Engagement."""

from __future__ import annotations

from truenorth.engagement.models import Stakeholder
from truenorth.engagement.services import mail, pulses
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Goal, Product
from truenorth.strategy.panels import Panel

STAKEHOLDERS_SHOWN = 5


def goal_panel(membership: Membership, goal: Goal) -> Panel:
    """Follow the goal; who cares about it (two queries)."""
    people = list(
        Stakeholder.objects.filter(
            organisation_id=membership.organisation_id, goals=goal, archived_at__isnull=True
        ).order_by("name", "pk")[: STAKEHOLDERS_SHOWN + 1]
    )
    return Panel(
        "engagement/_goal_panel.html",
        {
            "following": mail.is_following(membership, goal_id=goal.pk),
            "goal_stakeholders": people[:STAKEHOLDERS_SHOWN],
            "more_stakeholders": len(people) > STAKEHOLDERS_SHOWN,
        },
    )


def product_panel(membership: Membership, product: Product) -> Panel:
    """Follow the product; its alignment index; links to its brief, activity and pulses."""
    return Panel(
        "engagement/_product_panel.html",
        {
            "following": mail.is_following(membership, product_id=product.pk),
            "alignment": pulses.product_alignment(membership, product),
        },
    )
