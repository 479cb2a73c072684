"""API: Validation, one router mounted by truenorth/api.py.

- `hypotheses`: hypotheses (board, ranking, lint), experiments, result snapshots, decisions, learning log;
- `planning`: the power calculator and experiment plans;
- `results`: computed results (evidence queries) and their snapshots.

Schemas and output builders live in hypotheses/schemas.py.
"""

from __future__ import annotations

from truenorth.core.routers import keep_operation_ids
from truenorth.hypotheses.api.hypotheses import router
from truenorth.hypotheses.api.planning import router as planning_router
from truenorth.hypotheses.api.results import router as results_router

# The ids this module's operations had when it was hypotheses/api.py (planning and results keep theirs:
# `hypotheses.api.planning` gives the same id as the old `hypotheses.api_planning`).
keep_operation_ids(router, "truenorth_hypotheses_api_")
router.add_router("", planning_router)  # the power calculator and experiment plans
router.add_router("", results_router)  # computed results (evidence queries) and their snapshots

__all__ = ["router"]
