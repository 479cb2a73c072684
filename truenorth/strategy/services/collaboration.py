"""Vision: products, goal trees, alignment, check-ins, co-authoring, lint and line of sight.

Every rule of the pillar lives here; web views, the API and the CLI call these functions.
Reads take the caller's Membership (which fixes the organisation: nothing outside it is ever found);
writes also take the acting User and record history.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import CharField, Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import number as _number
from truenorth.core.validate import observed_time as _observed_time
from truenorth.core.validate import text as _text
from truenorth.core.validate import whole as _whole
from truenorth.engagement import services as engagement
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, object_type_of, record, snapshot
from truenorth.orgs.models import Membership
from truenorth.orgs.services import member_by_email as member_by_email  # re-exported for callers
from truenorth.orgs.services import require_writer as require_writer  # re-exported for callers
from truenorth.strategy import lint as lint_core
from truenorth.strategy import progress as progress_core
from truenorth.strategy.models import (
    ChangeProposal,
    CheckIn,
    Comment,
    Endorsement,
    Goal,
    GoalLink,
    Product,
    TargetMeasure,
    TargetObservation,
    Team,
    WorkItem,
)

if TYPE_CHECKING:
    from truenorth.measures.models import Measure

PRODUCT_FIELDS = ("name", "vision", "product_goal", "owner", "archived_at")
GOAL_FIELDS = (
    "title",
    "outcome",
    "level",
    "status",
    "owner",
    "target_date",
    "weight",
    "checkin_cadence_days",
    "parent",
    "position",
    "archived_at",
)
TARGET_FIELDS = ("name", "unit", "baseline", "target", "direction")
LEVEL_RANK = {
    Goal.Level.STRATEGIC: 0,
    Goal.Level.INTERMEDIATE: 1,
    Goal.Level.TACTICAL: 2,
    Goal.Level.SPRINT: 3,
}
NEXT_LEVEL = {
    Goal.Level.STRATEGIC: Goal.Level.INTERMEDIATE,
    Goal.Level.INTERMEDIATE: Goal.Level.TACTICAL,
    Goal.Level.TACTICAL: Goal.Level.SPRINT,
    Goal.Level.SPRINT: Goal.Level.SPRINT,
}
MAX_TEXT = 5000
MAX_WEIGHT = 1000.0
PROPOSABLE = ("title", "outcome", "target_date", "targets")


# --- small validators ---------------------------------------------------------------------------


def _member_user(membership: Membership, user_id: int | None, field: str = "owner") -> User | None:
    """A user of the same organisation who can edit (stakeholders cannot own work)."""
    if user_id is None:
        return None
    owner = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if owner is None:
        raise ValidationFailed("No such member in this organisation.", field=field)
    if not owner.can_write:
        raise ValidationFailed("A stakeholder cannot own this; choose a member.", field=field)
    return owner.user


# --- teams ----------------------------------------------------------------------------------------


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


# --- products -------------------------------------------------------------------------------------


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


# --- goals ----------------------------------------------------------------------------------------


def goals_of(membership: Membership) -> QuerySet[Goal]:
    return Goal.objects.filter(organisation_id=membership.organisation_id)


def get_goal(membership: Membership, goal_id: int) -> Goal:
    try:
        return Goal.objects.select_related("owner", "product", "parent").get(
            pk=goal_id, organisation_id=membership.organisation_id
        )
    except Goal.DoesNotExist:
        raise NotFound("No such goal.") from None


def _goal_snapshot(goal: Goal) -> dict[str, Any]:
    data = snapshot(goal, GOAL_FIELDS)
    data["parent"] = goal.parent_id
    data["owner"] = goal.owner.email if goal.owner else None
    return data


def _parent_for(membership: Membership, product: Product | None, parent_id: int | None) -> Goal | None:
    if parent_id is None:
        return None
    try:
        parent = get_goal(membership, parent_id)
    except NotFound:
        raise ValidationFailed("No such parent goal in this organisation.", field="parent") from None
    if parent.product_id != (product.pk if product else None):
        raise ValidationFailed(
            "A parent must be in the same product tree; to count toward a goal elsewhere, align to it.",
            field="parent",
        )
    return parent


def _check_level(level: str, parent: Goal | None) -> None:
    if parent is None:
        return
    if level == Goal.Level.STRATEGIC:
        raise ValidationFailed("A strategic goal is the top of its tree and has no parent.", field="level")
    if LEVEL_RANK[Goal.Level(level)] < LEVEL_RANK[Goal.Level(parent.level)]:
        raise ValidationFailed(
            f"A {Goal.Level(level).label.lower()} cannot sit under a {Goal.Level(parent.level).label.lower()}.",
            field="level",
        )


def _weight(value: Any) -> float:
    weight = _number(value, "weight")
    if not 0 < weight <= MAX_WEIGHT:
        raise ValidationFailed(f"Weight must be above 0 and at most {MAX_WEIGHT:g}.", field="weight")
    return weight


def _cadence(value: Any) -> int:
    days = _whole(value, "checkin_cadence_days", "a whole number of days")
    if not 1 <= days <= 366:
        raise ValidationFailed(
            "Check-in cadence must be between 1 and 366 days.", field="checkin_cadence_days"
        )
    return days


@dataclass
class TargetSpec:
    name: str
    baseline: float
    target: float
    unit: str = ""
    direction: str = TargetMeasure.Direction.INCREASE
    # A Value measure the target tracks (progress, check-in values and staleness then come from it).
    measure_id: int | None = None


def trackable_measures(membership: Membership, product_id: int | None) -> QuerySet[Measure]:
    """The live measures a target of a goal in this product (None: organisation level) may track:
    the organisation's measures of that product, and its organisation-wide ones."""
    from truenorth.measures.models import Measure

    qs = Measure.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True)
    scope = Q(product__isnull=True) if product_id is None else Q(product__isnull=True) | Q(product_id=product_id)
    return qs.filter(scope).select_related("product").order_by("product_id", "name", "id")


def _tracked_measure(membership: Membership, measure_id: Any, field: str) -> Measure | None:
    """The measure a target may track: of the same organisation (another's is "no such measure", never
    revealed) and live. The UI offers the goal's product's and the organisation-wide measures first;
    any product's measure of the organisation may be tracked (an imported tree keeps its links)."""
    from truenorth.measures.models import Measure

    if measure_id in (None, ""):
        return None
    pk = _whole(measure_id, field, "a measure id")
    measure = Measure.objects.filter(pk=pk, organisation_id=membership.organisation_id).first()
    if measure is None:
        raise ValidationFailed("No such measure in this organisation.", field=field)
    if measure.archived_at is not None:
        raise ValidationFailed(f"“{measure.name}” is archived: restore it to track it.", field=field)
    return measure


