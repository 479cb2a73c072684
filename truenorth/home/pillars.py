"""The organisation dashboard's Value, Validation and Engagement cards: the real state of each pillar, read
in a fixed number of queries whatever the number of products, measures or hypotheses
(tests/test_query_counts.py).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from truenorth.engagement.models import HealthAssessment
from truenorth.engagement.services import health as engagement_health
from truenorth.engagement.services import pulses as engagement_pulses
from truenorth.engagement.services import stakeholders as engagement_stakeholders
from truenorth.hypotheses.models import Decision, Experiment, ExperimentState, Hypothesis, HypothesisState
from truenorth.measures import maths
from truenorth.measures.models import Measure, Observation
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Product


@dataclass
class ValueCard:
    total: int = 0
    stale: int = 0
    organisation_wide: int = 0
    by_product: list[tuple[Product, int]] = field(default_factory=list)
    latest: Observation | None = None


@dataclass
class ValidationCard:
    total: int = 0
    by_state: list[tuple[str, int]] = field(default_factory=list)
    running: int = 0
    by_product: list[tuple[Product, int, int]] = field(default_factory=list)  # product, hypotheses, running
    latest: Decision | None = None


@dataclass
class EngagementCard:
    alignment_index: int | None = None  # 0-100, rounded
    alignment_trend: int | None = None  # points since the previous pulse round
    alignment_hidden: bool = False  # too few answers to show
    has_pulses: bool = False
    stakeholders: int = 0
    with_gap: int = 0
    overdue_contacts: int = 0
    overdue_checkins: int = 0
    health: HealthAssessment | None = None


def value_card(
    membership: Membership, products: Sequence[Product], now: dt.datetime | None = None
) -> ValueCard:
    """Live measures per product, how many are stale, and the latest value recorded (2 queries)."""
    now = now or timezone.now()
    org_id = membership.organisation_id
    rows = (
        Measure.objects.filter(organisation_id=org_id, archived_at__isnull=True)
        .annotate(last=Max("observations__observed_at", filter=Q(observations__superseded=False)))
        .values_list("product_id", "cadence_days", "last")
    )
    per_product: Counter[int | None] = Counter()
    card = ValueCard()
    for product_id, cadence, last in rows:
        per_product[product_id] += 1
        card.total += 1
        card.stale += maths.is_stale(last, cadence, now)
    card.organisation_wide = per_product[None]
    card.by_product = [(p, per_product[p.pk]) for p in products if per_product[p.pk]]
    card.latest = (
        Observation.objects.filter(
            measure__organisation_id=org_id, measure__archived_at__isnull=True, superseded=False
        )
        .select_related("measure")
        .order_by("-observed_at", "-id")
        .first()
    )
    return card


def validation_card(membership: Membership, products: Sequence[Product]) -> ValidationCard:
    """Hypotheses by state and product, running experiments, and the latest decision (3 queries)."""
    org_id = membership.organisation_id
    counts: dict[int, int] = defaultdict(int)
    states: Counter[str] = Counter()
    for product_id, state, n in (
        Hypothesis.objects.filter(organisation_id=org_id)
        .order_by()
        .values_list("product_id", "state")
        .annotate(n=Count("id"))
    ):
        counts[product_id] += n
        states[state] += n
    running: dict[int, int] = dict(
        Experiment.objects.filter(hypothesis__organisation_id=org_id, state=ExperimentState.RUNNING)
        .order_by()
        .values_list("hypothesis__product_id")
        .annotate(n=Count("id"))
        .values_list("hypothesis__product_id", "n")
    )
    card = ValidationCard(
        total=sum(states.values()),
        by_state=[(label, states[value]) for value, label in HypothesisState.choices if states[value]],
        running=sum(running.values()),
        by_product=[(p, counts[p.pk], running.get(p.pk, 0)) for p in products if counts[p.pk]],
    )
    card.latest = (
        Decision.objects.filter(hypothesis__organisation_id=org_id)
        .select_related("hypothesis")
        .order_by("-decided_at", "-id")
        .first()
    )
    return card


def engagement_card(membership: Membership, overdue_checkins: int) -> EngagementCard:
    """The alignment index and its trend, stakeholders with gaps or overdue for contact, the organisation's
    overdue check-ins (counted by the caller) and the last saved health check (a fixed number of queries:
    the pulses' and stakeholders' summaries, and the latest assessment)."""
    card = EngagementCard(overdue_checkins=overdue_checkins)
    alignment = engagement_pulses.organisation_alignment(membership)
    if alignment is not None:
        card.has_pulses = True
        card.alignment_hidden = alignment.hidden or alignment.index is None
        if not card.alignment_hidden and alignment.index is not None:
            card.alignment_index = round(alignment.index)
            if alignment.previous_index is not None:
                card.alignment_trend = round(alignment.index - alignment.previous_index)
    summary = engagement_stakeholders.stakeholder_summary(membership)
    card.stakeholders, card.with_gap, card.overdue_contacts = summary.total, summary.with_gap, summary.overdue
    card.health = engagement_health.latest_assessment(membership)
    return card


def cards(membership: Membership, products: Sequence[Product], overdue_checkins: int = 0) -> dict[str, Any]:
    return {
        "value": value_card(membership, products),
        "validation": validation_card(membership, products),
        "engagement": engagement_card(membership, overdue_checkins),
    }
