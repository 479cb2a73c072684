"""The demo's activity and health parts: a feed token for the owner, two saved assessments whose trend
shows; safe to load twice."""

from __future__ import annotations

import pytest

from truenorth.demo import DEMO_ORG, OWNER, load_demo
from truenorth.engagement.models import FeedToken, HealthAssessment
from truenorth.engagement.services import health
from truenorth.orgs.models import Membership

pytestmark = pytest.mark.django_db


def test_demo_activity_and_health() -> None:
    load_demo()
    load_demo()  # twice: nothing doubled
    membership = Membership.objects.select_related("organisation").get(
        organisation__slug=DEMO_ORG[1], user__email=OWNER
    )
    assert (
        FeedToken.objects.filter(organisation=membership.organisation, revoked_at__isnull=True).count() == 1
    )
    older, newer = HealthAssessment.objects.filter(organisation=membership.organisation).order_by(
        "created_at"
    )
    assert (newer.created_at - older.created_at).days == 14
    assert newer.scores["overall"] > older.scores["overall"]
    check = health.current(membership)
    assert check.previous == newer and check.scores["overall"] is not None
    assert len(check.next_steps) == 3
