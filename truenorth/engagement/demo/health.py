"""Demo data: health — two saved alignment health checks so the page shows a trend: one two weeks ago,
then, after acting on steps it proposed (the member endorses goals nobody had endorsed, orphan work is
linked to its product's goal, the overdue check-ins are made), one today.
Runs last, after every other part, so the facts include stakeholders and pulses."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.engagement.models import HealthAssessment
from truenorth.engagement.services import health
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import CheckInStatus, EndorsementKind, Goal, GoalStatus, WorkItem

ENDORSED_SINCE = 3
LINKED_SINCE = 2


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    """Nothing is added when the organisation has saved assessments already."""
    if HealthAssessment.objects.filter(organisation=org).exists():
        return
    now = timezone.now()
    owner_m = Membership.objects.select_related("organisation").get(organisation=org, user=users[owner])
    member_m = Membership.objects.select_related("organisation").get(organisation=org, user=users[member])
    health.save_assessment(owner_m, users[owner], now=now - dt.timedelta(days=14))
    unendorsed = (
        Goal.objects.filter(organisation=org, status=GoalStatus.ACTIVE, archived_at__isnull=True)
        .exclude(endorsements__kind=EndorsementKind.ENDORSE, endorsements__resolved_at__isnull=True)
        .order_by("pk")
    )
    for goal in unendorsed[:ENDORSED_SINCE]:
        strategy.endorse(member_m, users[member], goal.pk, note="Read it with the team; we are behind it.")
    orphans = WorkItem.objects.filter(organisation=org, goal__isnull=True).order_by("pk")
    for item in orphans[:LINKED_SINCE]:
        serves = (
            Goal.objects.filter(
                product_id=item.product_id, status=GoalStatus.ACTIVE, archived_at__isnull=True
            )
            .order_by("position", "pk")
            .first()
        )
        if serves is not None:
            strategy.link_work_item(owner_m, users[owner], item.pk, serves.pk)
    # Catch up on all but one late check-in: the demo keeps one overdue (its reminder, the overdue list).
    for late in strategy.overdue_checkins(owner_m, now=now)[:-1]:
        strategy.check_in(
            owner_m,
            users[owner],
            late.goal.pk,
            status=CheckInStatus.ON_TRACK,
            confidence=7,
            narrative="Caught up after the health check flagged it.",
        )
    health.save_assessment(owner_m, users[owner], now=now)
