"""Stakeholders and the engagement log: every rule of the part lives here (views, API and CLI translate).

Reads take the caller's Membership (which fixes the organisation: nothing outside it is ever found);
writes also take the acting User, need the member role or higher and record history. The grid maths
(quadrants, gaps, overdue scores) is the pure module engagement/quadrants.py.

Public for other parts: `stakeholders_of`, `stakeholder_summary` (and `StakeholderSummary`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version, choice, text, whole
from truenorth.core.validate import date as valid_date
from truenorth.engagement import quadrants as grid
from truenorth.engagement.models import (
    Department,
    EngagementLevel,
    EngagementLogEntry,
    InteractionKind,
    Stakeholder,
)
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Goal, Product

STAKEHOLDER_FIELDS = (
    "name",
    "email",
    "title",
    "company",
    "department",
    "influence",
    "interest",
    "current_engagement",
    "desired_engagement",
    "relationship_owner",
    "user",
    "notes",
    "archived_at",
)
# What create/update accept (ids for relationship_owner, user, goals and products).
EDITABLE = (
    "name",
    "email",
    "title",
    "company",
    "department",
    "influence",
    "interest",
    "current_engagement",
    "desired_engagement",
    "relationship_owner",
    "user",
    "goals",
    "products",
    "notes",
)
LOG_FIELDS = ("occurred_on", "kind", "summary", "notes")


# --- reading --------------------------------------------------------------------------------------


def stakeholders_of(
    membership: Membership,
    product_id: int | None = None,
    *,
    include_archived: bool = False,
    department: str | None = None,
    quadrant: str | None = None,
) -> QuerySet[Stakeholder]:
    """The organisation's stakeholders (live ones unless include_archived), each annotated with
    `last_contact` (the day of their latest log entry, or None). With product_id: those who care about
    that product (linked to it, or to one of its goals)."""
    qs = Stakeholder.objects.filter(organisation_id=membership.organisation_id)
    if not include_archived:
        qs = qs.filter(archived_at__isnull=True)
    if product_id is not None:
        caring = Stakeholder.objects.filter(
            Q(products__id=product_id) | Q(goals__product_id=product_id),
            organisation_id=membership.organisation_id,
        ).values("pk")
        qs = qs.filter(pk__in=caring)
    if department:
        qs = qs.filter(department=choice(department, Department.values, "department"))
    if quadrant:
        choice(quadrant, grid.QUADRANTS, "quadrant")
        (inf_lo, inf_hi), (int_lo, int_hi) = grid.quadrant_scores(quadrant)
        qs = qs.filter(
            influence__gte=inf_lo, influence__lte=inf_hi, interest__gte=int_lo, interest__lte=int_hi
        )
    return (
        qs.annotate(last_contact=Max("log_entries__occurred_on"))
        .select_related("relationship_owner", "user")
        .order_by("name", "id")
    )


def product_filter(membership: Membership, product_id: int | None) -> int | None:
    """A product named in a filter: one of this organisation's, else a 422 naming `product`."""
    if product_id is None:
        return None
    if not Product.objects.filter(organisation_id=membership.organisation_id, pk=product_id).exists():
        raise ValidationFailed("No such product in this organisation.", field="product")
    return product_id


def get_stakeholder(membership: Membership, stakeholder_id: int) -> Stakeholder:
    try:
        return (
            Stakeholder.objects.select_related("relationship_owner", "user")
            .annotate(last_contact=Max("log_entries__occurred_on"))
            .get(pk=stakeholder_id, organisation_id=membership.organisation_id)
        )
    except Stakeholder.DoesNotExist:
        raise NotFound("No such stakeholder.") from None


def quadrant_of(s: Stakeholder) -> str:
    return grid.quadrant(s.influence, s.interest)


def gap_of(s: Stakeholder) -> int:
    return grid.engagement_gap(s.current_engagement, s.desired_engagement)


def contact_of(s: Stakeholder, today: dt.date | None = None) -> grid.Contact:
    """How overdue a contact is; `s` must come from stakeholders_of/get_stakeholder (last_contact)."""
    today = today or timezone.localdate()
    last: dt.date | None = getattr(s, "last_contact", None)
    since = last if last is not None else timezone.localdate(s.created_at)
    return grid.contact(quadrant_of(s), since, today)


@dataclass
class StakeholderSummary:
    total: int
    by_quadrant: dict[str, int]
    with_gap: int
    overdue: int