def _with_measure_defaults(raw: Mapping[str, Any], measure: Measure | None) -> Mapping[str, Any]:
    """A target that tracks a measure may leave its name and unit empty: they come from the measure."""
    if measure is None:
        return raw
    filled = dict(raw)
    if not str(filled.get("name") or "").strip():
        filled["name"] = measure.name
    if not str(filled.get("unit") or "").strip():
        filled["unit"] = measure.unit
    return filled


def _clean_target(spec: TargetSpec | Mapping[str, Any], index: int | None = None) -> TargetSpec:
    raw = spec if isinstance(spec, Mapping) else spec.__dict__
    prefix = f"targets.{index}." if index is not None else ""
    name = _text(raw.get("name"), f"{prefix}name", required=True, max_length=120)
    direction = _choice(
        str(raw.get("direction") or TargetMeasure.Direction.INCREASE),
        TargetMeasure.Direction.values,
        f"{prefix}direction",
    )
    baseline = _number(raw.get("baseline"), f"{prefix}baseline")
    target = _number(raw.get("target"), f"{prefix}target")
    if direction == TargetMeasure.Direction.INCREASE and target < baseline:
        raise ValidationFailed(
            "Higher is better, so the target must not be below the baseline.", field=f"{prefix}target"
        )
    if direction == TargetMeasure.Direction.DECREASE and target > baseline:
        raise ValidationFailed(
            "Lower is better, so the target must not be above the baseline.", field=f"{prefix}target"
        )
    return TargetSpec(
        name=name,
        baseline=baseline,
        target=target,
        unit=_text(raw.get("unit"), f"{prefix}unit", max_length=30),
        direction=direction,
        measure_id=raw.get("measure_id"),
    )


def _resolved_target(
    membership: Membership, spec: TargetSpec | Mapping[str, Any], index: int | None = None
) -> tuple[TargetSpec, Measure | None]:
    """Clean a target spec and resolve the measure it tracks (checked against the organisation)."""
    raw = spec if isinstance(spec, Mapping) else spec.__dict__
    prefix = f"targets.{index}." if index is not None else ""
    measure = _tracked_measure(membership, raw.get("measure_id"), f"{prefix}measure_id")
    clean = _clean_target(_with_measure_defaults(raw, measure), index)
    clean.measure_id = measure.pk if measure is not None else None
    return clean, measure


@transaction.atomic
def create_goal(
    membership: Membership,
    actor: User,
    *,
    title: str,
    product_id: int | None = None,
    parent_id: int | None = None,
    level: str | None = None,
    outcome: str = "",
    owner_id: int | None = None,
    target_date: dt.date | str | None = None,
    status: str = Goal.Status.PROPOSED,
    weight: float = 1.0,
    checkin_cadence_days: int = 7,
    targets: Iterable[TargetSpec | Mapping[str, Any]] = (),
) -> Goal:
    """Create a goal in a product tree (or at organisation level when product_id is None)."""
    require_writer(membership)
    product = get_product(membership, product_id) if product_id is not None else None
    if product is not None and product.archived_at is not None:
        raise ValidationFailed("This product is archived; restore it before adding goals.", field="product")
    parent = _parent_for(membership, product, parent_id)
    if level is None:
        level = NEXT_LEVEL[Goal.Level(parent.level)] if parent else Goal.Level.STRATEGIC
    level = _choice(level, Goal.Level.values, "level")
    _check_level(level, parent)
    resolved = [_resolved_target(membership, t, i) for i, t in enumerate(targets)]
    clean_targets = [clean for clean, _ in resolved]
    siblings = Goal.objects.filter(organisation_id=membership.organisation_id, product=product, parent=parent)
    position = (siblings.aggregate(m=Max("position"))["m"] or 0) + 1 if siblings.exists() else 0
    goal = Goal.objects.create(
        organisation_id=membership.organisation_id,
        product=product,
        parent=parent,
        level=level,
        title=_text(title, "title", required=True, max_length=200),
        outcome=_text(outcome, "outcome"),
        owner=_member_user(membership, owner_id),
        target_date=_date(target_date, "target_date"),
        status=_choice(status, Goal.Status.values, "status"),
        weight=_weight(weight),
        checkin_cadence_days=_cadence(checkin_cadence_days),
        position=position,
    )
    for i, t in enumerate(clean_targets):
        TargetMeasure.objects.create(goal=goal, position=i, **t.__dict__)
    changes = diff({}, _goal_snapshot(goal))
    if clean_targets:
        changes["targets"] = {"old": None, "new": [_target_text(t, m) for t, m in resolved]}
    record(membership.organisation, goal, actor, HistoryEntry.Action.CREATED, changes)
    return goal


def _target_text(t: TargetSpec | TargetMeasure, measure: Measure | None = None) -> str:
    unit = f" {t.unit}" if t.unit else ""
    arrow = "↑" if t.direction == TargetMeasure.Direction.INCREASE else "↓"
    tracks = f", tracks measure “{measure.name}”" if measure is not None else ""
    return f"{t.name}: {t.baseline:g} → {t.target:g}{unit} ({arrow}{tracks})"


def _locked_goal(membership: Membership, goal_id: int, version: int | None) -> Goal:
    get_goal(membership, goal_id)
    goal = Goal.objects.select_for_update(of=("self",)).select_related("owner").get(pk=goal_id)
    _check_version(goal, version)
    return goal


