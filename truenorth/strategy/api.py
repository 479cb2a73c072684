"""API: Vision — teams, products, goal trees, targets, alignment, check-ins, lint, co-authoring,
work items (line of sight), export and import. Every rule lives in strategy.services; this module
translates JSON in and out only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from pydantic import Field, field_validator

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.orgs.models import Membership
from truenorth.orgs.services import membership_for
from truenorth.strategy import services
from truenorth.strategy.lint import Finding
from truenorth.strategy.models import (
    ChangeProposal,
    CheckIn,
    CheckInStatus,
    Comment,
    Direction,
    Endorsement,
    Goal,
    GoalLevel,
    GoalLink,
    GoalStatus,
    LinkKind,
    Product,
    TargetMeasure,
    TargetObservation,
    Team,
    WorkItem,
    WorkItemStatus,
)
from truenorth.strategy.progress import Progress

router = Router(tags=["vision"])

MAX_LIST = 1000
VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
GOAL_VERSION_HELP = "Required: the goal's version you read; a stale one is refused with 409."


# --- output schemas -------------------------------------------------------------------------------


class UserRef(Schema):
    id: int
    email: str
    name: str


class TeamOut(Schema):
    id: int
    name: str


class ProductOut(Schema):
    id: int
    name: str
    vision: str
    product_goal: str
    owner: UserRef | None
    teams: list[TeamOut]
    created_at: dt.datetime
    archived_at: dt.datetime | None
    version: int
    goals: int = Field(description="Live goals in its tree.")
    work_items: int


class ProductDetailOut(ProductOut):
    orphan_work_items: int = Field(description="Work items linked to no goal.")
    findings: int = Field(description="Lint findings over its live goals.")


class GoalRef(Schema):
    id: int
    title: str
    level: str
    status: str
    product: int | None


class GoalOut(Schema):
    id: int
    product: int | None = Field(description="None for an organisation-level goal.")
    parent: int | None
    level: str
    title: str
    outcome: str
    owner: UserRef | None
    target_date: dt.date | None
    status: str
    weight: float
    position: int
    checkin_cadence_days: int
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None
    version: int
    progress: float | None = Field(description="0..1: measured progress, else the roll-up; None if unknown.")


class TargetOut(Schema):
    id: int
    name: str
    unit: str
    baseline: float
    target: float
    direction: str
    position: int
    measure: int | None = Field(
        description="The Value measure it tracks (its values, progress and staleness come from it); "
        "null: values recorded on the target itself."
    )
    current: float | None = Field(description="The latest observed value.")
    progress: float | None


class LinkOut(Schema):
    id: int
    kind: str
    source: GoalRef
    target: GoalRef
    created_at: dt.datetime


class FindingOut(Schema):
    goal: int
    goal_title: str
    product: int | None
    rule: str
    severity: str
    message: str


class GoalDetailOut(GoalOut):
    measured: float | None
    rollup: float | None
    targets: list[TargetOut]
    children: list[GoalRef]
    links_out: list[LinkOut] = Field(description="Goals this one aligns or relates to.")
    links_in: list[LinkOut] = Field(description="Goals aligned or related to this one.")
    findings: list[FindingOut]


class TreeTargetOut(Schema):
    id: int
    name: str
    unit: str
    baseline: float
    target: float
    direction: str
    measure: int | None
    current: float | None
    progress: float | None


class TreeNodeOut(GoalOut):
    targets: list[TreeTargetOut]
    children: list[TreeNodeOut]


class ProductRef(Schema):
    id: int
    name: str


class TreeOut(Schema):
    product: ProductRef | None = Field(description="None for the organisation-level tree.")
    goals: list[TreeNodeOut]


class AlignedGoalOut(GoalRef):
    product_name: str | None


class AlignmentRowOut(Schema):
    goal: GoalOut
    served_by: list[AlignedGoalOut]


class AlignmentOut(Schema):
    org_goals: list[AlignmentRowOut]
    unaligned: list[AlignedGoalOut] = Field(description="Product strategic goals that serve no org goal.")


class ObservationOut(Schema):
    id: int
    target: int
    value: float
    observed_at: dt.datetime
    note: str
    recorded_by: str | None


class CheckInOut(Schema):
    id: int
    goal: int
    author: UserRef | None
    status: str
    confidence: int
    narrative: str
    observation: ObservationOut | None
    measure_observation: int | None = Field(
        description="The observation this check-in recorded on the Value measure its target tracks."
    )
    created_at: dt.datetime


class OverdueOut(Schema):
    goal: GoalRef
    owner: UserRef | None
    last_checkin: dt.datetime | None
    due: dt.datetime
    days_overdue: int


class CommentOut(Schema):
    id: int
    goal: int
    author: UserRef | None
    body: str
    created_at: dt.datetime


class ProposalOut(Schema):
    id: int
    goal: int
    author: UserRef | None
    changes: dict[str, Any]
    reason: str
    state: str
    goal_version: int
    decided_by: UserRef | None
    decided_at: dt.datetime | None
    decision_reason: str
    created_at: dt.datetime


class EndorsementOut(Schema):
    id: int
    goal: int
    kind: str
    user: UserRef
    note: str
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: UserRef | None
    resolution: str


class WorkItemOut(Schema):
    id: int
    product: int
    title: str
    external_key: str
    url: str
    status: str
    team: TeamOut | None
    goal: GoalRef | None
    created_at: dt.datetime


class OrphanReportOut(Schema):
    total: int
    linked: int
    orphans: int
    orphan_share: float | None = Field(description="orphans / total; None when there is no work item.")


# --- input schemas --------------------------------------------------------------------------------


class In(StrictSchema):
    """Input of the Vision API (StrictSchema: unknown fields and NUL characters refused)."""


class TeamIn(In):
    name: str = Field(min_length=1, max_length=120)


class ProductIn(In):
    name: str = Field(min_length=1, max_length=120)
    vision: str = Field("", max_length=services.MAX_TEXT)
    product_goal: str = Field("", max_length=services.MAX_TEXT)
    owner: ObjectId | None = Field(None, description="User id of a member.")
    owner_email: str | None = Field(None, max_length=254, description="Or the owner's e-mail.")
    teams: list[ObjectId] = Field(default_factory=list, max_length=100)


class ProductPatch(In):
    version: int = Field(description=VERSION_HELP)
    name: str | None = Field(None, min_length=1, max_length=120)
    vision: str | None = Field(None, max_length=services.MAX_TEXT)
    product_goal: str | None = Field(None, max_length=services.MAX_TEXT)
    owner: ObjectId | None = Field(None, description="User id of a member; null clears the owner.")
    owner_email: str | None = Field(None, max_length=254)
    teams: list[ObjectId] | None = Field(None, max_length=100)


class TargetIn(In):
    name: str = Field("", max_length=120, description="Required unless it tracks a measure (then its name).")
    baseline: float = Field(allow_inf_nan=False)
    target: float = Field(allow_inf_nan=False)
    unit: str = Field("", max_length=30)
    direction: Direction = TargetMeasure.Direction.INCREASE
    measure_id: ObjectId | None = Field(
        None,
        description="A Value measure of this organisation to track (422 for any other id); its values, "
        "progress and staleness then come from it.",
    )


class NewTargetIn(TargetIn):
    version: int = Field(description=GOAL_VERSION_HELP)


class TargetPatch(In):
    version: int = Field(description=GOAL_VERSION_HELP)
    name: str | None = Field(None, min_length=1, max_length=120)
    baseline: float | None = Field(None, allow_inf_nan=False)
    target: float | None = Field(None, allow_inf_nan=False)
    unit: str | None = Field(None, max_length=30)
    direction: Direction | None = None
    measure_id: ObjectId | None = Field(
        None, description="The Value measure to track; null stops tracking; left out, unchanged."
    )


class GoalIn(In):
    title: str = Field(min_length=1, max_length=200)
    product: ObjectId | None = Field(None, description="None: an organisation-level goal.")
    parent: ObjectId | None = None
    level: GoalLevel | None = Field(None, description="Defaults to the level below the parent's.")
    outcome: str = Field("", max_length=services.MAX_TEXT)
    owner: ObjectId | None = Field(None, description="User id of a member.")
    owner_email: str | None = Field(None, max_length=254, description="Or the owner's e-mail.")
    target_date: dt.date | None = None
    status: GoalStatus = Goal.Status.PROPOSED
    weight: float = Field(1.0, gt=0, le=services.MAX_WEIGHT, allow_inf_nan=False)
    checkin_cadence_days: int = Field(7, ge=1, le=366)
    targets: list[TargetIn] = Field(default_factory=list, max_length=50)


class GoalPatch(In):
    version: int = Field(description=VERSION_HELP)
    title: str | None = Field(None, min_length=1, max_length=200)
    outcome: str | None = Field(None, max_length=services.MAX_TEXT)
    level: GoalLevel | None = None
    status: GoalStatus | None = None
    owner: ObjectId | None = Field(None, description="User id of a member; null clears the owner.")
    owner_email: str | None = Field(None, max_length=254)
    target_date: dt.date | None = Field(None, description="null clears the date.")
    weight: float | None = Field(None, gt=0, le=services.MAX_WEIGHT, allow_inf_nan=False)
    checkin_cadence_days: int | None = Field(None, ge=1, le=366)


class MoveIn(In):
    parent: ObjectId | None = Field(description="The new parent in the same tree; null makes it a root.")
    position: int | None = Field(None, ge=0, le=100_000, description="Index among its new siblings.")
    version: int = Field(description=VERSION_HELP)


class VersionQuery(Schema):
    version: int = Field(description=VERSION_HELP)


class ObservationIn(In):
    value: float = Field(allow_inf_nan=False)
    observed_at: dt.datetime | None = Field(
        None, description="Defaults to now; never in the future. Without an offset: the server's time zone."
    )
    note: str = Field("", max_length=500)

    @field_validator("observed_at", mode="after")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        try:
            value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("Out of range.") from None
        return value


class LinkIn(In):
    target: ObjectId = Field(description="The goal this one aligns or relates to.")
    kind: LinkKind


class CheckInIn(In):
    status: CheckInStatus
    confidence: int = Field(ge=0, le=10)
    narrative: str = Field("", max_length=2000)
    target: ObjectId | None = Field(None, description="A target measure of the goal, with a new value.")
    value: float | None = Field(None, allow_inf_nan=False)
    idempotency_key: str = Field(
        "",
        max_length=100,
        description="A retried check-in with the same key returns the first one and records nothing twice "
        "(a linked target's value lands on its measure once).",
    )


class CommentIn(In):
    body: str = Field(min_length=1, max_length=5000)


class ProposedTarget(In):
    target: float = Field(allow_inf_nan=False)


class ProposedChanges(In):
    title: str | None = Field(None, min_length=1, max_length=200)
    outcome: str | None = Field(None, max_length=services.MAX_TEXT)
    target_date: dt.date | None = None
    targets: dict[str, ProposedTarget] | None = Field(
        None, description="{target measure id: {target: new value}}", max_length=50
    )


class ProposalIn(In):
    changes: ProposedChanges
    reason: str = Field("", max_length=2000)


class DecisionIn(In):
    reason: str = Field("", max_length=2000, description="Required when rejecting.")
    over_newer_edits: bool = Field(
        False,
        description="Accept even though the goal changed after the proposal was made (otherwise 409).",
    )


class NoteIn(In):
    note: str = Field("", max_length=2000)


class ConcernIn(In):
    note: str = Field(min_length=1, max_length=2000)


class ResolveIn(In):
    resolution: str = Field(min_length=1, max_length=2000)


class WorkItemIn(In):
    product: ObjectId
    title: str = Field(min_length=1, max_length=300)
    external_key: str = Field("", max_length=100)
    url: str = Field("", max_length=500)
    status: WorkItemStatus = WorkItem.Status.TODO
    team: ObjectId | None = None
    goal: ObjectId | None = None


class WorkItemPatch(In):
    goal: ObjectId | None = Field(description="The goal it serves; null unlinks it (orphan work).")


# --- filters --------------------------------------------------------------------------------------


class ProductFilter(Schema):
    include_archived: bool = False


class GoalFilter(Schema):
    product: str | None = Field(
        None, pattern=r"^([1-9][0-9]{0,17}|org)$", description="A product id, or `org` for org-level goals."
    )
    level: GoalLevel | None = None
    status: GoalStatus | None = None
    owner: ObjectId | None = Field(None, description="User id.")
    include_archived: bool = False
    limit: int = Field(500, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class LintFilter(Schema):
    org_level: bool = Field(False, description="Only the organisation-level goals.")


class OverdueFilter(Schema):
    product: ObjectId | None = None
    owner: ObjectId | None = Field(None, description="User id.")


class WorkItemFilter(Schema):
    product: ObjectId | None = None
    goal: ObjectId | None = None
    orphans: bool = Field(False, description="Only work items linked to no goal.")
    limit: int = Field(500, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class ListFilter(Schema):
    limit: int = Field(200, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class ExportFilter(Schema):
    format: Literal["json", "yaml", "markdown"] = "json"


class ImportFilter(StrictSchema):
    name: str | None = Field(None, min_length=1, max_length=120, description="Name of the new product.")


# --- helpers --------------------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _scope(request: HttpRequest, slug: str) -> tuple[Membership, User]:
    user = _user(request)
    return membership_for(user, slug), user


def _user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "name": user.name}


def _owner_id(m: Membership, owner: int | None, owner_email: str | None) -> int | None:
    if owner_email:
        return services.member_by_email(m, owner_email).pk
    return owner


def _product_in_body(m: Membership, product_id: int | None) -> int | None:
    """A product named in a request body: an unknown one is bad input (422), not a missing page."""
    if product_id is None:
        return None
    try:
        return services.get_product(m, product_id).pk
    except NotFound:
        raise ValidationFailed("No such product in this organisation.", field="product") from None


def _product_out(p: Product, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    counts = counts or {}
    return {
        "id": p.pk,
        "name": p.name,
        "vision": p.vision,
        "product_goal": p.product_goal,
        "owner": _user_ref(p.owner),
        "teams": [{"id": t.pk, "name": t.name} for t in p.teams.all()],
        "created_at": p.created_at,
        "archived_at": p.archived_at,
        "version": p.version,
        "goals": counts.get("goals", 0),
        "work_items": counts.get("work", 0),
    }


def _product_detail(m: Membership, product_id: int) -> dict[str, Any]:
    product = services.get_product(m, product_id)
    counts = services.product_counts(m).get(product.pk, {})
    report = services.orphan_report(m, product.pk)
    findings = services.lint(m, product_id=product.pk)
    return {
        **_product_out(product, counts),
        "orphan_work_items": report.orphans,
        "findings": len(findings),
    }


def _goal_ref(g: Goal) -> dict[str, Any]:
    return {"id": g.pk, "title": g.title, "level": g.level, "status": g.status, "product": g.product_id}


def _goal_out(g: Goal, progress: Mapping[int, Progress]) -> dict[str, Any]:
    p = progress.get(g.pk)
    return {
        "id": g.pk,
        "product": g.product_id,
        "parent": g.parent_id,
        "level": g.level,
        "title": g.title,
        "outcome": g.outcome,
        "owner": _user_ref(g.owner),
        "target_date": g.target_date,
        "status": g.status,
        "weight": g.weight,
        "position": g.position,
        "checkin_cadence_days": g.checkin_cadence_days,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
        "archived_at": g.archived_at,
        "version": g.version,
        "progress": p.value if p else None,
    }


def _target_out(t: TargetMeasure, latest: Mapping[int, float]) -> dict[str, Any]:
    current = latest.get(t.pk)
    return {
        "id": t.pk,
        "name": t.name,
        "unit": t.unit,
        "baseline": t.baseline,
        "target": t.target,
        "direction": t.direction,
        "position": t.position,
        "measure": t.measure_id,
        "current": current,
        "progress": services.target_progress_of(t, current),
    }


def _link_out(link: GoalLink) -> dict[str, Any]:
    return {
        "id": link.pk,
        "kind": link.kind,
        "source": _goal_ref(link.source),
        "target": _goal_ref(link.target),
        "created_at": link.created_at,
    }


def _findings_out(rows: Iterable[tuple[Goal, Finding]]) -> list[dict[str, Any]]:
    return [
        {
            "goal": g.pk,
            "goal_title": g.title,
            "product": g.product_id,
            "rule": f.rule,
            "severity": f.severity,
            "message": f.message,
        }
        for g, f in rows
    ]


def _goal_detail(m: Membership, goal_id: int) -> dict[str, Any]:
    goal = services.get_goal(m, goal_id)
    progress = services.progress_for_org(m.organisation_id)
    targets = list(goal.targets.all())
    latest = services.latest_values(t.pk for t in targets)
    links = services.links_of(m, goal)
    p = progress.get(goal.pk)
    children = goal.children.filter(archived_at__isnull=True).order_by("position", "id")
    return {
        **_goal_out(goal, progress),
        "measured": p.measured if p else None,
        "rollup": p.rollup if p else None,
        "targets": [_target_out(t, latest) for t in targets],
        "children": [_goal_ref(c) for c in children],
        "links_out": [_link_out(x) for x in links["out"]],
        "links_in": [_link_out(x) for x in links["in"]],
        "findings": _findings_out(services.lint(m, goal_id=goal.pk)),
    }


def _observation_out(o: TargetObservation) -> dict[str, Any]:
    return {
        "id": o.pk,
        "target": o.target_measure_id,
        "value": o.value,
        "observed_at": o.observed_at,
        "note": o.note,
        "recorded_by": o.recorded_by.email if o.recorded_by else None,
    }


def _checkin_out(c: CheckIn) -> dict[str, Any]:
    return {
        "id": c.pk,
        "goal": c.goal_id,
        "author": _user_ref(c.author),
        "status": c.status,
        "confidence": c.confidence,
        "narrative": c.narrative,
        "observation": _observation_out(c.observation) if c.observation else None,
        "measure_observation": c.measure_observation_id,
        "created_at": c.created_at,
    }


def _comment_out(c: Comment) -> dict[str, Any]:
    return {
        "id": c.pk,
        "goal": c.goal_id,
        "author": _user_ref(c.author),
        "body": c.body,
        "created_at": c.created_at,
    }


def _proposal_out(p: ChangeProposal) -> dict[str, Any]:
    return {
        "id": p.pk,
        "goal": p.goal_id,
        "author": _user_ref(p.author),
        "changes": p.changes,
        "reason": p.reason,
        "state": p.state,
        "goal_version": p.goal_version,
        "decided_by": _user_ref(p.decided_by),
        "decided_at": p.decided_at,
        "decision_reason": p.decision_reason,
        "created_at": p.created_at,
    }


def _endorsement_out(e: Endorsement) -> dict[str, Any]:
    return {
        "id": e.pk,
        "goal": e.goal_id,
        "kind": e.kind,
        "user": _user_ref(e.user),
        "note": e.note,
        "created_at": e.created_at,
        "resolved_at": e.resolved_at,
        "resolved_by": _user_ref(e.resolved_by),
        "resolution": e.resolution,
    }


def _work_item_out(w: WorkItem) -> dict[str, Any]:
    return {
        "id": w.pk,
        "product": w.product_id,
        "title": w.title,
        "external_key": w.external_key,
        "url": w.url,
        "status": w.status,
        "team": {"id": w.team.pk, "name": w.team.name} if w.team else None,
        "goal": _goal_ref(w.goal) if w.goal else None,
        "created_at": w.created_at,
    }


def _tree(m: Membership, product_id: int | None) -> list[dict[str, Any]]:
    rows = services.whole_tree(m, product_id)
    progress = services.progress_for_org(m.organisation_id)
    latest = services.latest_values(t.pk for row in rows for t in row.goal.targets.all())
    nodes: dict[int, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for row in rows:  # depth-first: a parent always comes before its children
        goal = row.goal
        node = {
            **_goal_out(goal, progress),
            "targets": [
                {k: v for k, v in _target_out(t, latest).items() if k != "position"}
                for t in goal.targets.all()
            ],
            "children": [],
        }
        nodes[goal.pk] = node
        parent = nodes.get(goal.parent_id) if goal.parent_id else None
        (parent["children"] if parent is not None else roots).append(node)
    return roots


# --- teams ----------------------------------------------------------------------------------------


@router.get("/{slug}/teams", response={200: list[TeamOut], **READ_ERRORS}, summary="List teams")
def list_teams(request: HttpRequest, slug: str) -> list[Team]:
    m, _ = _scope(request, slug)
    return list(services.teams_of(m))


@router.post("/{slug}/teams", response={201: TeamOut, **ERRORS}, summary="Create a team")
def create_team(request: HttpRequest, slug: str, payload: TeamIn) -> Status[Team]:
    m, user = _scope(request, slug)
    return Status(201, services.create_team(m, user, payload.name))


# --- products -------------------------------------------------------------------------------------


@router.get("/{slug}/products", response={200: list[ProductOut], **READ_ERRORS}, summary="List products")
def list_products(request: HttpRequest, slug: str, filters: Query[ProductFilter]) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    counts = services.product_counts(m)
    return [
        _product_out(p, counts.get(p.pk))
        for p in services.products_of(m, include_archived=filters.include_archived)
    ]


@router.post("/{slug}/products", response={201: ProductDetailOut, **ERRORS}, summary="Create a product")
def create_product(request: HttpRequest, slug: str, payload: ProductIn) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    services.require_writer(m)
    product = services.create_product(
        m,
        user,
        name=payload.name,
        vision=payload.vision,
        product_goal=payload.product_goal,
        owner_id=_owner_id(m, payload.owner, payload.owner_email),
        team_ids=payload.teams,
    )
    return Status(201, _product_detail(m, product.pk))


@router.post(
    "/{slug}/products/import",
    response={201: ProductDetailOut, **ERRORS},
    summary="Import a product tree (JSON or YAML) as a new product",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An export of a product tree: `application/json`, or YAML text "
            "(`application/yaml`, `text/yaml` or `text/plain`).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
def import_product(request: HttpRequest, slug: str, filters: Query[ImportFilter]) -> Status[dict[str, Any]]:
    from truenorth.strategy import exchange

    m, user = _scope(request, slug)
    services.require_writer(m)
    content_type = (request.content_type or "").lower()
    if content_type == "application/json":
        fmt = "json"
    elif content_type in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"):
        fmt = "yaml"
    else:
        raise ValidationFailed(
            "Send the tree as application/json or as YAML (application/yaml).", field="content_type"
        )
    try:
        text = request.body.decode("utf-8")
    except RequestDataTooBig:
        raise ValidationFailed("The import is too large.", field="body") from None
    except UnicodeDecodeError:
        raise ValidationFailed("The import must be UTF-8 text.", field="body") from None
    data = exchange.load(text, fmt)
    product = exchange.import_tree(m, user, data, name=filters.name)
    return Status(201, _product_detail(m, product.pk))


@router.get(
    "/{slug}/products/{product_id}",
    response={200: ProductDetailOut, **READ_ERRORS},
    summary="Get a product with its counts",
)
def get_product(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return _product_detail(m, product_id)


@router.patch(
    "/{slug}/products/{product_id}", response={200: ProductDetailOut, **ERRORS}, summary="Change a product"
)
def update_product(
    request: HttpRequest, slug: str, product_id: ObjectId, payload: ProductPatch
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.get_product(m, product_id)  # an unknown product is a 404 before any field is looked at
    services.require_writer(m)
    given = payload.model_fields_set
    for name in ("name", "vision", "product_goal", "teams"):
        if name in given and getattr(payload, name) is None:
            raise ValidationFailed("Must not be null.", field=name)
    owner_id = _owner_id(m, payload.owner, payload.owner_email)
    clear_owner = "owner" in given and payload.owner is None and not payload.owner_email
    services.update_product(
        m,
        user,
        product_id,
        version=payload.version,
        name=payload.name,
        vision=payload.vision,
        product_goal=payload.product_goal,
        owner_id=owner_id,
        clear_owner=clear_owner,
        team_ids=payload.teams,
    )
    return _product_detail(m, product_id)


@router.post(
    "/{slug}/products/{product_id}/archive",
    response={200: ProductDetailOut, **ERRORS},
    summary="Archive a product",
)
def archive_product(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.archive_product(m, user, product_id, archived=True, version=filters.version)
    return _product_detail(m, product_id)


@router.post(
    "/{slug}/products/{product_id}/restore",
    response={200: ProductDetailOut, **ERRORS},
    summary="Restore an archived product",
)
def restore_product(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.archive_product(m, user, product_id, archived=False, version=filters.version)
    return _product_detail(m, product_id)


@router.get(
    "/{slug}/products/{product_id}/tree",
    response={200: TreeOut, **READ_ERRORS},
    summary="A product's goal tree, nested, with progress",
)
def product_tree(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    product = services.get_product(m, product_id)
    return {"product": {"id": product.pk, "name": product.name}, "goals": _tree(m, product.pk)}


@router.get(
    "/{slug}/products/{product_id}/lint",
    response={200: list[FindingOut], **READ_ERRORS},
    summary="Lint findings over a product's goals",
)
def product_lint(request: HttpRequest, slug: str, product_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    product = services.get_product(m, product_id)
    return _findings_out(services.lint(m, product_id=product.pk))


@router.get(
    "/{slug}/products/{product_id}/orphans",
    response={200: OrphanReportOut, **READ_ERRORS},
    summary="Line of sight: how much of a product's work serves no goal",
)
def orphan_report(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    report = services.orphan_report(m, product_id)
    return {
        "total": report.total,
        "linked": report.linked,
        "orphans": report.orphans,
        "orphan_share": report.orphan_share,
    }


@router.get(
    "/{slug}/products/{product_id}/export",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="Export a product's goal tree as JSON, YAML or Markdown",
    openapi_extra={
        "responses": {
            "200": {
                "description": "JSON by default; `?format=yaml` answers application/yaml text and "
                "`?format=markdown` text/markdown.",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                    "text/markdown": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_product(
    request: HttpRequest, slug: str, product_id: ObjectId, filters: Query[ExportFilter]
) -> dict[str, Any] | HttpResponse:
    from truenorth.strategy import exchange

    m, _ = _scope(request, slug)
    if filters.format == "markdown":
        return HttpResponse(exchange.to_markdown(m, product_id), content_type="text/markdown; charset=utf-8")
    data = exchange.export_tree(m, product_id)
    if filters.format == "yaml":
        return HttpResponse(exchange.dump(data, "yaml"), content_type="application/yaml; charset=utf-8")
    return data


# --- goals ----------------------------------------------------------------------------------------


@router.get("/{slug}/goals", response={200: list[GoalOut], **READ_ERRORS}, summary="List goals")
def list_goals(request: HttpRequest, slug: str, filters: Query[GoalFilter]) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    qs = services.goals_of(m).select_related("owner")
    if filters.product == "org":
        qs = qs.filter(product__isnull=True)
    elif filters.product is not None:
        qs = qs.filter(product_id=int(filters.product))
    if filters.level is not None:
        qs = qs.filter(level=filters.level)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    if filters.owner is not None:
        qs = qs.filter(owner_id=filters.owner)
    if not filters.include_archived:
        qs = qs.filter(archived_at__isnull=True)
    goals = list(
        qs.order_by("product_id", "parent_id", "position", "id")[
            filters.offset : filters.offset + filters.limit
        ]
    )
    progress = services.progress_for_org(m.organisation_id)
    return [_goal_out(g, progress) for g in goals]


@router.post("/{slug}/goals", response={201: GoalDetailOut, **ERRORS}, summary="Create a goal")
def create_goal(request: HttpRequest, slug: str, payload: GoalIn) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    services.require_writer(m)
    goal = services.create_goal(
        m,
        user,
        title=payload.title,
        product_id=_product_in_body(m, payload.product),
        parent_id=payload.parent,
        level=payload.level,
        outcome=payload.outcome,
        owner_id=_owner_id(m, payload.owner, payload.owner_email),
        target_date=payload.target_date,
        status=payload.status,
        weight=payload.weight,
        checkin_cadence_days=payload.checkin_cadence_days,
        targets=[t.model_dump() for t in payload.targets],
    )
    return Status(201, _goal_detail(m, goal.pk))


@router.get(
    "/{slug}/goals/{goal_id}",
    response={200: GoalDetailOut, **READ_ERRORS},
    summary="Get a goal with targets, progress, links and lint findings",
)
def get_goal(request: HttpRequest, slug: str, goal_id: ObjectId) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return _goal_detail(m, goal_id)


@router.patch("/{slug}/goals/{goal_id}", response={200: GoalDetailOut, **ERRORS}, summary="Change a goal")
def update_goal(request: HttpRequest, slug: str, goal_id: ObjectId, payload: GoalPatch) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.get_goal(m, goal_id)  # an unknown goal is a 404 before any field is looked at
    services.require_writer(m)
    given = payload.model_fields_set - {"version", "owner", "owner_email"}
    fields: dict[str, Any] = {}
    for name in given:
        value = getattr(payload, name)
        if value is None and name not in ("target_date",):
            raise ValidationFailed("Must not be null.", field=name)
        fields[name] = value
    if payload.owner_email:
        fields["owner_id"] = services.member_by_email(m, payload.owner_email).pk
    elif "owner" in payload.model_fields_set:
        fields["owner_id"] = payload.owner
    services.update_goal(m, user, goal_id, version=payload.version, **fields)
    return _goal_detail(m, goal_id)


@router.post(
    "/{slug}/goals/{goal_id}/move",
    response={200: GoalDetailOut, **ERRORS},
    summary="Move a goal under another parent and/or to another position",
)
def move_goal(request: HttpRequest, slug: str, goal_id: ObjectId, payload: MoveIn) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.move_goal(
        m, user, goal_id, parent_id=payload.parent, position=payload.position, version=payload.version
    )
    return _goal_detail(m, goal_id)


@router.post(
    "/{slug}/goals/{goal_id}/archive", response={200: GoalDetailOut, **ERRORS}, summary="Archive a goal"
)
def archive_goal(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.archive_goal(m, user, goal_id, archived=True, version=filters.version)
    return _goal_detail(m, goal_id)


@router.post(
    "/{slug}/goals/{goal_id}/restore",
    response={200: GoalDetailOut, **ERRORS},
    summary="Restore an archived goal",
)
def restore_goal(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[VersionQuery]
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    services.archive_goal(m, user, goal_id, archived=False, version=filters.version)
    return _goal_detail(m, goal_id)


@router.get(
    "/{slug}/goals/{goal_id}/lint",
    response={200: list[FindingOut], **READ_ERRORS},
    summary="Lint findings of one goal",
)
def goal_lint(request: HttpRequest, slug: str, goal_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    goal = services.get_goal(m, goal_id)
    return _findings_out(services.lint(m, goal_id=goal.pk))


@router.get(
    "/{slug}/tree", response={200: TreeOut, **READ_ERRORS}, summary="The organisation-level goal tree"
)
def org_tree(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    return {"product": None, "goals": _tree(m, None)}


@router.get(
    "/{slug}/alignment",
    response={200: AlignmentOut, **READ_ERRORS},
    summary="Which product goals serve which organisation goal",
)
def alignment(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = _scope(request, slug)
    view = services.alignment(m)
    progress = services.progress_for_org(m.organisation_id)

    def aligned(g: Goal) -> dict[str, Any]:
        return {**_goal_ref(g), "product_name": g.product.name if g.product else None}

    return {
        "org_goals": [
            {"goal": _goal_out(g, progress), "served_by": [aligned(x) for x in served]}
            for g, served in view.org_goals
        ],
        "unaligned": [aligned(g) for g in view.unaligned],
    }


@router.get(
    "/{slug}/lint", response={200: list[FindingOut], **READ_ERRORS}, summary="Lint findings over all goals"
)
def org_lint(request: HttpRequest, slug: str, filters: Query[LintFilter]) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    return _findings_out(services.lint(m, org_level=filters.org_level))


# --- targets and observations ---------------------------------------------------------------------


@router.post(
    "/{slug}/goals/{goal_id}/targets",
    response={201: TargetOut, **ERRORS},
    summary="Add a target measure to a goal",
)
def add_target(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: NewTargetIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    spec = payload.model_dump(exclude={"version"})
    target = services.add_target(m, user, goal_id, spec, version=payload.version)
    return Status(201, _target_out(target, {}))


@router.patch(
    "/{slug}/targets/{target_id}", response={200: TargetOut, **ERRORS}, summary="Change a target measure"
)
def update_target(
    request: HttpRequest, slug: str, target_id: ObjectId, payload: TargetPatch
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    spec = payload.model_dump(exclude={"version"}, exclude_unset=True)
    target = services.update_target(m, user, target_id, spec, version=payload.version)
    return _target_out(target, services.latest_values([target.pk]))


@router.delete(
    "/{slug}/targets/{target_id}",
    response={204: None, **ERRORS},
    summary="Remove a target measure from its goal (archived: it and its observed values are kept)",
)
def remove_target(
    request: HttpRequest, slug: str, target_id: ObjectId, filters: Query[VersionQuery]
) -> Status[None]:
    m, user = _scope(request, slug)
    services.remove_target(m, user, target_id, version=filters.version)
    return Status(204, None)


@router.get(
    "/{slug}/targets/{target_id}/observations",
    response={200: list[ObservationOut], **READ_ERRORS},
    summary="Observed values of a target measure, newest first",
)
def list_observations(
    request: HttpRequest, slug: str, target_id: ObjectId, filters: Query[ListFilter]
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    if not TargetMeasure.objects.filter(pk=target_id, goal__organisation_id=m.organisation_id).exists():
        raise NotFound("No such target measure.")
    qs = TargetObservation.objects.filter(target_measure_id=target_id).select_related("recorded_by")
    return [_observation_out(o) for o in qs[filters.offset : filters.offset + filters.limit]]


@router.post(
    "/{slug}/targets/{target_id}/observations",
    response={201: ObservationOut, **ERRORS},
    summary="Record an observed value of a target measure",
)
def record_observation(
    request: HttpRequest, slug: str, target_id: ObjectId, payload: ObservationIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    observation = services.record_observation(
        m, user, target_id, payload.value, observed_at=payload.observed_at, note=payload.note
    )
    return Status(201, _observation_out(observation))


# --- links ----------------------------------------------------------------------------------------


@router.post(
    "/{slug}/goals/{goal_id}/links",
    response={201: LinkOut, **ERRORS},
    summary="Align a goal to (or relate it to) a goal elsewhere",
)
def link_goals(request: HttpRequest, slug: str, goal_id: ObjectId, payload: LinkIn) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    link = services.link_goals(m, user, goal_id, payload.target, payload.kind)
    return Status(201, _link_out(link))


@router.delete("/{slug}/links/{link_id}", response={204: None, **ERRORS}, summary="Remove a goal link")
def unlink_goals(request: HttpRequest, slug: str, link_id: ObjectId) -> Status[None]:
    m, user = _scope(request, slug)
    services.unlink_goals(m, user, link_id)
    return Status(204, None)


# --- check-ins ------------------------------------------------------------------------------------


@router.get(
    "/{slug}/goals/{goal_id}/checkins",
    response={200: list[CheckInOut], **READ_ERRORS},
    summary="Check-ins of a goal, newest first",
)
def list_checkins(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = goal.checkins.select_related("author", "observation__recorded_by").order_by("-created_at", "-id")
    return [_checkin_out(c) for c in rows[filters.offset : filters.offset + filters.limit]]


@router.post(
    "/{slug}/goals/{goal_id}/checkins",
    response={201: CheckInOut, **ERRORS},
    summary="Check in on an active goal (its owner or an admin)",
)
def check_in(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: CheckInIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    checkin = services.check_in(
        m,
        user,
        goal_id,
        status=payload.status,
        confidence=payload.confidence,
        narrative=payload.narrative,
        target_id=payload.target,
        value=payload.value,
        idempotency_key=payload.idempotency_key,
    )
    return Status(201, _checkin_out(checkin))


@router.get(
    "/{slug}/checkins/overdue",
    response={200: list[OverdueOut], **READ_ERRORS},
    summary="Active goals whose check-in is overdue",
)
def overdue_checkins(request: HttpRequest, slug: str, filters: Query[OverdueFilter]) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    rows = services.overdue_checkins(m, product_id=filters.product, owner_id=filters.owner)
    return [
        {
            "goal": _goal_ref(o.goal),
            "owner": _user_ref(o.goal.owner),
            "last_checkin": o.last_checkin,
            "due": o.due,
            "days_overdue": o.days_overdue,
        }
        for o in rows
    ]


# --- comments, proposals, endorsements and concerns -----------------------------------------------


@router.get(
    "/{slug}/goals/{goal_id}/comments",
    response={200: list[CommentOut], **READ_ERRORS},
    summary="Comments on a goal, oldest first",
)
def list_comments(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = services.comments_of(m, goal)[filters.offset : filters.offset + filters.limit]
    return [_comment_out(c) for c in rows]


@router.post(
    "/{slug}/goals/{goal_id}/comments",
    response={201: CommentOut, **ERRORS},
    summary="Comment on a goal (@e-mail mentions notify members)",
)
def add_comment(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: CommentIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    return Status(201, _comment_out(services.add_comment(m, user, goal_id, payload.body)))


@router.get(
    "/{slug}/goals/{goal_id}/proposals",
    response={200: list[ProposalOut], **READ_ERRORS},
    summary="Change proposals on a goal, newest first",
)
def list_proposals(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = services.proposals_of(m, goal)[filters.offset : filters.offset + filters.limit]
    return [_proposal_out(p) for p in rows]


@router.post(
    "/{slug}/goals/{goal_id}/proposals",
    response={201: ProposalOut, **ERRORS},
    summary="Propose a change to a goal's wording, targets or date",
)
def propose_change(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: ProposalIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    changes = payload.changes.model_dump(exclude_unset=True)
    proposal = services.propose_change(m, user, goal_id, changes, payload.reason)
    return Status(201, _proposal_out(proposal))


def _decide(
    request: HttpRequest, slug: str, proposal_id: int, *, accept: bool, payload: DecisionIn
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    proposal = services.decide_proposal(
        m, user, proposal_id, accept=accept, reason=payload.reason, over_newer_edits=payload.over_newer_edits
    )
    return _proposal_out(proposal)


@router.post(
    "/{slug}/proposals/{proposal_id}/accept",
    response={200: ProposalOut, **ERRORS},
    summary="Accept a proposal: the change is applied (goal owner or admin)",
)
def accept_proposal(
    request: HttpRequest, slug: str, proposal_id: ObjectId, payload: DecisionIn
) -> dict[str, Any]:
    return _decide(request, slug, proposal_id, accept=True, payload=payload)


@router.post(
    "/{slug}/proposals/{proposal_id}/reject",
    response={200: ProposalOut, **ERRORS},
    summary="Reject a proposal, with a reason (goal owner or admin)",
)
def reject_proposal(
    request: HttpRequest, slug: str, proposal_id: ObjectId, payload: DecisionIn
) -> dict[str, Any]:
    return _decide(request, slug, proposal_id, accept=False, payload=payload)


@router.post(
    "/{slug}/proposals/{proposal_id}/withdraw",
    response={200: ProposalOut, **ERRORS},
    summary="Withdraw my proposal",
)
def withdraw_proposal(request: HttpRequest, slug: str, proposal_id: ObjectId) -> dict[str, Any]:
    m, user = _scope(request, slug)
    return _proposal_out(services.withdraw_proposal(m, user, proposal_id))


@router.get(
    "/{slug}/goals/{goal_id}/endorsements",
    response={200: list[EndorsementOut], **READ_ERRORS},
    summary="Endorsements and concerns on a goal",
)
def list_endorsements(
    request: HttpRequest, slug: str, goal_id: ObjectId, filters: Query[ListFilter]
) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    goal = services.get_goal(m, goal_id)
    rows = services.endorsements_of(m, goal)[filters.offset : filters.offset + filters.limit]
    return [_endorsement_out(e) for e in rows]


@router.post(
    "/{slug}/goals/{goal_id}/endorsements",
    response={201: EndorsementOut, **ERRORS},
    summary="Endorse a goal (again: updates my note)",
)
def endorse(request: HttpRequest, slug: str, goal_id: ObjectId, payload: NoteIn) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    return Status(201, _endorsement_out(services.endorse(m, user, goal_id, payload.note)))


@router.delete(
    "/{slug}/goals/{goal_id}/endorsements",
    response={204: None, **ERRORS},
    summary="Withdraw my endorsement of a goal",
)
def withdraw_endorsement(request: HttpRequest, slug: str, goal_id: ObjectId) -> Status[None]:
    m, user = _scope(request, slug)
    services.withdraw_endorsement(m, user, goal_id)
    return Status(204, None)


@router.post(
    "/{slug}/goals/{goal_id}/concerns",
    response={201: EndorsementOut, **ERRORS},
    summary="Raise a concern about a goal",
)
def raise_concern(
    request: HttpRequest, slug: str, goal_id: ObjectId, payload: ConcernIn
) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    return Status(201, _endorsement_out(services.raise_concern(m, user, goal_id, payload.note)))


@router.post(
    "/{slug}/concerns/{concern_id}/resolve",
    response={200: EndorsementOut, **ERRORS},
    summary="Resolve a concern (its author, the goal's owner or an admin)",
)
def resolve_concern(
    request: HttpRequest, slug: str, concern_id: ObjectId, payload: ResolveIn
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    return _endorsement_out(services.resolve_concern(m, user, concern_id, payload.resolution))


# --- work items -----------------------------------------------------------------------------------


@router.get("/{slug}/work-items", response={200: list[WorkItemOut], **READ_ERRORS}, summary="List work items")
def list_work_items(request: HttpRequest, slug: str, filters: Query[WorkItemFilter]) -> list[dict[str, Any]]:
    m, _ = _scope(request, slug)
    qs = services.work_items_of(m, product_id=filters.product, goal_id=filters.goal, orphans=filters.orphans)
    return [_work_item_out(w) for w in qs[filters.offset : filters.offset + filters.limit]]


@router.post("/{slug}/work-items", response={201: WorkItemOut, **ERRORS}, summary="Create a work item")
def create_work_item(request: HttpRequest, slug: str, payload: WorkItemIn) -> Status[dict[str, Any]]:
    m, user = _scope(request, slug)
    services.require_writer(m)
    product_id = _product_in_body(m, payload.product)
    assert product_id is not None
    item = services.create_work_item(
        m,
        user,
        product_id,
        title=payload.title,
        external_key=payload.external_key,
        url=payload.url,
        status=payload.status,
        team_id=payload.team,
        goal_id=payload.goal,
    )
    return Status(201, _work_item_out(item))


@router.patch(
    "/{slug}/work-items/{work_item_id}",
    response={200: WorkItemOut, **ERRORS},
    summary="Link a work item to the goal it serves (or unlink it)",
)
def link_work_item(
    request: HttpRequest, slug: str, work_item_id: ObjectId, payload: WorkItemPatch
) -> dict[str, Any]:
    m, user = _scope(request, slug)
    item = services.link_work_item(m, user, work_item_id, payload.goal)
    return _work_item_out(item)
