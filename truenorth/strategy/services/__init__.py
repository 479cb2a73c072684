"""Vision: products, goal trees, alignment, check-ins, co-authoring, lint and line of sight.

Every rule of the pillar lives in this package; web views, the API and the CLI call its functions
(``from truenorth.strategy import services``), re-exported here from one module per workflow:

- ``_common``: field lists and limits, the owner check, reading a goal and saving its changes
- ``products``: teams and products
- ``goals``: creating, changing, moving and archiving goals
- ``graph``: the contribution graph (parents and alignments), cycles and double counting refused
- ``targets``: target measures (own values or a tracked Value measure) and observations
- ``links``: alignment links and the organisation-wide alignment
- ``progress``: latest values, staleness, goal and product progress roll-ups
- ``tree``: the goal tree as rows (one level, or a whole tree)
- ``checkins``: check-ins and overdue check-ins
- ``findings``: lint findings (the rules are in strategy/lint.py)
- ``collaboration``: comments, change proposals, endorsements and concerns
- ``work_items``: work items and line of sight (orphan work)

Reads take the caller's Membership (which fixes the organisation: nothing outside it is ever found);
writes also take the acting User and record history.
"""

from truenorth.strategy.services._common import (
    GOAL_FIELDS,
    LEVEL_RANK,
    MAX_TEXT,
    MAX_WEIGHT,
    NEXT_LEVEL,
    PRODUCT_FIELDS,
    PROPOSABLE,
    TARGET_FIELDS,
    get_goal,
    goals_of,
    member_by_email,
    require_writer,
)
from truenorth.strategy.services.checkins import Overdue, check_in, overdue_checkins
from truenorth.strategy.services.collaboration import (
    add_comment,
    comments_of,
    decide_proposal,
    endorse,
    endorsements_of,
    goal_history,
    goal_url,
    proposals_of,
    propose_change,
    raise_concern,
    resolve_concern,
    withdraw_endorsement,
    withdraw_proposal,
)
from truenorth.strategy.services.findings import lint
from truenorth.strategy.services.goals import archive_goal, create_goal, move_goal, update_goal
from truenorth.strategy.services.links import Alignment, alignment, link_goals, links_of, unlink_goals
from truenorth.strategy.services.products import (
    archive_product,
    create_product,
    create_team,
    get_product,
    product_counts,
    products_of,
    teams_of,
    update_product,
)
from truenorth.strategy.services.progress import (
    goals_tracking,
    latest_values,
    product_progress,
    progress_for_org,
    stale_target_ids,
    target_progress_of,
)
from truenorth.strategy.services.targets import (
    TargetSpec,
    add_target,
    record_observation,
    remove_target,
    trackable_measures,
    update_target,
)
from truenorth.strategy.services.tree import TreeRow, tree_level, whole_tree
from truenorth.strategy.services.work_items import (
    OrphanReport,
    create_work_item,
    link_work_item,
    orphan_report,
    work_items_of,
)

__all__ = [
    "GOAL_FIELDS",
    "LEVEL_RANK",
    "MAX_TEXT",
    "MAX_WEIGHT",
    "NEXT_LEVEL",
    "PRODUCT_FIELDS",
    "PROPOSABLE",
    "TARGET_FIELDS",
    "Alignment",
    "OrphanReport",
    "Overdue",
    "TargetSpec",
    "TreeRow",
    "add_comment",
    "add_target",
    "alignment",
    "archive_goal",
    "archive_product",
    "check_in",
    "comments_of",
    "create_goal",
    "create_product",
    "create_team",
    "create_work_item",
    "decide_proposal",
    "endorse",
    "endorsements_of",
    "get_goal",
    "get_product",
    "goal_history",
    "goal_url",
    "goals_of",
    "goals_tracking",
    "latest_values",
    "link_goals",
    "link_work_item",
    "links_of",
    "lint",
    "member_by_email",
    "move_goal",
    "orphan_report",
    "overdue_checkins",
    "product_counts",
    "product_progress",
    "products_of",
    "progress_for_org",
    "proposals_of",
    "propose_change",
    "raise_concern",
    "record_observation",
    "remove_target",
    "require_writer",
    "resolve_concern",
    "stale_target_ids",
    "target_progress_of",
    "teams_of",
    "trackable_measures",
    "tree_level",
    "unlink_goals",
    "update_goal",
    "update_product",
    "update_target",
    "whole_tree",
    "withdraw_endorsement",
    "withdraw_proposal",
    "work_items_of",
]