def stakeholder_summary(membership: Membership, product_id: int | None = None) -> StakeholderSummary:
    """Counts over the live stakeholders (of one product when given): in total, per quadrant
    (every quadrant key present), with an engagement gap (desired above current), overdue for contact
    (by their quadrant's interval). One query."""
    today = timezone.localdate()
    by_quadrant = dict.fromkeys(grid.QUADRANTS, 0)
    total = with_gap = overdue = 0
    for s in stakeholders_of(membership, product_id).select_related(None):
        total += 1
        by_quadrant[quadrant_of(s)] += 1
        with_gap += gap_of(s) > 0
        overdue += contact_of(s, today).overdue
    return StakeholderSummary(total=total, by_quadrant=by_quadrant, with_gap=with_gap, overdue=overdue)


@dataclass
class OverdueRow:
    stakeholder: Stakeholder
    quadrant: str
    days_since: int
    interval: int
    score: float
    last_contact: dt.date | None


def overdue(
    membership: Membership,
    *,
    days: int | None = None,
    product_id: int | None = None,
    today: dt.date | None = None,
) -> list[OverdueRow]:
    """The "not talked to" list: live stakeholders overdue for their quadrant's contact interval, most overdue
    first (score = days since last contact / interval). With `days`, those not talked to in at least
    that many days instead (still sorted by score)."""
    if days is not None:
        days = whole(days, "days")
        if not 0 <= days <= 36500:
            raise ValidationFailed("Days must be between 0 and 36500.", field="days")
    today = today or timezone.localdate()
    rows = []
    for s in stakeholders_of(membership, product_id).prefetch_related("goals", "products"):
        c = contact_of(s, today)
        if grid.is_listed(c, days):
            rows.append(OverdueRow(s, c.quadrant, c.days_since, c.interval, c.score, s.last_contact))  # type: ignore[attr-defined]
    rows.sort(key=lambda r: (-r.score, r.stakeholder.name.lower(), r.stakeholder.pk))
    return rows


@dataclass
class MapPoint:
    """One stakeholder on the map (what charts.map_spec and the table fallback show)."""

    id: int
    name: str
    department: str
    influence: int
    interest: int
    quadrant: str
    current: str
    desired: str
    gap: int


def map_points(membership: Membership, product_id: int | None = None, **filters: Any) -> list[MapPoint]:
    return [
        MapPoint(
            id=s.pk,
            name=s.name,
            department=s.department,
            influence=s.influence,
            interest=s.interest,
            quadrant=quadrant_of(s),
            current=s.current_engagement,
            desired=s.desired_engagement,
            gap=gap_of(s),
        )
        for s in stakeholders_of(membership, product_id, **filters)
    ]


@dataclass
class QuadrantInfo:
    key: str
    label: str
    count: int
    contact_interval_days: int


@dataclass
class StakeholderMap:
    """What the map shows: the chart's Vega-Lite spec, the quadrants with their counts, the points."""

    spec: dict[str, Any]
    quadrants: list[QuadrantInfo]
    points: list[MapPoint]


def stakeholder_map(membership: Membership, product_id: int | None = None, **filters: Any) -> StakeholderMap:
    from truenorth.engagement import charts

    points = map_points(membership, product_id, **filters)
    counts = dict.fromkeys(grid.QUADRANTS, 0)
    for p in points:
        counts[p.quadrant] += 1
    quadrants = [
        QuadrantInfo(q, grid.QUADRANT_LABELS[q], counts[q], grid.CONTACT_INTERVAL_DAYS[q])
        for q in grid.QUADRANTS
    ]
    return StakeholderMap(spec=charts.map_spec(points), quadrants=quadrants, points=points)


# --- changing -------------------------------------------------------------------------------------


def _email(value: Any) -> str:
    email = text(value, "email", max_length=254).lower()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationFailed("Enter a valid e-mail address.", field="email") from None
    return email


def _score(value: Any, name: str) -> int:
    score = whole(value, name)
    if not 1 <= score <= 5:
        raise ValidationFailed(f"{name.capitalize()} must be between 1 and 5 (got {score}).", field=name)
    return score


