"""Teams and products: the products a goal tree belongs to, and the teams that build them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Product, Team
from truenorth.strategy.services._common import PRODUCT_FIELDS, _member_user


def teams_of(membership: Membership) -> QuerySet[Team]:
    return Team.objects.filter(organisation_id=membership.organisation_id).order_by("name", "id")


def create_team(membership: Membership, actor: User, name: str) -> Team:
    require_writer(membership)
    name = _text(name, "name", required=True, max_length=120)
    if Team.objects.filter(organisation_id=membership.organisation_id, name__iexact=name).exists():
        raise Conflict(f"A team called “{name}” already exists.", field="name")
    team = Team.objects.create(organisation_id=membership.organisation_id, name=name)
    record(
        membership.organisation,
        team,
        actor,
        HistoryEntry.Action.CREATED,
        {"name": {"old": None, "new": name}},
    )
    return team


def _teams(membership: Membership, team_ids: Iterable[int]) -> list[Team]:
    ids = list(dict.fromkeys(team_ids))
    teams = list(Team.objects.filter(organisation_id=membership.organisation_id, pk__in=ids))
    if len(teams) != len(ids):
        raise ValidationFailed("One of the teams does not exist in this organisation.", field="teams")
    return teams


def products_of(membership: Membership, *, include_archived: bool = False) -> QuerySet[Product]:
    qs = Product.objects.filter(organisation_id=membership.organisation_id).select_related("owner")
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    return qs.prefetch_related("teams").order_by("name", "id")


def get_product(membership: Membership, product_id: int) -> Product:
    try:
        return Product.objects.select_related("owner").get(
            pk=product_id, organisation_id=membership.organisation_id
        )
    except Product.DoesNotExist:
        raise NotFound("No such product.") from None


def _product_snapshot(product: Product) -> dict[str, Any]:
    data = snapshot(product, PRODUCT_FIELDS)
    data["teams"] = sorted(t.name for t in product.teams.all())
    return data


@transaction.atomic
def create_product(
    membership: Membership,
    actor: User,
    *,
    name: str,
    vision: str = "",
    product_goal: str = "",
    owner_id: int | None = None,
    team_ids: Iterable[int] = (),
) -> Product:
    require_writer(membership)
    name = _text(name, "name", required=True, max_length=120)
    if Product.objects.filter(organisation_id=membership.organisation_id, name__iexact=name).exists():
        raise Conflict(f"A product called “{name}” already exists.", field="name")
    product = Product.objects.create(
        organisation_id=membership.organisation_id,
        name=name,
        vision=_text(vision, "vision"),
        product_goal=_text(product_goal, "product_goal"),
        owner=_member_user(membership, owner_id),
    )
    product.teams.set(_teams(membership, team_ids))
    record(
        membership.organisation,
        product,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, _product_snapshot(product)),
    )
    return product


@transaction.atomic
def update_product(
    membership: Membership,
    actor: User,
    product_id: int,
    *,
    version: int | None = None,
    name: str | None = None,
    vision: str | None = None,
    product_goal: str | None = None,
    owner_id: int | None = None,
    clear_owner: bool = False,
    team_ids: Iterable[int] | None = None,
) -> Product:
    """Change the given fields (None leaves a field alone); a stale version is refused with 409."""
    require_writer(membership)
    get_product(membership, product_id)
    product = Product.objects.select_for_update().get(pk=product_id)
    _check_version(product, version)
    before = _product_snapshot(product)
    if name is not None:
        name = _text(name, "name", required=True, max_length=120)
        clash = Product.objects.filter(organisation_id=product.organisation_id, name__iexact=name).exclude(
            pk=product.pk
        )
        if clash.exists():
            raise Conflict(f"A product called “{name}” already exists.", field="name")
        product.name = name
    if vision is not None:
        product.vision = _text(vision, "vision")
    if product_goal is not None:
        product.product_goal = _text(product_goal, "product_goal")
    if clear_owner:
        product.owner = None
    elif owner_id is not None:
        product.owner = _member_user(membership, owner_id)
    if team_ids is not None:
        product.teams.set(_teams(membership, team_ids))
    after = _product_snapshot(product)
    changes = diff(before, after)
    if changes:
        product.version += 1
        product.save()
        record(membership.organisation, product, actor, HistoryEntry.Action.UPDATED, changes)
    return product


def archive_product(
    membership: Membership, actor: User, product_id: int, *, archived: bool = True, version: int | None = None
) -> Product:
    require_writer(membership)
    with transaction.atomic():
        get_product(membership, product_id)
        product = Product.objects.select_for_update().get(pk=product_id)
        _check_version(product, version)
        if (product.archived_at is not None) == archived:
            return product  # already in that state: nothing changes, nothing is recorded
        before = _product_snapshot(product)
        product.archived_at = timezone.now() if archived else None
        product.version += 1
        product.save(update_fields=["archived_at", "version"])
        record(
            membership.organisation,
            product,
            actor,
            HistoryEntry.Action.UPDATED,
            diff(before, _product_snapshot(product)),
        )
    return product


def product_counts(membership: Membership) -> dict[int, dict[str, int]]:
    """Per product: live goals and work items (for lists)."""
    rows = Product.objects.filter(organisation_id=membership.organisation_id).annotate(
        n_goals=Count("goals", filter=Q(goals__archived_at__isnull=True), distinct=True),
        n_work=Count("work_items", distinct=True),
    )
    return {p.pk: {"goals": p.n_goals, "work": p.n_work} for p in rows}
