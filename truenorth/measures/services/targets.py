"""Goal targets that take their values from a measure."""

from __future__ import annotations

from django.db import transaction

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.measures.models import Measure
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import TargetMeasure


@transaction.atomic
def link_target(membership: Membership, actor: User, target_id: int, measure_id: int | None) -> TargetMeasure:
    """Make a goal's target measure take its values from a measure (None: back to its own values)."""
    require_writer(membership)
    target = (
        TargetMeasure.objects.select_related("goal")
        .filter(pk=target_id, goal__organisation_id=membership.organisation_id)
        .first()
    )
    if target is None:
        raise NotFound("No such target measure.")
    measure = None
    if measure_id is not None:
        measure = Measure.objects.filter(pk=measure_id, organisation_id=membership.organisation_id).first()
        if measure is None:
            raise ValidationFailed("No such measure in this organisation.", field="measure")
    old = target.measure
    if old == measure:
        return target
    target.measure = measure
    target.save(update_fields=["measure"])
    record(
        membership.organisation,
        target.goal,
        actor,
        HistoryEntry.Action.UPDATED,
        {
            f"target {target.name}: measure": {
                "old": str(old) if old else None,
                "new": str(measure) if measure else None,
            }
        },
    )
    return target
