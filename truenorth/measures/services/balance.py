"""Staleness (a measure past its cadence) and the balance of Key Value Areas."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from truenorth.measures import maths
from truenorth.measures.models import KVA, Measure, Observation
from truenorth.measures.services._common import _get_product
from truenorth.measures.services.measures import measures_of
from truenorth.orgs.models import Membership


def with_last_observed(qs: QuerySet[Measure]) -> QuerySet[Measure]:
    """Annotate `last_observed_at`: the time of each measure's latest current observation (one query)."""
    return qs.annotate(
        last_observed_at=Max("observations__observed_at", filter=Q(observations__superseded=False))
    )


def with_latest(qs: QuerySet[Measure]) -> QuerySet[Measure]:
    """Annotate each measure's latest current observation (value and time) in the same query."""
    current = Observation.objects.filter(measure=OuterRef("pk"), superseded=False).order_by(
        "-observed_at", "-id"
    )
    return qs.annotate(
        latest_value=Subquery(current.values("value")[:1]),
        latest_at=Subquery(current.values("observed_at")[:1]),
    )


def stale_measures(
    membership: Membership, *, now: dt.datetime | None = None, product_id: int | None = None
) -> list[Measure]:
    """Live measures whose last observation is older than their cadence (or that have none)."""
    now = now or timezone.now()
    qs = with_last_observed(measures_of(membership, product_id=product_id))
    return [m for m in qs if maths.is_stale(getattr(m, "last_observed_at", None), m.cadence_days, now)]


def kva_balance(membership: Membership, product_id: int) -> dict[str, int]:
    """Live measures of the product per Key Value Area (every area present, 0 when empty)."""
    _get_product(membership, product_id)
    counts = dict(
        Measure.objects.filter(
            organisation_id=membership.organisation_id, product_id=product_id, archived_at__isnull=True
        )
        .values_list("kva")
        .annotate(n=Count("id"))
        .values_list("kva", "n")
    )
    return {kva: counts.get(kva, 0) for kva in KVA.values}


def missing_kvas(membership: Membership, product_id: int) -> list[str]:
    """The Key Value Areas the product has no live measure in (EBM looks at all four together)."""
    return [kva for kva, n in kva_balance(membership, product_id).items() if n == 0]