def _save_goal(
    membership: Membership,
    actor: User,
    goal: Goal,
    before: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Goal:
    changes = diff(before, _goal_snapshot(goal))
    changes.update(extra or {})
    if changes:
        goal.version += 1
        goal.updated_at = timezone.now()
        goal.save()
        record(membership.organisation, goal, actor, HistoryEntry.Action.UPDATED, changes)
    return goal


@transaction.atomic
def update_goal(
    membership: Membership,
    actor: User,
    goal_id: int,
    *,
    version: int | None = None,
    **fields: Any,
) -> Goal:
    """Change any of: title, outcome, level, status, owner_id (None clears), target_date (None clears),
    weight, checkin_cadence_days. Fields not given are left alone; a stale version is a 409."""
    require_writer(membership)
    allowed = {
        "title",
        "outcome",
        "level",
        "status",
        "owner_id",
        "target_date",
        "weight",
        "checkin_cadence_days",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(f"Unknown field {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    goal = _locked_goal(membership, goal_id, version)
    before = _goal_snapshot(goal)
    if "title" in fields:
        goal.title = _text(fields["title"], "title", required=True, max_length=200)
    if "outcome" in fields:
        goal.outcome = _text(fields["outcome"], "outcome")
    if "level" in fields:
        level = _choice(fields["level"], Goal.Level.values, "level")
        _check_level(level, goal.parent)
        for child in goal.children.all():
            if (
                LEVEL_RANK[Goal.Level(child.level)] < LEVEL_RANK[Goal.Level(level)]
                or child.level == Goal.Level.STRATEGIC
            ):
                raise ValidationFailed(f"Its child “{child.title}” would then sit above it.", field="level")
        goal.level = level
    if "status" in fields:
        goal.status = _choice(fields["status"], Goal.Status.values, "status")
    if "owner_id" in fields:
        goal.owner = _member_user(membership, fields["owner_id"])
    if "target_date" in fields:
        goal.target_date = _date(fields["target_date"], "target_date")
    if "weight" in fields:
        goal.weight = _weight(fields["weight"])
    if "checkin_cadence_days" in fields:
        goal.checkin_cadence_days = _cadence(fields["checkin_cadence_days"])
    return _save_goal(membership, actor, goal, before)


# --- the contribution graph (parents and alignments) and cycles -----------------------------------


def _up_edges(organisation_id: int) -> dict[int, set[int]]:
    """goal id -> the goals it counts toward directly (its parent and the goals it aligns to)."""
    up: dict[int, set[int]] = defaultdict(set)
    for gid, parent_id in Goal.objects.filter(
        organisation_id=organisation_id, parent__isnull=False
    ).values_list("id", "parent_id"):
        up[gid].add(parent_id)
    for src, dst in GoalLink.objects.filter(
        organisation_id=organisation_id, kind=GoalLink.Kind.ALIGNS
    ).values_list("source_id", "target_id"):
        up[src].add(dst)
    return up


def _reachable(up: Mapping[int, set[int]], start: int) -> set[int]:
    seen: set[int] = set()
    stack = list(up.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(up.get(node, ()))
    return seen


def _refuse_cycle(up: dict[int, set[int]], source: Goal, target: Goal, field: str) -> None:
    """Refuse a new edge "source counts toward target" that would close a loop."""
    if source.pk == target.pk:
        raise ValidationFailed("A goal cannot count toward itself.", field=field)
    if source.pk in _reachable(up, target.pk):
        raise ValidationFailed(
            f"“{target.title}” already counts toward “{source.title}”: this would make a cycle.", field=field
        )


def _refuse_double_count(up: dict[int, set[int]], source: Goal, target: Goal, field: str) -> None:
    """Refuse a new edge "source counts toward target" when source, or a goal counting toward source,
    already counts toward target or one of its ancestors: its progress would be counted twice."""
    down: dict[int, set[int]] = defaultdict(set)
    for node, parents in up.items():
        for parent in parents:
            down[parent].add(node)
    destinations = {target.pk} | _reachable(up, target.pk)
    for node in {source.pk} | _reachable(down, source.pk):
        already = _reachable(up, node) & destinations
        if already:
            titles = dict(Goal.objects.filter(pk__in={node, *already}).values_list("pk", "title"))
            reached = titles.get(min(already), "")
            who = "It" if node == source.pk else f"“{titles.get(node, '')}”, which counts toward it,"
            raise ValidationFailed(
                f"{who} already counts toward “{reached}”: its progress would be counted twice.", field=field
            )


@transaction.atomic
def move_goal(
    membership: Membership,
    actor: User,
    goal_id: int,
    *,
    parent_id: int | None,
    position: int | None = None,
    version: int | None = None,
) -> Goal:
    """Re-parent (within its tree; None makes it a root) and/or reorder among its new siblings."""
    require_writer(membership)
    goal = _locked_goal(membership, goal_id, version)
    before = _goal_snapshot(goal)
    product = goal.product
    parent = _parent_for(membership, product, parent_id)
    if parent is not None:
        up = _up_edges(membership.organisation_id)
        up[goal.pk].discard(goal.parent_id or 0)
        _refuse_cycle(up, goal, parent, "parent")
        _refuse_double_count(up, goal, parent, "parent")
        _check_level(goal.level, parent)
    elif goal.level != Goal.Level.STRATEGIC and goal.parent_id is not None:
        pass  # a non-strategic root is allowed (e.g. a tactical goal not yet placed), lint shows it
    siblings = list(
        Goal.objects.filter(
            organisation_id=membership.organisation_id,
            product=product,
            parent=parent,
            archived_at__isnull=True,
        )
        .exclude(pk=goal.pk)
        .order_by("position", "id")
    )
    index = len(siblings) if position is None else max(0, min(int(position), len(siblings)))
    siblings.insert(index, goal)
    old_parent_id = goal.parent_id
    goal.parent = parent
    for i, sibling in enumerate(siblings):
        if sibling.pk != goal.pk and sibling.position != i:
            Goal.objects.filter(pk=sibling.pk).update(position=i)
    goal.position = index
    if old_parent_id != goal.parent_id:  # close the gap it leaves among its former siblings
        former = Goal.objects.filter(
            organisation_id=membership.organisation_id,
            product=product,
            parent_id=old_parent_id,
            archived_at__isnull=True,
        ).exclude(pk=goal.pk)
        for i, sibling in enumerate(former.order_by("position", "id")):
            if sibling.position != i:
                Goal.objects.filter(pk=sibling.pk).update(position=i)
    return _save_goal(membership, actor, goal, before)


@transaction.atomic
def archive_goal(
    membership: Membership, actor: User, goal_id: int, *, archived: bool = True, version: int | None = None
) -> Goal:
    """Archive (hide from the tree, keep history) or restore; a goal with live children cannot be archived."""
    require_writer(membership)
    goal = _locked_goal(membership, goal_id, version)
    if archived and goal.children.filter(archived_at__isnull=True).exists():
        raise ValidationFailed("Archive or move its sub-goals first.", field="archived")
    if (goal.archived_at is not None) == archived:
        return goal  # already in that state: nothing changes, nothing is recorded
    if not archived and goal.parent is not None and goal.parent.archived_at is not None:
        raise ValidationFailed("Its parent goal is archived: restore the parent first.", field="archived")
    before = _goal_snapshot(goal)
    goal.archived_at = timezone.now() if archived else None
    return _save_goal(membership, actor, goal, before)


# --- target measures and observations -------------------------------------------------------------


def _get_target(membership: Membership, target_id: int) -> TargetMeasure:
    try:
        return TargetMeasure.objects.select_related("goal").get(
            pk=target_id, goal__organisation_id=membership.organisation_id
        )
    except TargetMeasure.DoesNotExist:
        raise NotFound("No such target measure.") from None


@transaction.atomic
def add_target(
    membership: Membership,
    actor: User,
    goal_id: int,
    spec: TargetSpec | Mapping[str, Any],
    *,
    version: int | None = None,
) -> TargetMeasure:
    require_writer(membership)
    goal = _locked_goal(membership, goal_id, version)
    clean, measure = _resolved_target(membership, spec)
    position = goal.targets.count()
    target = TargetMeasure.objects.create(goal=goal, position=position, **clean.__dict__)
    _save_goal(
        membership,
        actor,
        goal,
        _goal_snapshot(goal),
        {"targets": {"old": None, "new": _target_text(target, measure)}},
    )
    return target


@transaction.atomic
def update_target(
    membership: Membership,
    actor: User,
    target_id: int,
    spec: Mapping[str, Any],
    *,
    version: int | None = None,
) -> TargetMeasure:
    require_writer(membership)
    target = _get_target(membership, target_id)
    goal = _locked_goal(membership, target.goal_id, version)
    old_text = _target_text(target, target.measure)
    merged = {f: getattr(target, f) for f in TARGET_FIELDS} | {k: v for k, v in spec.items() if v is not None}
    # `measure_id` given as None (or "") unlinks the target; left out, the link stays as it is.
    merged["measure_id"] = spec["measure_id"] if "measure_id" in spec else target.measure_id
    clean, measure = _resolved_target(membership, merged)
    for key, value in clean.__dict__.items():
        setattr(target, key, value)
    target.save()
    new_text = _target_text(target, measure)
    if new_text != old_text:
        _save_goal(
            membership, actor, goal, _goal_snapshot(goal), {"targets": {"old": old_text, "new": new_text}}
        )
    return target


@transaction.atomic
def remove_target(membership: Membership, actor: User, target_id: int, *, version: int | None = None) -> None:
    """Take a target measure off its goal by archiving it: it leaves the goal's targets and progress,
    but it and its observations are kept (evidence is append-only), and the goal's history says so."""
    require_writer(membership)
    target = _get_target(membership, target_id)
    goal = _locked_goal(membership, target.goal_id, version)
    text = _target_text(target)
    kept = target.observations.count()
    target.archived_at = timezone.now()
    target.save(update_fields=["archived_at"])
    archived = f"archived: {text} ({kept} observed value{'s' if kept != 1 else ''} kept)"
    record(
        membership.organisation,
        target,
        actor,
        HistoryEntry.Action.ARCHIVED,
        {"archived_at": {"old": None, "new": timezone.localtime(target.archived_at).isoformat()}},
    )
    _save_goal(membership, actor, goal, _goal_snapshot(goal), {"targets": {"old": text, "new": archived}})


def record_observation(
    membership: Membership,
    actor: User,
    target_id: int,
    value: Any,
    *,
    observed_at: dt.datetime | None = None,
    note: str = "",
) -> TargetObservation:
    require_writer(membership)
    target = _get_target(membership, target_id)
    if target.measure_id is not None:
        raise ValidationFailed(
            f"“{target.name}” takes its values from a measure of the Value pillar: record the value "
            "on that measure.",
            field="target",
        )
    number = _number(value, "value")
    when = _observed_time(observed_at or timezone.now(), "observed_at", now=timezone.now())
    observation = TargetObservation.objects.create(
        target_measure=target,
        value=number,
        observed_at=when,
        note=_text(note, "note", max_length=500),
        recorded_by=actor,
    )
    record(
        membership.organisation,
        target.goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"observation": {"old": None, "new": f"{target.name} = {number:g} at {when:%Y-%m-%d}"}},
    )
    return observation


# --- alignment links ------------------------------------------------------------------------------


@transaction.atomic
def link_goals(membership: Membership, actor: User, source_id: int, target_id: int, kind: str) -> GoalLink:
    """`aligns`: source counts toward target (roll-up, cycles refused); `relates`: a plain cross-reference."""
    require_writer(membership)
    kind = _choice(kind, GoalLink.Kind.values, "kind")
    source = get_goal(membership, source_id)
    try:
        target = get_goal(membership, target_id)
    except NotFound:
        raise ValidationFailed("No such goal in this organisation.", field="target") from None
    if source.pk == target.pk:
        raise ValidationFailed("A goal cannot link to itself.", field="target")
    if GoalLink.objects.filter(source=source, target=target, kind=kind).exists():
        raise Conflict("These goals are already linked that way.", field="target")
    if kind == GoalLink.Kind.ALIGNS:
        if source.product_id == target.product_id:
            raise ValidationFailed(
                "Both goals are in the same tree: move it under that goal instead.", field="target"
            )
        if target.archived_at is not None or target.status == Goal.Status.ABANDONED:
            raise ValidationFailed(
                "That goal is archived or abandoned: nothing can count toward it.", field="target"
            )
        up = _up_edges(membership.organisation_id)
        _refuse_cycle(up, source, target, "target")
        _refuse_double_count(up, source, target, "target")
    link = GoalLink.objects.create(
        organisation_id=membership.organisation_id, source=source, target=target, kind=kind
    )
    record(
        membership.organisation,
        source,
        actor,
        HistoryEntry.Action.UPDATED,
        {f"link:{kind}": {"old": None, "new": f"#{target.pk} {target.title}"}},
    )
    return link


@transaction.atomic
def unlink_goals(membership: Membership, actor: User, link_id: int) -> None:
    require_writer(membership)
    link = (
        GoalLink.objects.select_related("source", "target")
        .filter(pk=link_id, organisation_id=membership.organisation_id)
        .first()
    )
    if link is None:
        raise NotFound("No such link.")
    record(
        membership.organisation,
        link.source,
        actor,
        HistoryEntry.Action.UPDATED,
        {f"link:{link.kind}": {"old": f"#{link.target_id} {link.target.title}", "new": None}},
    )
    link.delete()


def links_of(membership: Membership, goal: Goal) -> dict[str, list[GoalLink]]:
    qs = GoalLink.objects.filter(organisation_id=membership.organisation_id).select_related(
        "source__product", "target__product"
    )
    return {
        "out": list(qs.filter(source=goal).order_by("kind", "id")),
        "in": list(qs.filter(target=goal).order_by("kind", "id")),
    }


# --- progress -------------------------------------------------------------------------------------


def latest_values(target_ids: Iterable[int]) -> dict[int, float]:
    """The latest value of each target measure (one query): from its Value measure's current
    (non-superseded) observations when it tracks one, else from its own observations."""
    from truenorth.measures.models import Observation

    latest = TargetObservation.objects.filter(target_measure=OuterRef("pk")).order_by("-observed_at", "-id")
    measured = Observation.objects.filter(measure=OuterRef("measure_id"), superseded=False).order_by(
        "-observed_at", "-id"
    )
    rows = (
        TargetMeasure.objects.filter(pk__in=list(target_ids))
        .annotate(
            latest=Subquery(latest.values("value")[:1]),
            measured=Subquery(measured.values("value")[:1]),
        )
        .values_list("pk", "measure_id", "latest", "measured")
    )
    values = {pk: (measured if measure_id is not None else own) for pk, measure_id, own, measured in rows}
    return {pk: value for pk, value in values.items() if value is not None}


def stale_target_ids(targets: Iterable[TargetMeasure], now: dt.datetime | None = None) -> set[int]:
    """The targets whose Value measure is stale (last observation older than its cadence, or none).
    One query for any number of targets; none when no target tracks a measure."""
    from truenorth.measures.maths import is_stale
    from truenorth.measures.models import Measure

    by_measure: dict[int, list[int]] = defaultdict(list)
    for t in targets:
        if t.measure_id is not None:
            by_measure[t.measure_id].append(t.pk)
    if not by_measure:
        return set()
    now = now or timezone.now()
    # An archived measure takes no new observation, so a target tracking it is stale as well.
    rows = (
        Measure.objects.filter(pk__in=list(by_measure))
        .annotate(last=Max("observations__observed_at", filter=Q(observations__superseded=False)))
        .values_list("pk", "cadence_days", "last", "archived_at")
    )
    return {
        tid
        for pk, cadence, last, archived_at in rows
        if archived_at is not None or is_stale(last, cadence, now)
        for tid in by_measure[pk]
    }


def goals_tracking(membership: Membership, measure_id: int) -> list[tuple[TargetMeasure, float | None]]:
    """The live goals' target measures that track this Value measure, with each goal's progress
    (a fixed number of queries, however many goals track it)."""
    targets = list(
        TargetMeasure.objects.filter(
            measure_id=measure_id,
            goal__organisation_id=membership.organisation_id,
            goal__archived_at__isnull=True,
        )
        .select_related("goal", "goal__product", "goal__owner")
        .order_by("goal__title", "goal_id", "position", "id")
    )
    if not targets:
        return []
    progress = progress_for_org(membership.organisation_id)
    return [(t, progress[t.goal_id].value if t.goal_id in progress else None) for t in targets]


def target_progress_of(target: TargetMeasure, current: float | None) -> float | None:
    return progress_core.target_progress(target.baseline, target.target, current, target.direction)


def progress_for_org(organisation_id: int) -> dict[int, progress_core.Progress]:
    """Progress of every live goal of the organisation (a fixed number of queries)."""
    goals = list(
        Goal.objects.filter(organisation_id=organisation_id, archived_at__isnull=True).values_list(
            "id", "parent_id", "weight", "status"
        )
    )
    targets = list(
        TargetMeasure.objects.filter(goal__organisation_id=organisation_id, goal__archived_at__isnull=True)
    )
    latest = latest_values(t.pk for t in targets)
    by_goal: dict[int, list[float | None]] = defaultdict(list)
    for t in targets:
        by_goal[t.goal_id].append(target_progress_of(t, latest.get(t.pk)))
    nodes = {
        gid: progress_core.GoalNode(
            id=gid,
            weight=weight,
            target_progress=by_goal.get(gid, []),
            counts=status != Goal.Status.ABANDONED,
        )
        for gid, _, weight, status in goals
    }
    for gid, parent_id, _, _ in goals:
        if parent_id in nodes:
            nodes[parent_id].contributors.append(gid)
    for src, dst in GoalLink.objects.filter(
        organisation_id=organisation_id, kind=GoalLink.Kind.ALIGNS
    ).values_list("source_id", "target_id"):
        if src in nodes and dst in nodes:
            nodes[dst].contributors.append(src)
    return progress_core.rollup(nodes)


# --- the tree -------------------------------------------------------------------------------------


@dataclass
class TreeRow:
    goal: Goal
    depth: int
    child_count: int
    progress: float | None
    findings: int


def _in_tree(qs: QuerySet[Goal], product_id: int | None) -> QuerySet[Goal]:
    """Goals of one product's tree, or the organisation-level goals when product_id is None."""
    return qs.filter(product__isnull=True) if product_id is None else qs.filter(product_id=product_id)


def tree_level(
    membership: Membership,
    *,
    product_id: int | None,
    parent_id: int | None,
    progress: Mapping[int, progress_core.Progress] | None = None,
    include_archived: bool = False,
) -> list[TreeRow]:
    """One level of a tree (the roots when parent_id is None), children counted, for lazy loading."""
    qs = _in_tree(Goal.objects.filter(organisation_id=membership.organisation_id), product_id)
    qs = qs.filter(parent__isnull=True) if parent_id is None else qs.filter(parent_id=parent_id)
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    live_children = Count("children", filter=Q(children__archived_at__isnull=True))
    rows = list(qs.select_related("owner").annotate(n_children=live_children).order_by("position", "id"))
    progress = progress if progress is not None else progress_for_org(membership.organisation_id)
    return [
        TreeRow(
            goal=g,
            depth=0,
            child_count=g.n_children,
            progress=progress[g.pk].value if g.pk in progress else None,
            findings=0,
        )
        for g in rows
    ]


def whole_tree(membership: Membership, product_id: int | None) -> list[TreeRow]:
    """Every live goal of a product (or the organisation level) in depth-first order, in fixed queries."""
    goals = list(
        _in_tree(
            Goal.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True),
            product_id,
        )
        .select_related("owner")
        .prefetch_related("targets")
        .order_by("position", "id")
    )
    progress = progress_for_org(membership.organisation_id)
    children: dict[int | None, list[Goal]] = defaultdict(list)
    ids = {g.pk for g in goals}
    for g in goals:
        children[g.parent_id if g.parent_id in ids else None].append(g)
    rows: list[TreeRow] = []
    stack = [(g, 0) for g in reversed(children[None])]
    while stack:
        goal, depth = stack.pop()
        p = progress.get(goal.pk)
        rows.append(TreeRow(goal, depth, len(children[goal.pk]), p.value if p else None, 0))
        stack.extend((c, depth + 1) for c in reversed(children[goal.pk]))
    return rows


# --- check-ins ------------------------------------------------------------------------------------


@transaction.atomic
def check_in(
    membership: Membership,
    actor: User,
    goal_id: int,
    *,
    status: str,
    confidence: Any,
    narrative: str = "",
    target_id: int | None = None,
    value: Any = None,
    idempotency_key: str = "",
) -> CheckIn:
    """The goal's owner (or an admin) records how an active goal is going, optionally with a new value.

    A new value for a target that tracks a Value measure is recorded on that measure (never as the
    target's own value). With an idempotency key (the check-in form sends one), a repeated request
    returns the first check-in and records nothing twice."""
    require_writer(membership)
    goal = get_goal(membership, goal_id)
    if goal.owner_id != actor.pk and not membership.can_admin:
        raise Forbidden("Only the goal's owner (or an admin) records its check-ins.")
    if goal.status != Goal.Status.ACTIVE or goal.archived_at is not None:
        state = "archived" if goal.archived_at is not None else goal.status
        raise ValidationFailed(f"Check-ins are for active goals; this one is {state}.", field="status")
    status = _choice(status, CheckIn.Status.values, "status")
    conf = _whole(confidence, "confidence")
    if not 0 <= conf <= 10:
        raise ValidationFailed("Confidence must be between 0 and 10.", field="confidence")
    observation = None
    measure_observation = None
    key = _text(idempotency_key, "idempotency_key", max_length=100)
    if key:
        earlier = CheckIn.objects.filter(goal=goal, idempotency_key=key).first()
        if earlier is not None:
            return earlier
    if target_id is not None or value not in (None, ""):
        if target_id is None:
            raise ValidationFailed("Choose which target measure the value is for.", field="target")
        target = _get_target(membership, target_id)
        if target.goal_id != goal.pk:
            raise ValidationFailed("That target measure belongs to another goal.", field="target")
        if value in (None, ""):
            raise ValidationFailed("Give the new value of the target measure.", field="value")
        if target.measure_id is not None:
            # The value goes to the measure the target tracks (and so to every goal tracking it).
            from truenorth.measures import services as measures

            measure_observation = measures.add_observation(
                membership,
                actor,
                target.measure_id,
                value,
                note=f"check-in on “{goal.title}”"[:500],
                idempotency_key=f"check-in:{goal.pk}:{key}" if key else "",
            )
        else:
            observation = record_observation(membership, actor, target.pk, value, note="check-in")
    try:
        with transaction.atomic():
            checkin = CheckIn.objects.create(
                goal=goal,
                author=actor,
                status=status,
                confidence=conf,
                narrative=_text(narrative, "narrative", max_length=2000),
                observation=observation,
                measure_observation=measure_observation,
                idempotency_key=key,
            )
    except IntegrityError:
        raise Conflict("This check-in is being recorded already.", field="idempotency_key") from None
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"check-in": {"old": None, "new": f"{checkin.get_status_display()}, confidence {conf}/10"}},
    )
    return checkin


