"""Delivery panels on Vision pages (goal: forecast against the target date); registered in ready().

The goal page shows the goal's Monte Carlo forecast (services/goal_forecasts.py): the verdict, the
probability of finishing the remaining work items by the target date, the 85% date next to the target
date, the backtest, and a small static SVG of the simulated outcomes (no script: bars of trials by items
done by the target date, those reaching the remaining work in the "hit" colour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from truenorth.delivery.models.process import ProcessChange
from truenorth.delivery.services.goal_forecasts import GoalForecast, forecast_goal
from truenorth.hypotheses.models import Hypothesis
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Goal
from truenorth.strategy.panels import Panel

CHART_WIDTH = 240
CHART_HEIGHT = 56
MAX_BARS = 40


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    hit: bool  # every outcome of the bar reaches the remaining work


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    marker_x: float | None  # where the remaining work falls on the x axis
    lowest: int
    highest: int


def outcome_chart(f: GoalForecast) -> Chart | None:
    """The distribution of items done by the target date, in at most MAX_BARS bars whose edges fall on
    the remaining work N (so a bar is wholly a hit or wholly a miss)."""
    if not f.histogram or f.remaining is None:
        return None
    n = f.remaining
    lo = int(min(v for v, _ in f.histogram))
    hi = int(max(v for v, _ in f.histogram))
    width = max(1, math.ceil((hi - lo + 1) / MAX_BARS))
    first = n - math.ceil((n - lo) / width) * width
    counts: dict[int, int] = {}
    for value, trials in f.histogram:
        key = first + (int(value) - first) // width * width
        counts[key] = counts.get(key, 0) + trials
    keys = range(min(counts), max(counts) + 1, width)
    slots = len(keys)
    top = max(counts.values())
    step = CHART_WIDTH / slots
    bars = [
        Bar(
            x=round(i * step, 2),
            y=round(CHART_HEIGHT - counts.get(k, 0) / top * CHART_HEIGHT, 2),
            width=round(max(step - 1, 0.5), 2),
            height=round(counts.get(k, 0) / top * CHART_HEIGHT, 2),
            hit=k >= n,
        )
        for i, k in enumerate(keys)
    ]
    span_lo, span_hi = keys[0], keys[-1] + width
    marker = round((n - span_lo) / (span_hi - span_lo) * CHART_WIDTH, 2) if span_lo <= n <= span_hi else None
    return Chart(bars, marker, lo, hi)


def goal_panel(membership: Membership, goal: Goal) -> Panel:
    """The goal's delivery forecast (see services/goal_forecasts.py for its queries)."""
    found = forecast_goal(membership, goal)
    return Panel(
        "delivery/panels/goal_forecast.html",
        {"goal_forecast": found, "goal_forecast_chart": outcome_chart(found)},
    )


def hypothesis_panel(membership: Membership, hypothesis: Hypothesis) -> Panel | None:
    """On the page of a hypothesis that records a process change: which change, and a link to its
    before/after comparison (one query)."""
    changes = list(
        ProcessChange.objects.filter(
            organisation_id=membership.organisation_id, hypothesis=hypothesis
        ).order_by("changed_on", "pk")[:5]
    )
    if not changes:
        return None
    return Panel("delivery/panels/hypothesis_change.html", {"process_changes": changes})
