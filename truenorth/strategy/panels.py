"""Pages that compose pillars, pointing one way: higher pillars build on Vision, never the reverse.

- The goal page and the product page show panels contributed by the apps above Vision (hypotheses:
  the hypotheses serving the goal and their decisions; engagement: following, stakeholders, the
  product's brief and alignment). Vision does not import them: each registers a panel source
  here from its AppConfig.ready(), and the goal page renders whatever is registered, in registration
  order, each panel's template with the page's context plus the panel's own (the
  `{% render_panel %}` tag of `strategy_panels`). A source may return None to show nothing.
- What Vision shows on a higher pillar's page (the goals tracking a Value measure) is offered to it
  as a plain function here, so that page imports no Vision view.

Like netbox's template extensions or pretix's signals, without a plugin system: a list of callables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from truenorth.orgs.models import Membership
from truenorth.strategy import services
from truenorth.strategy.models import Goal, Product


@dataclass(frozen=True)
class Panel:
    """A template to render inside the goal page, and the context it needs beyond the page's own
    (`org`, `goal`, `membership`, `can_write`…)."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


GoalPanelSource = Callable[[Membership, Goal], Panel | None]
ProductPanelSource = Callable[[Membership, Product], Panel | None]

_goal_panels: list[GoalPanelSource] = []
_product_panels: list[ProductPanelSource] = []


def register_goal_panel(source: GoalPanelSource) -> GoalPanelSource:
    """Add a panel to every goal page (once; usable as a decorator)."""
    if source not in _goal_panels:
        _goal_panels.append(source)
    return source


def goal_panels(membership: Membership, goal: Goal) -> list[Panel]:
    """The panels the registered sources show for this goal, in registration order."""
    return [panel for source in _goal_panels if (panel := source(membership, goal)) is not None]


def register_product_panel(source: ProductPanelSource) -> ProductPanelSource:
    """Add a panel to every product page (once; usable as a decorator)."""
    if source not in _product_panels:
        _product_panels.append(source)
    return source


def product_panels(membership: Membership, product: Product) -> list[Panel]:
    """The panels the registered sources show for this product, in registration order."""
    return [panel for source in _product_panels if (panel := source(membership, product)) is not None]


def measure_goals_context(membership: Membership, measure: Any) -> dict[str, Any]:
    """For a Value measure's page (template strategy/_measure_goals.html): the goals that track it and
    where "Create a goal from this measure" goes (its product's new-goal form, or the organisation
    goals' form for an organisation-wide one)."""
    slug = membership.organisation.slug
    if measure.product_id is not None:
        new_goal = reverse("strategy:goal_create", args=(slug, measure.product_id))
    else:
        new_goal = reverse("strategy:alignment", args=(slug,))
    anchor = "" if measure.product_id is not None else "#new-org-goal"
    return {
        "tracking_goals": services.goals_tracking(membership, measure.pk),
        "new_goal_url": f"{new_goal}?measure={measure.pk}{anchor}",
    }