@dataclass
class Overdue:
    goal: Goal
    last_checkin: dt.datetime | None
    due: dt.datetime
    days_overdue: int


def overdue_checkins(
    membership: Membership,
    *,
    product_id: int | None = None,
    owner_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[Overdue]:
    """Active goals whose last check-in (or, before the first, their creation) is older than their cadence."""
    now = now or timezone.now()
    qs = (
        Goal.objects.filter(
            organisation_id=membership.organisation_id, status=Goal.Status.ACTIVE, archived_at__isnull=True
        )
        .select_related("owner", "product")
        .annotate(last_checkin=Max("checkins__created_at"))
    )
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    result = []
    for goal in qs:
        last = goal.last_checkin
        due = (last or goal.created_at) + dt.timedelta(days=goal.checkin_cadence_days)
        if due < now:
            result.append(Overdue(goal, last, due, (now - due).days))
    result.sort(
        key=lambda o: (
            o.goal.owner.email if o.goal.owner else "~",
            o.goal.product.name if o.goal.product else "",
            o.due,
        )
    )
    return result


# --- lint -----------------------------------------------------------------------------------------


def lint(
    membership: Membership,
    *,
    product_id: int | None = None,
    goal_id: int | None = None,
    org_level: bool = False,
    today: dt.date | None = None,
) -> list[tuple[Goal, lint_core.Finding]]:
    """Quality findings for one goal, one product's goals, the organisation-level goals, or everything."""
    qs = (
        Goal.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True)
        .select_related("owner", "parent", "product")
        .prefetch_related("targets")
        .order_by("product__name", "position", "id")
    )
    if goal_id is not None:
        qs = qs.filter(pk=goal_id)
    elif product_id is not None:
        qs = qs.filter(product_id=product_id)
    elif org_level:
        qs = qs.filter(product__isnull=True)
    today = today or timezone.localdate()
    goals = list(qs)
    stale = stale_target_ids(t for goal in goals for t in goal.targets.all())
    out: list[tuple[Goal, lint_core.Finding]] = []
    for goal in goals:
        if goal.status in (Goal.Status.ABANDONED,):
            continue
        facts = lint_core.GoalFacts(
            id=goal.pk,
            title=goal.title,
            outcome=goal.outcome,
            status=goal.status,
            owner=goal.owner.email if goal.owner else None,
            target_date=goal.target_date,
            targets=[
                lint_core.TargetFacts(t.name, t.baseline, t.target, stale=t.pk in stale)
                for t in goal.targets.all()
            ],
            parent_target_date=goal.parent.target_date if goal.parent else None,
            parent_title=goal.parent.title if goal.parent else None,
        )
        out.extend((goal, f) for f in lint_core.lint_goal(facts, today))
    return out


