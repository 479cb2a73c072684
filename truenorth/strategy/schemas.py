"""Schemas of the Vision API (truenorth/strategy/api/): what goes out, what comes in, and the query filters.

Schema names are part of the published OpenAPI document: renaming one changes the API."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from django.utils import timezone
from ninja import Schema
from pydantic import Field, field_validator

from truenorth.core.schemas import ObjectId, StrictSchema
from truenorth.strategy import services
from truenorth.strategy.models import (
    ChangeProposal,
    CheckIn,
    CheckInStatus,
    Comment,
    Direction,
    Endorsement,
    Goal,
    GoalLevel,
    GoalStatus,
    LinkKind,
    TargetMeasure,
    TargetObservation,
    WorkItem,
    WorkItemStatus,
)

if TYPE_CHECKING:
    from truenorth.accounts.models import User
    from truenorth.strategy.services import Overdue

MAX_LIST = 1000
VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
GOAL_VERSION_HELP = "Required: the goal's version you read; a stale one is refused with 409."


# --- output schemas -------------------------------------------------------------------------------
# A schema with `resolve_*` methods is validated from the model object itself (ninja reads each field
# from the attribute of the same name, or from its resolver): the schema is the only description of
# that output. The others (goals, targets, products, lint findings) carry values computed beside the
# model (progress, latest values, counts) and are built as dicts in api/common.py.


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

    @staticmethod
    def resolve_product(goal: Goal) -> int | None:
        return goal.product_id


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

    @staticmethod
    def resolve_product_name(goal: Goal) -> str | None:
        return goal.product.name if goal.product else None


class AlignmentRowOut(Schema):
    goal: GoalOut
    served_by: list[AlignedGoalOut]


class AlignmentOut(Schema):
    org_goals: list[AlignmentRowOut]
    unaligned: list[AlignedGoalOut] = Field(description="Product strategic goals that serve no org goal.")


class TargetObservationOut(Schema):
    id: int
    target: int
    value: float
    observed_at: dt.datetime
    note: str
    recorded_by: str | None

    @staticmethod
    def resolve_target(observation: TargetObservation) -> int:
        return observation.target_measure_id

    @staticmethod
    def resolve_recorded_by(observation: TargetObservation) -> str | None:
        return observation.recorded_by.email if observation.recorded_by else None


class CheckInOut(Schema):
    id: int
    goal: int
    author: UserRef | None
    status: str
    confidence: int
    narrative: str
    observation: TargetObservationOut | None
    measure_observation: int | None = Field(
        description="The observation this check-in recorded on the Value measure its target tracks."
    )
    created_at: dt.datetime

    @staticmethod
    def resolve_goal(checkin: CheckIn) -> int:
        return checkin.goal_id

    @staticmethod
    def resolve_measure_observation(checkin: CheckIn) -> int | None:
        return checkin.measure_observation_id


class OverdueOut(Schema):
    goal: GoalRef
    owner: UserRef | None
    last_checkin: dt.datetime | None
    due: dt.datetime
    days_overdue: int

    @staticmethod
    def resolve_owner(overdue: Overdue) -> User | None:
        return overdue.goal.owner


class CommentOut(Schema):
    id: int
    goal: int
    author: UserRef | None
    body: str
    created_at: dt.datetime

    @staticmethod
    def resolve_goal(comment: Comment) -> int:
        return comment.goal_id


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

    @staticmethod
    def resolve_goal(proposal: ChangeProposal) -> int:
        return proposal.goal_id


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

    @staticmethod
    def resolve_goal(endorsement: Endorsement) -> int:
        return endorsement.goal_id


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

    @staticmethod
    def resolve_product(item: WorkItem) -> int:
        return item.product_id


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


class TargetObservationIn(In):
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
