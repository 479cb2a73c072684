"""The EBM catalogue of example measures each organisation starts with."""

from __future__ import annotations

from django.db.models import QuerySet

from truenorth.measures.catalogue import CATALOGUE
from truenorth.measures.models import CatalogueMeasure
from truenorth.orgs.models import Membership, Organisation


def seed_catalogue(organisation: Organisation) -> int:
    """Give the organisation every EBM example measure it lacks (by key); returns how many were added."""
    have = set(CatalogueMeasure.objects.filter(organisation=organisation).values_list("key", flat=True))
    missing = [
        CatalogueMeasure(
            organisation=organisation,
            key=e.key,
            name=e.name,
            kva=e.kva,
            description=e.description,
            unit=e.unit,
            direction=e.direction,
        )
        for e in CATALOGUE
        if e.key not in have
    ]
    if missing:
        CatalogueMeasure.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def catalogue_of(membership: Membership) -> QuerySet[CatalogueMeasure]:
    return CatalogueMeasure.objects.filter(organisation_id=membership.organisation_id).order_by(
        "kva", "name", "id"
    )
