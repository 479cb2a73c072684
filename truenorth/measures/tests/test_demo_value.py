"""The Value demo: Trail App measured across all four Key Value Areas for a year, loaded idempotently."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Max, Min
from django.utils import timezone

from truenorth.demo import load_demo
from truenorth.measures import services
from truenorth.measures.models import KVA, Investment, Measure, Observation
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Product


@pytest.mark.django_db
def test_the_demo_product_has_a_year_of_evidence_in_every_key_value_area():
    load_demo()
    counts = (Measure.objects.count(), Observation.objects.count(), Investment.objects.count())
    load_demo()
    assert (Measure.objects.count(), Observation.objects.count(), Investment.objects.count()) == counts

    product = Product.objects.get(organisation__slug="acme", name="Trail App")
    measures = Measure.objects.filter(product=product)
    assert {m.kva for m in measures} == set(KVA.values)
    membership = Membership.objects.filter(organisation=product.organisation, role="owner").first()
    assert membership is not None
    assert services.missing_kvas(membership, product.pk) == []
    now = timezone.now()
    for measure in measures:
        span = Observation.objects.filter(measure=measure).aggregate(
            first=Min("observed_at"), last=Max("observed_at")
        )
        assert now - span["first"] >= dt.timedelta(days=365), measure.name
    stale = {m.name for m in services.stale_measures(membership)}
    assert stale == {"Mean time to repair"}
    assert Observation.objects.filter(superseded=True).count() == 1
    assert services.value_measure_of(membership, product.pk) is not None