def _member(membership: Membership, user_id: Any, name: str, *, writer: bool) -> User | None:
    if user_id in (None, ""):
        return None
    uid = whole(user_id, name, "a user id")
    found = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=uid)
        .select_related("user")
        .first()
    )
    if found is None:
        raise ValidationFailed("No such member in this organisation.", field=name)
    if writer and not found.can_write:
        raise ValidationFailed("A relationship owner must be a member (not a stakeholder).", field=name)
    return found.user


def _ids(values: Any, name: str) -> list[int]:
    if values is None:
        return []
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationFailed("Must be a list of ids.", field=name)
    return list(dict.fromkeys(whole(v, name, "an id") for v in values))


def _goals(membership: Membership, values: Any, name: str = "goals") -> list[Goal]:
    ids = _ids(values, name)
    goals = list(Goal.objects.filter(organisation_id=membership.organisation_id, pk__in=ids))
    if len(goals) != len(ids):
        raise ValidationFailed("One of the goals does not exist in this organisation.", field=name)
    return goals


def _products(membership: Membership, values: Any) -> list[Product]:
    ids = _ids(values, "products")
    products = list(Product.objects.filter(organisation_id=membership.organisation_id, pk__in=ids))
    if len(products) != len(ids):
        raise ValidationFailed("One of the products does not exist in this organisation.", field="products")
    return products


