"""API: Vision — teams, products, goal trees, targets, alignment, check-ins, lint, co-authoring,
work items (line of sight), export and import. Every rule lives in strategy.services; these modules
translate JSON in and out only (schemas in strategy/schemas.py).

One router (`common.router`), filled by one module per workflow. They are imported in this order so
that the published OpenAPI document keeps its order; each operation keeps the id it had when the API
was one module (`truenorth_strategy_api_<function>`), so clients generated from it do not change.
"""

from __future__ import annotations

# Each module registers its endpoints on the router, in this order (the order of the OpenAPI paths).
# isort: off
from truenorth.strategy.api import products  # noqa: F401
from truenorth.strategy.api import goals  # noqa: F401
from truenorth.strategy.api import alignment  # noqa: F401
from truenorth.strategy.api import targets  # noqa: F401
from truenorth.strategy.api import links  # noqa: F401
from truenorth.strategy.api import checkins  # noqa: F401
from truenorth.strategy.api import collaboration  # noqa: F401
from truenorth.strategy.api import work_items  # noqa: F401

# isort: on
from truenorth.core.routers import keep_operation_ids
from truenorth.strategy.api.common import router

keep_operation_ids(router, "truenorth_strategy_api_")

__all__ = ["router"]