# --- comments, proposals, endorsements ------------------------------------------------------------


def goal_url(goal: Goal) -> str:
    return f"/o/{goal.organisation.slug}/goals/{goal.pk}/"


def add_comment(membership: Membership, actor: User, goal_id: int, body: str) -> Comment:
    """Anyone in the organisation may comment (stakeholders included); @e-mail mentions notify members."""
    goal = get_goal(membership, goal_id)
    body = _text(body, "body", required=True, max_length=5000)
    comment = Comment.objects.create(goal=goal, author=actor, body=body)
    org = membership.organisation
    mentioned = engagement.mentioned_members(org, body)
    engagement.notify(
        org, mentioned, f"{actor.display_name} mentioned you on “{goal.title}”", goal_url(goal), actor=actor
    )
    if goal.owner and goal.owner not in mentioned:
        engagement.notify(
            org,
            [goal.owner],
            f"{actor.display_name} commented on your goal “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return comment


def comments_of(membership: Membership, goal: Goal) -> QuerySet[Comment]:
    return Comment.objects.filter(goal=goal, goal__organisation_id=membership.organisation_id).select_related(
        "author"
    )


def _clean_changes(goal: Goal, changes: Mapping[str, Any]) -> dict[str, Any]:
    if not changes:
        raise ValidationFailed("Propose at least one change.", field="changes")
    unknown = set(changes) - set(PROPOSABLE)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"'{name}' cannot be proposed; propose {', '.join(PROPOSABLE)}.", field=name)
    clean: dict[str, Any] = {}
    if "title" in changes:
        clean["title"] = _text(changes["title"], "title", required=True, max_length=200)
    if "outcome" in changes:
        clean["outcome"] = _text(changes["outcome"], "outcome")
    if "target_date" in changes:
        date = _date(changes["target_date"], "target_date")
        clean["target_date"] = date.isoformat() if date else None
    if "targets" in changes:
        raw = changes["targets"]
        if not isinstance(raw, Mapping) or not raw:
            raise ValidationFailed("Give target changes as {target id: {target: value}}.", field="targets")
        own = {t.pk: t for t in goal.targets.all()}
        clean_targets: dict[str, dict[str, float]] = {}
        for key, value in raw.items():
            try:
                tid = int(key)
            except (TypeError, ValueError):
                raise ValidationFailed(f"'{key}' is not a target measure id.", field="targets") from None
            if tid not in own:
                raise ValidationFailed(f"Target measure {key} is not one of this goal's.", field="targets")
            new_target = value.get("target") if isinstance(value, Mapping) else value
            spec = {f: getattr(own[tid], f) for f in TARGET_FIELDS} | {"target": new_target}
            new_value = _clean_target(spec).target
            if new_value != own[tid].target:  # proposing the current value changes nothing
                clean_targets[str(tid)] = {"target": new_value}
        if clean_targets:
            clean["targets"] = clean_targets
    # A proposal carries only what differs from the goal today: a field sent with its current value
    # (a form posts every field) would otherwise be "changed" back over newer edits when accepted.
    current = {
        "title": goal.title,
        "outcome": goal.outcome,
        "target_date": goal.target_date.isoformat() if goal.target_date else None,
    }
    clean = {k: v for k, v in clean.items() if k == "targets" or current[k] != v}
    if not clean:
        raise ValidationFailed("That is what the goal already says: nothing to change.", field="changes")
    return clean


