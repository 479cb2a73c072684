"""The Value pillar's side of ``truenorth.strategy.value_port``: what the Vision pillar may ask of
measures (registered by ``MeasuresConfig.ready()``), so strategy never imports this app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Max, Q, QuerySet, Subquery

from truenorth.accounts.models import User
from truenorth.measures import services as measures
from truenorth.measures.maths import is_stale
from truenorth.measures.models import Measure, Observation
from truenorth.orgs.models import Membership


class MeasuresForVision:
    """Implements strategy.value_port.ValuePort."""

    def trackable_measures(self, organisation_id: int, product_id: int | None) -> QuerySet[Measure]:
        qs = Measure.objects.filter(organisation_id=organisation_id, archived_at__isnull=True)
        scope = (
            Q(product__isnull=True)
            if product_id is None
            else Q(product__isnull=True) | Q(product_id=product_id)
        )
        return qs.filter(scope).select_related("product").order_by("product_id", "name", "id")

    def measure_of(self, organisation_id: int, measure_id: int) -> Measure | None:
        return Measure.objects.filter(pk=measure_id, organisation_id=organisation_id).first()

    def measure_id_named(self, organisation_id: int, name: str, product: str | None) -> int | None:
        qs = Measure.objects.filter(organisation_id=organisation_id, name=name)
        qs = qs.filter(product__isnull=True) if product is None else qs.filter(product__name=product)
        return qs.order_by("id").values_list("pk", flat=True).first()

    def latest_value(self, measure_ref: Any) -> Subquery[Any]:
        measured = Observation.objects.filter(measure=measure_ref, superseded=False).order_by(
            "-observed_at", "-id"
        )
        return Subquery(measured.values("value")[:1])

    def stale_measure_ids(self, measure_ids: Iterable[int], now: dt.datetime) -> set[int]:
        # An archived measure takes no new observation, so it counts as stale as well.
        rows = (
            Measure.objects.filter(pk__in=list(measure_ids))
            .annotate(last=Max("observations__observed_at", filter=Q(observations__superseded=False)))
            .values_list("pk", "cadence_days", "last", "archived_at")
        )
        return {
            pk
            for pk, cadence, last, archived_at in rows
            if archived_at is not None or is_stale(last, cadence, now)
        }

    def record_value(
        self,
        membership: Membership,
        actor: User,
        measure_id: int,
        value: Any,
        *,
        note: str,
        idempotency_key: str,
    ) -> Observation:
        return measures.add_observation(
            membership, actor, measure_id, value, note=note, idempotency_key=idempotency_key
        )
