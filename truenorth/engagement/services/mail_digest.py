"""The weekly digest: for one person in one organisation, what changed in the goals and products they
follow (explicit follows, plus the goals and products they own) since their last digest (or 7 days).

Sections: new goals (in followed products or under followed goals), accepted change proposals,
decisions recorded on hypotheses, measures crossing their target (either way), evidence gone stale
(a measure whose cadence ran out in the period) and other changes from the history (by others).
Nothing changed: nothing is sent. One digest per person per ISO week (the outbox's dedupe key
`digest:<user>:<year>-W<week>`). The worker sends them hourly to the people whose weekday it is;
`truenorth digest send` sends them at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from truenorth.engagement.models import EmailKind, Follow, NotificationSettings, OutgoingEmail
from truenorth.engagement.services import mail
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses.models import Decision
from truenorth.measures import services as measures
from truenorth.measures.models import Measure, MeasureDirection, Observation
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import ChangeProposal, Goal, Product, ProposalState, TargetMeasure

DEFAULT_PERIOD = dt.timedelta(days=7)
SECTION_LIMIT = 25


@dataclass(frozen=True)
class Item:
    text: str
    url: str = ""


@dataclass
class Digest:
    membership: Membership
    since: dt.datetime
    until: dt.datetime
    products: list[Product] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    sections: list[tuple[str, list[Item]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(items for _, items in self.sections)

    @property
    def count(self) -> int:
        return sum(len(items) for _, items in self.sections)


def week_key(user_id: int, when: dt.datetime) -> str:
    year, week, _ = when.astimezone(dt.UTC).isocalendar()
    return f"digest:{user_id}:{year}-W{week:02d}"


def last_digest_at(membership: Membership) -> dt.datetime | None:
    last = (
        OutgoingEmail.objects.filter(
            organisation=membership.organisation, user=membership.user, kind=EmailKind.DIGEST
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return last


def _url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def followed(membership: Membership) -> tuple[set[int], set[int]]:
    """Ids of the products and goals the person follows: explicit follows, plus what they own."""
    org, user = membership.organisation, membership.user
    follows = Follow.objects.filter(organisation=org, user=user)
    product_ids = {pk for pk in follows.values_list("product_id", flat=True) if pk is not None}
    goal_ids = {pk for pk in follows.values_list("goal_id", flat=True) if pk is not None}
    product_ids |= set(
        Product.objects.filter(organisation=org, owner=user, archived_at__isnull=True).values_list("pk", flat=True)
    )
    goal_ids |= set(
        Goal.objects.filter(organisation=org, owner=user, archived_at__isnull=True).values_list("pk", flat=True)
    )
    return product_ids, goal_ids


def _met(value: float, target: float, direction: str) -> bool:
    return value <= target if direction == MeasureDirection.LOWER else value >= target


def _value_at(measure: Measure, moment: dt.datetime) -> float | None:
    return (
        Observation.objects.filter(measure=measure, superseded=False, observed_at__lte=moment)
        .order_by("-observed_at", "-id")
        .values_list("value", flat=True)
        .first()
    )


def build_digest(
    membership: Membership, *, now: dt.datetime | None = None, since: dt.datetime | None = None
) -> Digest:
    """What changed for this person in this organisation between `since` (default: their last digest,
    or 7 days ago) and `now`."""
    now = now or timezone.now()
    if since is None:
        since = last_digest_at(membership) or now - DEFAULT_PERIOD
    org, user = membership.organisation, membership.user
    product_ids, goal_ids = followed(membership)
    digest = Digest(membership=membership, since=since, until=now)
    digest.products = list(Product.objects.filter(pk__in=product_ids).order_by("name"))
    digest.goals = list(Goal.objects.filter(pk__in=goal_ids).order_by("title"))
    if not product_ids and not goal_ids:
        return digest
    window = {"gt": since, "lte": now}
    in_scope = Q(product_id__in=product_ids) | Q(parent_id__in=goal_ids)

    new_goals = Goal.objects.filter(
        in_scope, organisation=org, archived_at__isnull=True,
        created_at__gt=window["gt"], created_at__lte=window["lte"],
    ).select_related("product", "organisation").order_by("created_at")[:SECTION_LIMIT]
    digest.sections.append((
        "New goals",
        [Item(f"{g.title}" + (f" ({g.product.name})" if g.product else ""), _url(strategy.goal_url(g)))
         for g in new_goals],
    ))

    proposals = ChangeProposal.objects.filter(
        Q(goal_id__in=goal_ids) | Q(goal__product_id__in=product_ids),
        goal__organisation=org, state=ProposalState.ACCEPTED,
        decided_at__gt=window["gt"], decided_at__lte=window["lte"],
    ).select_related("goal__organisation", "decided_by").order_by("decided_at")[:SECTION_LIMIT]
    digest.sections.append((
        "Accepted change proposals",
        [Item(f"{p.goal.title}: changed {', '.join(sorted(p.changes)) or 'wording'}"
              + (f" (accepted by {p.decided_by.name or p.decided_by.email})" if p.decided_by else ""),
              _url(strategy.goal_url(p.goal)))
         for p in proposals],
    ))

    decisions = Decision.objects.filter(
        Q(hypothesis__product_id__in=product_ids) | Q(hypothesis__goal_id__in=goal_ids),
        hypothesis__organisation=org, decided_at__gt=window["gt"], decided_at__lte=window["lte"],
    ).select_related("hypothesis").order_by("decided_at")[:SECTION_LIMIT]
    digest.sections.append((
        "Decisions recorded",
        [Item(f"{d.hypothesis.title}: {d.get_outcome_display()}, {d.get_decision_display().lower()}",
              _url(f"/o/{org.slug}/hypotheses/{d.hypothesis_id}/"))
         for d in decisions],
    ))

    tracked = TargetMeasure.objects.filter(goal_id__in=goal_ids, measure__isnull=False).values_list(
        "measure_id", flat=True
    )
    scope_measures = Q(product_id__in=product_ids) | Q(pk__in=list(tracked))
    crossed: list[Item] = []
    for m in measures.measures_of(membership).filter(scope_measures, target__isnull=False):
        assert m.target is not None
        now_value, before = _value_at(m, now), _value_at(m, since)
        if now_value is None:
            continue
        met_now = _met(now_value, m.target, m.direction)
        met_before = before is not None and _met(before, m.target, m.direction)
        if met_now != met_before and (before is not None or met_now):
            verb = "reached its target" if met_now else "fell back from its target"
            crossed.append(Item(f"{m.name} {verb} ({now_value:g} against {m.target:g})",
                                _url(f"/o/{org.slug}/measures/{m.pk}/")))
    digest.sections.append(("Measures crossing their target", crossed[:SECTION_LIMIT]))

    stale: list[Item] = []
    scope_ids = set(measures.measures_of(membership).filter(scope_measures).values_list("pk", flat=True))
    for m in measures.stale_measures(membership, now=now):
        if m.pk not in scope_ids:
            continue
        last = getattr(m, "last_observed_at", None)
        stale_from = (last or m.created_at) + dt.timedelta(days=m.cadence_days)
        if since < stale_from <= now:
            when = f"last observed {last:%d %b %Y}" if last else "never observed"
            stale.append(Item(f"{m.name}: {when}, expected every {m.cadence_days} days",
                              _url(f"/o/{org.slug}/measures/{m.pk}/")))
    digest.sections.append(("Evidence gone stale", stale[:SECTION_LIMIT]))

    entries = HistoryEntry.objects.filter(
        Q(object_type="strategy.goal", object_id__in=[str(pk) for pk in goal_ids])
        | Q(object_type="strategy.product", object_id__in=[str(pk) for pk in product_ids]),
        organisation=org, at__gt=window["gt"], at__lte=window["lte"],
        action__in=[HistoryEntry.Action.UPDATED, HistoryEntry.Action.ARCHIVED],
    ).exclude(actor=user).order_by("at", "id")[:SECTION_LIMIT]
    digest.sections.append((
        "Other changes",
        [Item(f"{e.object_repr}: {e.get_action_display().lower()} {', '.join(sorted(e.changes))}".rstrip()
              + f" by {e.actor_name}",
              _url(f"/o/{org.slug}/goals/{e.object_id}/" if e.object_type == "strategy.goal"
                   else f"/o/{org.slug}/products/{e.object_id}/"))
         for e in entries],
    ))
    return digest


def digest_message(digest: Digest) -> mail.Message:
    membership = digest.membership
    org, user = membership.organisation, membership.user
    context = {
        "digest": digest,
        "user": user,
        "organisation": org,
        "sections": [(title, items) for title, items in digest.sections if items],
        "settings_url": _url(f"/o/{org.slug}/settings/notifications/"),
        "unsubscribe_url": mail.unsubscribe_url(user, org, EmailKind.DIGEST),
    }
    return mail.Message(
        subject=f"{org.name}: your weekly digest ({digest.count} update{'s' if digest.count != 1 else ''})",
        text=render_to_string("engagement/mail/digest.txt", context),
        html=render_to_string("engagement/mail/digest.html", context),
    )


@dataclass(frozen=True)
class Outcome:
    membership: Membership
    status: str  # "sent" (queued), "already", "nothing", "would send", "off"
    digest: Digest | None = None
    email: OutgoingEmail | None = None


def send_digest(membership: Membership, *, now: dt.datetime | None = None, dry_run: bool = False) -> Outcome:
    """Queue this person's digest for this week, unless it went already or nothing changed."""
    now = now or timezone.now()
    key = week_key(membership.user_id, now)
    if OutgoingEmail.objects.filter(organisation=membership.organisation, dedupe_key=key).exists():
        return Outcome(membership, "already")
    digest = build_digest(membership, now=now)
    if digest.empty:
        return Outcome(membership, "nothing", digest)
    if dry_run:
        return Outcome(membership, "would send", digest)
    message = digest_message(digest)
    email = mail.queue_email(
        membership.organisation,
        to=membership.user.email,
        subject=message.subject,
        text=message.text,
        html=message.html,
        kind=EmailKind.DIGEST,
        dedupe_key=key,
        user=membership.user,
        now=now,
    )
    return Outcome(membership, "sent", digest, email)