@transaction.atomic
def propose_change(
    membership: Membership, actor: User, goal_id: int, changes: Mapping[str, Any], reason: str = ""
) -> ChangeProposal:
    """Anyone in the organisation may propose new wording, targets or a date; the owner decides."""
    goal = get_goal(membership, goal_id)
    if goal.archived_at is not None:
        raise ValidationFailed("This goal is archived.", field="goal")
    proposal = ChangeProposal.objects.create(
        goal=goal,
        author=actor,
        changes=_clean_changes(goal, changes),
        reason=_text(reason, "reason", max_length=2000),
        goal_version=goal.version,
    )
    record(
        membership.organisation,
        proposal,
        actor,
        HistoryEntry.Action.CREATED,
        {
            "changes": {"old": None, "new": proposal.changes},
            **({"reason": {"old": None, "new": proposal.reason}} if proposal.reason else {}),
        },
    )
    if goal.owner:
        engagement.notify(
            membership.organisation,
            [goal.owner],
            f"{actor.display_name} proposed a change to “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return proposal


def goal_history(membership: Membership, goal: Goal) -> QuerySet[HistoryEntry]:
    """The goal's history with its proposals' (made, accepted, rejected, withdrawn, with their reasons),
    newest first, in one query."""
    proposal_ids = (
        ChangeProposal.objects.filter(goal_id=goal.pk).annotate(key=Cast("pk", CharField())).values("key")
    )
    return HistoryEntry.objects.filter(organisation_id=membership.organisation_id).filter(
        Q(object_type=object_type_of(goal), object_id=str(goal.pk))
        | Q(object_type=ChangeProposal._meta.label_lower, object_id__in=proposal_ids)
    ).order_by("-at", "-id")


def proposals_of(membership: Membership, goal: Goal) -> QuerySet[ChangeProposal]:
    return ChangeProposal.objects.filter(
        goal=goal, goal__organisation_id=membership.organisation_id
    ).select_related("author", "decided_by")


def _get_proposal(membership: Membership, proposal_id: int) -> ChangeProposal:
    proposal = (
        ChangeProposal.objects.select_for_update()
        .filter(pk=proposal_id, goal__organisation_id=membership.organisation_id)
        .first()
    )
    if proposal is None:
        raise NotFound("No such proposal.")
    return proposal


@transaction.atomic
def decide_proposal(
    membership: Membership,
    actor: User,
    proposal_id: int,
    *,
    accept: bool,
    reason: str = "",
    over_newer_edits: bool = False,
) -> ChangeProposal:
    """The goal's owner (or an admin) accepts (the change is applied) or rejects (a reason is required).

    A proposal made against an older version of the goal is not applied silently over the edits made
    since: accepting it is a 409 until the decider says so (`over_newer_edits`)."""
    proposal = _get_proposal(membership, proposal_id)
    goal = get_goal(membership, proposal.goal_id)
    if goal.owner_id != actor.pk and not membership.can_admin:
        raise Forbidden("Only the goal's owner (or an admin) decides on proposals.")
    if proposal.state != ChangeProposal.State.OPEN:
        raise Conflict(f"This proposal is already {proposal.state}.", field="state")
    reason = _text(reason, "reason", max_length=2000)
    if not accept and not reason:
        raise ValidationFailed("Say why the proposal is rejected.", field="reason")
    if accept and goal.version != proposal.goal_version and not over_newer_edits:
        raise Conflict(
            f"“{goal.title}” has changed since this proposal was made (version {proposal.goal_version} "
            f"then, {goal.version} now). Review the goal as it is now, then accept again choosing to "
            "apply the proposal over the newer edits.",
            field="over_newer_edits",
        )
    if accept:
        changes = dict(proposal.changes)
        targets = changes.pop("targets", {})
        if changes:
            update_goal(membership, actor, goal.pk, **changes)
        for tid, spec in targets.items():
            update_target(membership, actor, int(tid), spec)
    proposal.state = ChangeProposal.State.ACCEPTED if accept else ChangeProposal.State.REJECTED
    proposal.decided_by = actor
    proposal.decided_at = timezone.now()
    proposal.decision_reason = reason
    proposal.save()
    record(
        membership.organisation,
        proposal,
        actor,
        HistoryEntry.Action.UPDATED,
        {
            "state": {"old": "open", "new": proposal.state},
            **({"decision_reason": {"old": None, "new": reason}} if reason else {}),
        },
    )
    if proposal.author:
        verb = "accepted" if accept else "rejected"
        engagement.notify(
            membership.organisation,
            [proposal.author],
            f"{actor.display_name} {verb} your proposal on “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return proposal


@transaction.atomic
def withdraw_proposal(membership: Membership, actor: User, proposal_id: int) -> ChangeProposal:
    proposal = _get_proposal(membership, proposal_id)
    if proposal.author_id != actor.pk:
        raise Forbidden("Only its author can withdraw a proposal.")
    if proposal.state != ChangeProposal.State.OPEN:
        raise Conflict(f"This proposal is already {proposal.state}.", field="state")
    proposal.state = ChangeProposal.State.WITHDRAWN
    proposal.decided_at = timezone.now()
    proposal.save()
    record(
        membership.organisation,
        proposal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"state": {"old": "open", "new": "withdrawn"}},
    )
    return proposal


@transaction.atomic
def endorse(membership: Membership, actor: User, goal_id: int, note: str = "") -> Endorsement:
    """I understand this goal and support it (one standing endorsement per person; endorsing again updates the note)."""
    goal = get_goal(membership, goal_id)
    note = _text(note, "note", max_length=2000)
    existing = Endorsement.objects.filter(
        goal=goal, user=actor, kind=Endorsement.Kind.ENDORSE, resolved_at__isnull=True
    ).first()
    if existing:
        existing.note = note
        existing.save(update_fields=["note"])
        return existing
    endorsement = Endorsement.objects.create(goal=goal, user=actor, kind=Endorsement.Kind.ENDORSE, note=note)
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"endorsement": {"old": None, "new": actor.email}},
    )
    return endorsement


