"""Delivery API: a goal's forecast against its target date (services/goal_forecasts.py).

Always answers inline: the throughput history is loaded for the items that moved in the last
HISTORY_DAYS days only, is cached per product and day, and a product with more rows than
TRUENORTH_DELIVERY_INLINE_MAX_ROWS answers a reason instead of a forecast.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from truenorth.core.schemas import READ_ERRORS, ObjectId
from truenorth.delivery.services import goal_forecasts as services
from truenorth.orgs.scoping import scope

router = Router(tags=["delivery"])


@router.get(
    "/{slug}/delivery/goals/{goal_id}/forecast",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="A goal's delivery forecast: the chance to finish its remaining work items by its target date",
    description="`remaining` work items (the goal's and its sub-goals', not done by status nor by a linked "
    "delivery item), `probability` of finishing them by `target_date` (Monte Carlo over the product's "
    "daily throughput), `verdict` (on_track: at least 0.85; at_risk; off_track: below 0.5; done; "
    "unavailable with a `reason`), `dates` by which they are done at 50/85/95 % (null: over three "
    "years), `backtest` (how often the 85% forecast came true on past windows: `held_85` of `windows`), "
    "`histogram` (trials by items done by the target date). 404 for another organisation's goal.",
)
def goal_forecast(request: HttpRequest, slug: str, goal_id: ObjectId) -> Any:
    m, _ = scope(request, slug)
    return services.goal_forecast_out(services.forecast_goal(m, int(goal_id)))
