"""Work items and line of sight: the work of a product and the goal each item serves (orphan work
serves none).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q, QuerySet

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Goal, Product, WorkItem
from truenorth.strategy.services._common import get_goal
from truenorth.strategy.services.products import _teams, get_product


def work_items_of(
    membership: Membership,
    *,
    product_id: int | None = None,
    goal_id: int | None = None,
    orphans: bool = False,
) -> QuerySet[WorkItem]:
    qs = WorkItem.objects.filter(organisation_id=membership.organisation_id).select_related("team", "goal")
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    if goal_id is not None:
        qs = qs.filter(goal_id=goal_id)
    if orphans:
        qs = qs.filter(goal__isnull=True)
    return qs.order_by("-created_at", "-id")


def _goal_for_work(membership: Membership, product: Product, goal_id: int | None) -> Goal | None:
    """The goal a work item of `product` serves: one of the product's goals or an organisation goal."""
    if goal_id is None:
        return None
    try:
        goal = get_goal(membership, goal_id)
    except NotFound:
        raise ValidationFailed("No such goal in this organisation.", field="goal") from None
    if goal.product_id not in (None, product.pk):
        raise ValidationFailed(
            f"“{goal.title}” belongs to another product; link work to a goal of {product.name} "
            "or of the organisation.",
            field="goal",
        )
    return goal


@transaction.atomic
def create_work_item(
    membership: Membership,
    actor: User,
    product_id: int,
    *,
    title: str,
    external_key: str = "",
    url: str = "",
    status: str = WorkItem.Status.TODO,
    team_id: int | None = None,
    goal_id: int | None = None,
) -> WorkItem:
    require_writer(membership)
    product = get_product(membership, product_id)
    external_key = _text(external_key, "external_key", max_length=100)
    if external_key and WorkItem.objects.filter(product=product, external_key=external_key).exists():
        raise Conflict(f"Work item {external_key} already exists in this product.", field="external_key")
    url = _text(url, "url", max_length=500)
    if url and not url.startswith(("http://", "https://")):
        raise ValidationFailed("A link must start with http:// or https://.", field="url")
    team = _teams(membership, [team_id])[0] if team_id is not None else None
    item = WorkItem.objects.create(
        organisation_id=membership.organisation_id,
        product=product,
        title=_text(title, "title", required=True, max_length=300),
        external_key=external_key,
        url=url,
        status=_choice(status, WorkItem.Status.values, "status"),
        team=team,
        goal=_goal_for_work(membership, product, goal_id),
    )
    return item


@transaction.atomic
def link_work_item(membership: Membership, actor: User, item_id: int, goal_id: int | None) -> WorkItem:
    """Point a work item at the goal it serves (None unlinks it: it becomes orphan work)."""
    require_writer(membership)
    item = (
        WorkItem.objects.filter(pk=item_id, organisation_id=membership.organisation_id)
        .select_related("product")
        .first()
    )
    if item is None:
        raise NotFound("No such work item.")
    old = item.goal
    item.goal = _goal_for_work(membership, item.product, goal_id)
    item.save(update_fields=["goal"])
    if old != item.goal:
        if old is not None:
            record(
                membership.organisation,
                old,
                actor,
                HistoryEntry.Action.UPDATED,
                {"work item": {"old": str(item), "new": None}},
            )
        if item.goal is not None:
            record(
                membership.organisation,
                item.goal,
                actor,
                HistoryEntry.Action.UPDATED,
                {"work item": {"old": None, "new": str(item)}},
            )
    return item


@dataclass
class OrphanReport:
    total: int
    linked: int
    orphans: int

    @property
    def orphan_share(self) -> float | None:
        return self.orphans / self.total if self.total else None


def orphan_report(membership: Membership, product_id: int) -> OrphanReport:
    get_product(membership, product_id)
    counts = WorkItem.objects.filter(
        organisation_id=membership.organisation_id, product_id=product_id
    ).aggregate(total=Count("id"), orphans=Count("id", filter=Q(goal__isnull=True)))
    return OrphanReport(
        total=counts["total"], linked=counts["total"] - counts["orphans"], orphans=counts["orphans"]
    )