@transaction.atomic
def withdraw_endorsement(membership: Membership, actor: User, goal_id: int) -> None:
    goal = get_goal(membership, goal_id)
    n = Endorsement.objects.filter(
        goal=goal, user=actor, kind=Endorsement.Kind.ENDORSE, resolved_at__isnull=True
    ).update(resolved_at=timezone.now(), resolved_by=actor, resolution="withdrawn")
    if not n:
        raise NotFound("You have not endorsed this goal.")
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"endorsement": {"old": actor.email, "new": None}},
    )


@transaction.atomic
def raise_concern(membership: Membership, actor: User, goal_id: int, note: str) -> Endorsement:
    goal = get_goal(membership, goal_id)
    note = _text(note, "note", required=True, max_length=2000)
    concern = Endorsement.objects.create(goal=goal, user=actor, kind=Endorsement.Kind.CONCERN, note=note)
    record(
        membership.organisation,
        goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"concern": {"old": None, "new": f"{actor.email}: {note[:200]}"}},
    )
    if goal.owner:
        engagement.notify(
            membership.organisation,
            [goal.owner],
            f"{actor.display_name} raised a concern about “{goal.title}”",
            goal_url(goal),
            actor=actor,
        )
    return concern


@transaction.atomic
def resolve_concern(membership: Membership, actor: User, concern_id: int, resolution: str) -> Endorsement:
    concern = (
        Endorsement.objects.select_related("goal")
        .filter(
            pk=concern_id, kind=Endorsement.Kind.CONCERN, goal__organisation_id=membership.organisation_id
        )
        .first()
    )
    if concern is None:
        raise NotFound("No such concern.")
    if actor.pk not in (concern.user_id, concern.goal.owner_id) and not membership.can_admin:
        raise Forbidden("Only the concern's author, the goal's owner or an admin can resolve it.")
    if concern.resolved_at is not None:
        raise Conflict("This concern is already resolved.", field="state")
    concern.resolution = _text(resolution, "resolution", required=True, max_length=2000)
    concern.resolved_at = timezone.now()
    concern.resolved_by = actor
    concern.save()
    record(
        membership.organisation,
        concern.goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {"concern": {"old": concern.note[:200], "new": f"resolved: {concern.resolution[:200]}"}},
    )
    return concern


