"""Activity feed: everything that happened in an organisation (or one product), read from the append-only
history (truenorth.history), newest first, in pages (keyset on (at, id)), filterable by kind, action,
person and goal; and the per-person feed tokens that let a feed reader fetch it as Atom without signing in.

Queries are bounded: one for the page (filters on a product or a goal are subqueries, never id lists
read into Python), one per kind of object on the page to link the objects that still exist, and one to
check a goal or product filter belongs to the organisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import CharField, Model, Q, QuerySet
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.engagement.models import FeedToken, HealthAssessment, Pulse, Stakeholder, Webhook
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis, ResultSnapshot
from truenorth.measures.models import DataSource, Investment, Measure
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import ChangeProposal, Goal, Product, TargetMeasure, Team

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# The Atom feed: entries per fetch, and how often one address may fetch feeds.
FEED_ENTRIES = 50
FEED_RATE_LIMIT = 60
FEED_RATE_WINDOW = 300

ACTIONS: tuple[str, ...] = tuple(HistoryEntry.Action.values)


def _label(model: type[Model]) -> str:
    return model._meta.label_lower


@dataclass(frozen=True)
class Kind:
    """A kind of object the feed knows: its label, and how to link one that still exists.

    `columns`: the values read per existing object (its pk first); `link(org_slug, values)` the URL."""

    object_type: str
    label: str
    model: type[Model]
    org_path: str  # the lookup from the model to its organisation id
    columns: tuple[str, ...]
    link: Callable[[str, tuple[object, ...]], str]
    manager: str = "objects"


def _url(name: str, slug: str, **ids: object) -> str:
    return reverse(name, kwargs={"org_slug": slug, **ids})


KINDS: tuple[Kind, ...] = (
    Kind(
        "strategy.product",
        "Product",
        Product,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("strategy:product", s, product_id=v[0]),
    ),
    Kind(
        "strategy.goal",
        "Goal",
        Goal,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("strategy:goal", s, goal_id=v[0]),
    ),
    Kind(
        "strategy.targetmeasure",
        "Target measure",
        TargetMeasure,
        "goal__organisation_id",
        ("pk", "goal_id"),
        lambda s, v: _url("strategy:goal", s, goal_id=v[1]),
        manager="all_objects",
    ),
    Kind(
        "strategy.changeproposal",
        "Change proposal",
        ChangeProposal,
        "goal__organisation_id",
        ("pk", "goal_id"),
        lambda s, v: _url("strategy:goal", s, goal_id=v[1]),
    ),
    Kind(
        "strategy.team", "Team", Team, "organisation_id", ("pk",), lambda s, v: _url("strategy:products", s)
    ),
    Kind(
        "measures.measure",
        "Measure",
        Measure,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("measures:measure", s, measure_id=v[0]),
    ),
    Kind(
        "measures.investment",
        "Investment",
        Investment,
        "organisation_id",
        ("pk", "product_id"),
        lambda s, v: _url("measures:investments", s, product_id=v[1]),
    ),
    Kind(
        "measures.datasource",
        "Data source",
        DataSource,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("measures:source", s, source_id=v[0]),
    ),
    Kind(
        "hypotheses.hypothesis",
        "Hypothesis",
        Hypothesis,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("hypotheses:hypothesis", s, hypothesis_id=v[0]),
    ),
    Kind(
        "hypotheses.experiment",
        "Experiment",
        Experiment,
        "hypothesis__organisation_id",
        ("pk", "hypothesis_id"),
        lambda s, v: _url("hypotheses:hypothesis", s, hypothesis_id=v[1]),
    ),
    Kind(
        "hypotheses.decision",
        "Decision",
        Decision,
        "hypothesis__organisation_id",
        ("pk", "hypothesis_id"),
        lambda s, v: _url("hypotheses:hypothesis", s, hypothesis_id=v[1]),
    ),
    Kind(
        "hypotheses.resultsnapshot",
        "Result snapshot",
        ResultSnapshot,
        "experiment__hypothesis__organisation_id",
        ("pk", "experiment_id"),
        lambda s, v: _url("hypotheses:result_snapshot", s, experiment_id=v[1], snapshot_id=v[0]),
    ),
    Kind(
        "orgs.organisation",
        "Organisation",
        Organisation,
        "pk",
        ("pk",),
        lambda s, v: _url("orgs:settings", s),
    ),
    Kind(
        "engagement.stakeholder",
        "Stakeholder",
        Stakeholder,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("engagement:stakeholder", s, stakeholder_id=v[0]),
    ),
    Kind(
        "engagement.pulse",
        "Alignment pulse",
        Pulse,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("engagement:pulse", s, pulse_id=v[0]),
    ),
    Kind(
        "engagement.webhook",
        "Webhook",
        Webhook,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("engagement:webhook", s, webhook_id=v[0]),
    ),
    Kind(
        "engagement.healthassessment",
        "Health check",
        HealthAssessment,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("engagement:health", s),
    ),
    Kind(
        "engagement.feedtoken",
        "Feed token",
        FeedToken,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("engagement:activity", s),
    ),
    Kind(
        "orgs.membership",
        "Membership",
        Membership,
        "organisation_id",
        ("pk",),
        lambda s, v: _url("orgs:members", s),
    ),
)
KIND_BY_TYPE: dict[str, Kind] = {k.object_type: k for k in KINDS}


def kind_label(object_type: str) -> str:
    kind = KIND_BY_TYPE.get(object_type)
    return kind.label if kind else object_type.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def kind_choices() -> list[tuple[str, str]]:
    return [(k.object_type, k.label) for k in KINDS]


@dataclass(frozen=True)
class Filters:
    kind: str | None = None  # an object type, e.g. "strategy.goal"
    action: str | None = None  # created, updated, deleted, archived
    person: int | None = None  # the actor's user id
    goal: int | None = None
    product: int | None = None


@dataclass
class Entry:
    entry: HistoryEntry
    kind: str
    url: str | None = None


@dataclass
class Page:
    entries: list[Entry] = field(default_factory=list)
    next_cursor: str | None = None


def _ids(qs: QuerySet[Any, Any]) -> QuerySet[Any, Any]:
    """The primary keys of qs as text (history stores object ids as text), for a subquery."""
    return qs.order_by().annotate(_key=Cast("pk", CharField())).values("_key")


def _goal_q(goal_ids: QuerySet[Any, Any]) -> Q:
    """Entries of these goals and of their target measures and change proposals."""
    return (
        Q(object_type=_label(Goal), object_id__in=_ids(goal_ids))
        | Q(
            object_type=_label(TargetMeasure),
            object_id__in=_ids(TargetMeasure.all_objects.filter(goal__in=goal_ids)),
        )
        | Q(
            object_type=_label(ChangeProposal),
            object_id__in=_ids(ChangeProposal.objects.filter(goal__in=goal_ids)),
        )
    )


def _product_q(product: Product) -> Q:
    """Entries of the product and of everything that belongs to it: goals (with their targets and
    proposals), measures, investments, hypotheses, experiments, decisions, result snapshots and
    alignment pulses."""
    goals = Goal.objects.filter(product_id=product.pk).values("pk")
    hypotheses = Hypothesis.objects.filter(product_id=product.pk).values("pk")
    experiments = Experiment.objects.filter(hypothesis__product_id=product.pk).values("pk")
    return (
        Q(object_type=_label(Product), object_id=str(product.pk))
        | _goal_q(goals)
        | Q(object_type=_label(Measure), object_id__in=_ids(Measure.objects.filter(product_id=product.pk)))
        | Q(
            object_type=_label(Investment),
            object_id__in=_ids(Investment.objects.filter(product_id=product.pk)),
        )
        | Q(object_type=_label(Hypothesis), object_id__in=_ids(Hypothesis.objects.filter(pk__in=hypotheses)))
        | Q(object_type=_label(Experiment), object_id__in=_ids(Experiment.objects.filter(pk__in=experiments)))
        | Q(
            object_type=_label(Decision),
            object_id__in=_ids(Decision.objects.filter(hypothesis__in=hypotheses)),
        )
        | Q(
            object_type=_label(ResultSnapshot),
            object_id__in=_ids(ResultSnapshot.objects.filter(experiment__in=experiments)),
        )
        | Q(object_type=_label(Pulse), object_id__in=_ids(Pulse.objects.filter(product_id=product.pk)))
    )


def clean_filters(
    kind: str | None = None,
    action: str | None = None,
    person: int | None = None,
    goal: int | None = None,
    product: int | None = None,
) -> Filters:
    """Filters from input: blanks are no filter; an unknown action is a 422 naming the field."""
    kind = (kind or "").strip() or None
    action = (action or "").strip() or None
    if kind is not None and len(kind) > 60:
        raise ValidationFailed("Unknown kind.", field="kind")
    if action is not None and action not in ACTIONS:
        raise ValidationFailed(f"Unknown action; one of {', '.join(ACTIONS)}.", field="action")
    return Filters(kind=kind, action=action, person=person, goal=goal, product=product)


def entries_queryset(membership: Membership, filters: Filters) -> QuerySet[HistoryEntry]:
    """The organisation's history entries matching the filters, newest first. A goal or product of
    another organisation is not found (404), exactly like one that does not exist."""
    qs = HistoryEntry.objects.filter(organisation_id=membership.organisation_id)
    if filters.kind:
        qs = qs.filter(object_type=filters.kind)
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.person is not None:
        qs = qs.filter(actor_id=filters.person)
    if filters.product is not None:
        qs = qs.filter(_product_q(strategy.get_product(membership, filters.product)))
    if filters.goal is not None:
        goal = strategy.get_goal(membership, filters.goal)
        qs = qs.filter(_goal_q(Goal.objects.filter(pk=goal.pk).values("pk")))
    return qs.order_by("-at", "-id")


def encode_cursor(entry: HistoryEntry) -> str:
    at = entry.at.astimezone(dt.UTC)
    return f"{at.strftime('%Y%m%dT%H%M%S.%f')}_{entry.pk}"


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        stamp, _, pk = cursor.partition("_")
        at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=dt.UTC)
        return at, int(pk)
    except ValueError:
        raise ValidationFailed("Not a page cursor from this feed.", field="before") from None


def _links(slug: str, entries: Sequence[Entry]) -> None:
    """Link each entry to its object when it still exists: one query per kind of object on the page."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for e in entries:
        if e.entry.object_type in KIND_BY_TYPE and e.entry.object_id.isdigit():
            wanted[e.entry.object_type].add(int(e.entry.object_id))
    found: dict[tuple[str, str], str] = {}
    for object_type, ids in wanted.items():
        kind = KIND_BY_TYPE[object_type]
        manager = getattr(kind.model, kind.manager)
        org_filter = {kind.org_path: entries[0].entry.organisation_id}
        for values in manager.filter(pk__in=ids, **org_filter).values_list(*kind.columns):
            found[(object_type, str(values[0]))] = kind.link(slug, tuple(values))
    for e in entries:
        e.url = found.get((e.entry.object_type, e.entry.object_id))