def _clean(membership: Membership, values: Mapping[str, Any]) -> dict[str, Any]:
    """Each given field validated (unknown names are a programming error)."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValueError(f"Unknown stakeholder fields: {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "name":
            out[name] = text(value, "name", required=True, max_length=200)
        elif name == "email":
            out[name] = _email(value)
        elif name in ("title", "company"):
            out[name] = text(value, name, max_length=200)
        elif name == "notes":
            out[name] = text(value, name)
        elif name == "department":
            out[name] = choice(value, Department.values, name)
        elif name in ("influence", "interest"):
            out[name] = _score(value, name)
        elif name in ("current_engagement", "desired_engagement"):
            out[name] = choice(value, EngagementLevel.values, name)
        elif name == "relationship_owner":
            out[name] = _member(membership, value, name, writer=True)
        elif name == "user":
            out[name] = _member(membership, value, name, writer=False)
        elif name == "goals":
            out[name] = _goals(membership, value)
        elif name == "products":
            out[name] = _products(membership, value)
    return out


def _snapshot(s: Stakeholder) -> dict[str, Any]:
    data = snapshot(s, STAKEHOLDER_FIELDS)
    data["relationship_owner"] = s.relationship_owner.email if s.relationship_owner else None
    data["user"] = s.user.email if s.user else None
    data["goals"] = sorted(g.title for g in s.goals.all())
    data["products"] = sorted(p.name for p in s.products.all())
    return data


def _check_email_free(s: Stakeholder) -> None:
    if not s.email:
        return
    clash = Stakeholder.objects.filter(organisation_id=s.organisation_id, email__iexact=s.email)
    if s.pk:
        clash = clash.exclude(pk=s.pk)
    if clash.exists():
        raise Conflict(f"A stakeholder with e-mail {s.email} already exists.", field="email")


def _save(s: Stakeholder) -> None:
    try:
        with transaction.atomic():
            s.save()
    except IntegrityError:  # a concurrent create with the same e-mail address
        raise Conflict(f"A stakeholder with e-mail {s.email} already exists.", field="email") from None


@transaction.atomic
def create_stakeholder(membership: Membership, actor: User, **values: Any) -> Stakeholder:
    """A new stakeholder; `name` is required, every other field of EDITABLE optional."""
    require_writer(membership)
    clean = _clean(membership, {"name": values.pop("name", None), **values})
    goals, products = clean.pop("goals", []), clean.pop("products", [])
    s = Stakeholder(organisation_id=membership.organisation_id, **clean)
    _check_email_free(s)
    _save(s)
    s.goals.set(goals)
    s.products.set(products)
    record(membership.organisation, s, actor, HistoryEntry.Action.CREATED, diff({}, _snapshot(s)))
    return get_stakeholder(membership, s.pk)


@transaction.atomic
def update_stakeholder(
    membership: Membership, actor: User, stakeholder_id: int, *, version: int | None = None, **values: Any
) -> Stakeholder:
    """Change the given fields; a stale version is refused (409); an unchanged save writes nothing."""
    require_writer(membership)
    get_stakeholder(membership, stakeholder_id)
    s = (
        Stakeholder.objects.select_for_update(of=("self",))
        .select_related("relationship_owner", "user")
        .get(pk=stakeholder_id)
    )
    check_version(s, version)
    clean = _clean(membership, values)
    before = _snapshot(s)
    goals, products = clean.pop("goals", None), clean.pop("products", None)
    for name, value in clean.items():
        setattr(s, name, value)
    _check_email_free(s)
    if goals is not None and {g.pk for g in goals} != set(s.goals.values_list("pk", flat=True)):
        s.goals.set(goals)
    if products is not None and {p.pk for p in products} != set(s.products.values_list("pk", flat=True)):
        s.products.set(products)
    changes = diff(before, _snapshot(s))
    if changes:
        s.version += 1
        s.updated_at = timezone.now()
        _save(s)
        record(membership.organisation, s, actor, HistoryEntry.Action.UPDATED, changes)
    return get_stakeholder(membership, s.pk)


def archive_stakeholder(
    membership: Membership,
    actor: User,
    stakeholder_id: int,
    *,
    archived: bool = True,
    version: int | None = None,
) -> Stakeholder:
    """Archive (or restore) a stakeholder; already in that state: nothing changes."""
    require_writer(membership)
    with transaction.atomic():
        get_stakeholder(membership, stakeholder_id)
        s = Stakeholder.objects.select_for_update(of=("self",)).get(pk=stakeholder_id)
        check_version(s, version)
        if (s.archived_at is not None) != archived:
            before = {"archived_at": snapshot(s, ["archived_at"])["archived_at"]}
            s.archived_at = timezone.now() if archived else None
            s.version += 1
            s.updated_at = timezone.now()
            s.save(update_fields=["archived_at", "version", "updated_at"])
            record(
                membership.organisation,
                s,
                actor,
                HistoryEntry.Action.ARCHIVED if archived else HistoryEntry.Action.UPDATED,
                diff(before, snapshot(s, ["archived_at"])),
            )
    return get_stakeholder(membership, stakeholder_id)


# --- the engagement log ---------------------------------------------------------------------------


def log_of(
    membership: Membership, *, stakeholder_id: int | None = None, limit: int | None = None
) -> QuerySet[EngagementLogEntry]:
    qs = EngagementLogEntry.objects.filter(organisation_id=membership.organisation_id)
    if stakeholder_id is not None:
        qs = qs.filter(stakeholders__id=stakeholder_id)
    qs = (
        qs.select_related("recorded_by")
        .prefetch_related("stakeholders", "goals")
        .order_by("-occurred_on", "-id")
    )
    return qs[:limit] if limit else qs


@transaction.atomic
def log_interaction(
    membership: Membership,
    actor: User,
    *,
    occurred_on: Any,
    summary: Any,
    stakeholder_ids: Any,
    kind: Any = InteractionKind.MEETING,
    notes: Any = "",
    goal_ids: Any = (),
) -> EngagementLogEntry:
    """Record an interaction with at least one (live) stakeholder; not in the future."""
    require_writer(membership)
    day = valid_date(occurred_on, "occurred_on")
    if day is None:
        raise ValidationFailed("Occurred on is required.", field="occurred_on")
    if day > timezone.localdate():
        raise ValidationFailed("An interaction cannot be in the future.", field="occurred_on")
    ids = _ids(stakeholder_ids, "stakeholders")
    if not ids:
        raise ValidationFailed("Name at least one stakeholder.", field="stakeholders")
    people = list(
        Stakeholder.objects.filter(
            organisation_id=membership.organisation_id, pk__in=ids, archived_at__isnull=True
        )
    )
    if len(people) != len(ids):
        raise ValidationFailed(
            "One of the stakeholders does not exist in this organisation.", field="stakeholders"
        )
    goals = _goals(membership, goal_ids)
    entry = EngagementLogEntry.objects.create(
        organisation_id=membership.organisation_id,
        occurred_on=day,
        kind=choice(kind, InteractionKind.values, "kind"),
        summary=text(summary, "summary", required=True, max_length=300),
        notes=text(notes, "notes"),
        recorded_by=actor,
    )
    entry.stakeholders.set(people)
    entry.goals.set(goals)
    after = snapshot(entry, LOG_FIELDS)
    after["stakeholders"] = sorted(p.name for p in people)
    after["goals"] = sorted(g.title for g in goals)
    record(membership.organisation, entry, actor, HistoryEntry.Action.CREATED, diff({}, after))
    return entry
