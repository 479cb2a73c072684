"""Panels other apps add to a hypothesis page, pointing one way: apps above Validation (Delivery: the
process change a hypothesis records) register a panel source here from their AppConfig.ready(), and the
hypothesis page renders whatever is registered, with `{% render_panel %}` (strategy_panels), like the
goal page's panels (strategy/panels.py). A source may return None to show nothing."""

from __future__ import annotations

from collections.abc import Callable

from truenorth.hypotheses.models import Hypothesis
from truenorth.orgs.models import Membership
from truenorth.strategy.panels import Panel

HypothesisPanelSource = Callable[[Membership, Hypothesis], Panel | None]

_hypothesis_panels: list[HypothesisPanelSource] = []


def register_hypothesis_panel(source: HypothesisPanelSource) -> HypothesisPanelSource:
    """Add a panel to every hypothesis page (once; usable as a decorator)."""
    if source not in _hypothesis_panels:
        _hypothesis_panels.append(source)
    return source


def hypothesis_panels(membership: Membership, hypothesis: Hypothesis) -> list[Panel]:
    """The panels the registered sources show for this hypothesis, in registration order."""
    return [p for source in _hypothesis_panels if (p := source(membership, hypothesis)) is not None]