def activity(
    membership: Membership, filters: Filters, *, before: str | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of activity, newest first; `before` is the previous page's `next_cursor`."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"Give a page size from 1 to {MAX_PAGE_SIZE}.", field="limit")
    qs = entries_queryset(membership, filters)
    if before:
        at, pk = decode_cursor(before)
        qs = qs.filter(Q(at__lt=at) | Q(at=at, id__lt=pk))
    rows = list(qs[: limit + 1])
    page = Page(entries=[Entry(e, kind_label(e.object_type)) for e in rows[:limit]])
    if len(rows) > limit:
        page.next_cursor = encode_cursor(rows[limit - 1])
    if page.entries:
        _links(membership.organisation.slug, page.entries)
    return page


# Feed tokens ---------------------------------------------------------------------------------------


def hash_feed_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def active_feed_token(membership: Membership, user: User) -> FeedToken | None:
    return FeedToken.objects.filter(
        user=user, organisation_id=membership.organisation_id, revoked_at__isnull=True
    ).first()


def _revoke(membership: Membership, user: User, actor: User) -> bool:
    token = active_feed_token(membership, user)
    if token is None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record(
        membership.organisation,
        token,
        actor,
        HistoryEntry.Action.UPDATED,
        {"revoked_at": {"old": None, "new": token.revoked_at.isoformat()}},
    )
    return True


def create_feed_token(membership: Membership, user: User) -> str:
    """A new feed token for this person in this organisation (any role may read the feed); the previous
    one, if any, is revoked. Returns the token itself: it is shown once and only its hash is kept."""
    raw = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            _revoke(membership, user, user)
            token = FeedToken.objects.create(
                user=user, organisation_id=membership.organisation_id, token_hash=hash_feed_token(raw)
            )
    except IntegrityError:
        raise Conflict("A feed token is being created already; try again.") from None
    record(membership.organisation, token, user, HistoryEntry.Action.CREATED, {})
    return raw


def revoke_feed_token(membership: Membership, user: User) -> None:
    """Revoke this person's feed token; NotFound when there is none."""
    with transaction.atomic():
        if not _revoke(membership, user, user):
            raise NotFound("You have no feed token to revoke.")


def feed_membership(raw: str) -> Membership:
    """The membership a feed token reads as: an unknown or revoked token, a person no longer a member
    of the token's organisation, or a deactivated person, are all the same NotFound."""
    token = (
        FeedToken.objects.filter(token_hash=hash_feed_token(raw or ""), revoked_at__isnull=True)
        .select_related("user")
        .first()
    )
    if token is None or not token.user.is_active:
        raise NotFound("No such feed.")
    membership = (
        Membership.objects.filter(user_id=token.user_id, organisation_id=token.organisation_id)
        .select_related("organisation", "user")
        .first()
    )
    if membership is None:
        raise NotFound("No such feed.")
    return membership