def recipients(
    *, now: dt.datetime | None = None, organisation: Organisation | None = None, due_only: bool = True
) -> list[Membership]:
    """Memberships whose digest is on (and, with due_only, whose weekday is today, UTC)."""
    now = now or timezone.now()
    qs = Membership.objects.filter(user__is_active=True).select_related("user", "organisation")
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    chosen = {
        (s.user_id, s.organisation_id): s
        for s in NotificationSettings.objects.filter(user_id__in=qs.values("user_id"))
    }
    weekday = now.astimezone(dt.UTC).weekday()
    result = []
    for membership in qs.order_by("organisation_id", "user__email"):
        own = chosen.get((membership.user_id, membership.organisation_id))
        on = own.weekly_digest if own else True
        day = own.digest_weekday if own else 0
        if on and (not due_only or day == weekday):
            result.append(membership)
    return result


def send_digests(
    *,
    now: dt.datetime | None = None,
    organisation: Organisation | None = None,
    due_only: bool = True,
    dry_run: bool = False,
    progress: Callable[[Outcome], None] | None = None,
    people: list[Membership] | None = None,
) -> list[Outcome]:
    """Send the digests due now (or, with due_only=False, everyone's whose digest is on)."""
    now = now or timezone.now()
    if people is None:
        people = recipients(now=now, organisation=organisation, due_only=due_only)
    outcomes = []
    for membership in people:
        outcome = send_digest(membership, now=now, dry_run=dry_run)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