def endorsements_of(membership: Membership, goal: Goal) -> QuerySet[Endorsement]:
    return Endorsement.objects.filter(
        goal=goal, goal__organisation_id=membership.organisation_id
    ).select_related("user", "resolved_by")


# --- work items and line of sight -----------------------------------------------------------------


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


# --- organisation-wide alignment ------------------------------------------------------------------


@dataclass
class Alignment:
    org_goals: list[tuple[Goal, list[Goal]]]  # each organisation goal and the product goals that serve it
    unaligned: list[Goal]  # product strategic goals (roots) that serve no organisation goal


def alignment(membership: Membership) -> Alignment:
    """Which product goals serve which organisation goal (directly or through their tree), and which serve none."""
    goals = {
        g.pk: g
        for g in Goal.objects.filter(organisation_id=membership.organisation_id, archived_at__isnull=True)
        .select_related("product", "owner")
        .order_by("position", "id")
    }
    up = _up_edges(membership.organisation_id)
    org_goals = [g for g in goals.values() if g.product_id is None]
    org_ids = {g.pk for g in org_goals}
    served: dict[int, list[Goal]] = defaultdict(list)
    unaligned: list[Goal] = []
    for g in goals.values():
        if g.product_id is None or g.product is None or g.product.archived_at is not None:
            continue
        if g.status == Goal.Status.ABANDONED:
            continue
        reach = _reachable(up, g.pk) & org_ids
        direct = {d for d in up.get(g.pk, set()) if d in org_ids}
        for org_id in direct:
            served[org_id].append(g)
        if g.parent_id is None and not reach:
            unaligned.append(g)
    return Alignment(
        org_goals=[
            (g, sorted(served[g.pk], key=lambda x: (x.product.name if x.product else "", x.title)))
            for g in org_goals
        ],
        unaligned=sorted(unaligned, key=lambda x: (x.product.name if x.product else "", x.title)),
    )


def product_counts(membership: Membership) -> dict[int, dict[str, int]]:
    """Per product: live goals and work items (for lists)."""
    rows = Product.objects.filter(organisation_id=membership.organisation_id).annotate(
        n_goals=Count("goals", filter=Q(goals__archived_at__isnull=True), distinct=True),
        n_work=Count("work_items", distinct=True),
    )
    return {p.pk: {"goals": p.n_goals, "work": p.n_work} for p in rows}
