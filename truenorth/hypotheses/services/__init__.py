"""Validation: hypotheses, experiments, result snapshots, decisions, prioritisation and the learning log.

Every rule of the pillar lives here; web views, the API and the CLI call these functions. One module per
workflow; this package re-exports what callers use (`from truenorth.hypotheses import services`):

- `hypotheses`: writing a hypothesis, changing it, moving it along its lifecycle;
- `experiments`: designing an experiment (variations, metrics, planned size);
- `snapshots`: result snapshots, computed by TrueNorth (the headline) or imported;
- `decisions`: concluding a hypothesis and the learning log;
- `board`: the board, ranking and lint;
- `panels`: what the goal and measure pages show of this pillar.

Reads take the caller's Membership (nothing outside its organisation is ever found); writes also take
the acting User, check the role and record history.
"""

from __future__ import annotations

from truenorth.hypotheses.services.board import Finding, board, inputs_of, lint, ranked
from truenorth.hypotheses.services.decisions import conclude, decision_of, get_decision, learnings
from truenorth.hypotheses.services.experiments import (
    EXPERIMENT_FIELDS,
    MetricSpec,
    VariationSpec,
    create_experiment,
    experiments_of,
    get_experiment,
    update_experiment,
)
from truenorth.hypotheses.services.hypotheses import (
    HYPOTHESIS_FIELDS,
    MAX_TEXT,
    ONE_TO_TEN,
    SCORE_FIELDS,
    TEXT_FIELDS,
    TRANSITIONS,
    UNMEASURED,
    create_hypothesis,
    get_hypothesis,
    hypotheses_of,
    move_hypothesis,
    update_hypothesis,
)
from truenorth.hypotheses.services.panels import annotations_for_measure, decisions_for_goal, goal_context
from truenorth.hypotheses.services.snapshots import (
    get_snapshot,
    headline_snapshot,
    import_snapshot,
    snapshots_of,
    store_snapshot,
)
from truenorth.orgs.services import member_by_email, require_writer

__all__ = [
    "EXPERIMENT_FIELDS",
    "HYPOTHESIS_FIELDS",
    "MAX_TEXT",
    "ONE_TO_TEN",
    "SCORE_FIELDS",
    "TEXT_FIELDS",
    "TRANSITIONS",
    "UNMEASURED",
    "Finding",
    "MetricSpec",
    "VariationSpec",
    "annotations_for_measure",
    "board",
    "conclude",
    "create_experiment",
    "create_hypothesis",
    "decision_of",
    "decisions_for_goal",
    "experiments_of",
    "get_decision",
    "get_experiment",
    "get_hypothesis",
    "get_snapshot",
    "goal_context",
    "headline_snapshot",
    "hypotheses_of",
    "import_snapshot",
    "inputs_of",
    "learnings",
    "lint",
    "member_by_email",
    "move_hypothesis",
    "ranked",
    "require_writer",
    "snapshots_of",
    "store_snapshot",
    "update_experiment",
    "update_hypothesis",
]
