"""Vision pages: products, goal trees, goals and their co-authoring, alignment, overdue check-ins.

Views only parse forms and call strategy.services; every rule (roles, versions, cycles, levels) is
checked there. A service error is shown on the form field it names; NotFound and Forbidden go up to
@org_view (404 page, 403 page).

One module per part of the pillar: products, goals, goal_page (and how its forms answer),
collaboration, targets, links, alignment; common holds the helpers they share.
"""

from __future__ import annotations

from truenorth.strategy.views.alignment import alignment, overdue
from truenorth.strategy.views.collaboration import (
    checkin,
    comment,
    decide,
    endorse,
    propose,
    raise_concern,
    resolve_concern,
    withdraw_endorsement,
    withdraw_proposal,
)
from truenorth.strategy.views.goal_page import goal
from truenorth.strategy.views.goals import goal_archive, goal_children, goal_create, goal_edit, goal_move
from truenorth.strategy.views.links import link_add, link_remove, work_link, work_unlink
from truenorth.strategy.views.products import (
    create_team,
    product,
    product_archive,
    product_edit,
    products,
    work_item_create,
)
from truenorth.strategy.views.targets import target_add, target_edit, target_remove

__all__ = [
    "alignment",
    "checkin",
    "comment",
    "create_team",
    "decide",
    "endorse",
    "goal",
    "goal_archive",
    "goal_children",
    "goal_create",
    "goal_edit",
    "goal_move",
    "link_add",
    "link_remove",
    "overdue",
    "product",
    "product_archive",
    "product_edit",
    "products",
    "propose",
    "raise_concern",
    "resolve_concern",
    "target_add",
    "target_edit",
    "target_remove",
    "withdraw_endorsement",
    "withdraw_proposal",
    "work_item_create",
    "work_link",
    "work_unlink",
]
