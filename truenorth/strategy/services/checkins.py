"""Check-ins: the owner's regular word on an active goal (status, confidence, optionally a new value),
and the goals whose check-in is overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, Forbidden, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import text as _text
from truenorth.core.validate import whole as _whole
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy import value_port
from truenorth.strategy.models import CheckIn, Goal
from truenorth.strategy.services._common import get_goal
from truenorth.strategy.services.targets import _get_target, record_observation


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
            measure_observation = value_port.port().record_value(
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
