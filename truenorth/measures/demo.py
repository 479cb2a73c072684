"""Value demo: Trail App measured in all four Key Value Areas over the past year, with investment.

Loaded by `truenorth demo` after the Vision demo; every write goes through the services (history and
validation apply), and each series is one idempotent batch, so loading twice adds nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.measures import services
from truenorth.measures.models import KVA, Measure, MeasureDirection
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import Goal, Product

WEEKS = 56  # a year and a season of history


@dataclass(frozen=True)
class DemoSeries:
    name: str
    kva: str
    unit: str
    direction: str
    cadence_days: int
    start: float  # a year ago
    end: float  # now
    noise: float  # relative
    baseline: float
    target: float
    description: str
    catalogue_key: str = ""
    stale_weeks: int = 0  # how many of the latest periods are missing (to show stale evidence)


SERIES = (
    DemoSeries(
        "Customer satisfaction (NPS)",
        KVA.CURRENT_VALUE,
        "NPS",
        MeasureDirection.HIGHER,
        7,
        24,
        38,
        0.04,
        24,
        45,
        "Net Promoter Score from the in-app survey after a completed hike (rolling 4 weeks).",
    ),
    DemoSeries(
        "Weekly active planners",
        KVA.CURRENT_VALUE,
        "hikers",
        MeasureDirection.HIGHER,
        7,
        4200,
        6900,
        0.05,
        4200,
        8500,
        "Distinct hikers who saved or edited a trip plan in the week.",
    ),
    DemoSeries(
        "Revenue per employee",
        KVA.CURRENT_VALUE,
        "k€",
        MeasureDirection.HIGHER,
        30,
        96,
        118,
        0.02,
        96,
        130,
        "Subscription revenue of the quarter divided by the product's full-time staff, annualised.",
    ),
    DemoSeries(
        "Market share of hiking planners",
        KVA.UNREALIZED_VALUE,
        "%",
        MeasureDirection.HIGHER,
        30,
        3.1,
        4.2,
        0.03,
        3.1,
        8.0,
        "Our share of monthly active users among hiking-planner apps (market panel).",
    ),
    DemoSeries(
        "Satisfaction gap",
        KVA.UNREALIZED_VALUE,
        "points",
        MeasureDirection.LOWER,
        30,
        31,
        22,
        0.04,
        31,
        10,
        "Importance minus satisfaction for the top five jobs hikers hire us for (quarterly survey).",
    ),
    DemoSeries(
        "Release frequency",
        KVA.TIME_TO_MARKET,
        "releases/month",
        MeasureDirection.HIGHER,
        30,
        2,
        7,
        0.1,
        2,
        12,
        "Production releases of the app and its services per month.",
    ),
    DemoSeries(
        "Lead time for changes",
        KVA.TIME_TO_MARKET,
        "days",
        MeasureDirection.LOWER,
        7,
        12.5,
        4.2,
        0.08,
        12.5,
        2,
        "Median days from first commit to running in production.",
    ),
    DemoSeries(
        "Mean time to repair",
        KVA.TIME_TO_MARKET,
        "hours",
        MeasureDirection.LOWER,
        30,
        9.5,
        3.8,
        0.12,
        9.5,
        2,
        "Mean hours from an incident being detected to service restored.",
        stale_weeks=3,
    ),
    DemoSeries(
        "Innovation rate",
        KVA.ABILITY_TO_INNOVATE,
        "% of effort",
        MeasureDirection.HIGHER,
        30,
        34,
        51,
        0.04,
        34,
        60,
        "Share of the team's effort spent on new capabilities rather than upkeep.",
    ),
    DemoSeries(
        "Change failure rate",
        KVA.ABILITY_TO_INNOVATE,
        "%",
        MeasureDirection.LOWER,
        7,
        18,
        9,
        0.1,
        18,
        5,
        "Share of production changes that led to a rollback, hotfix or incident.",
    ),
)
VALUE_MEASURE = "Revenue per employee"
GOAL_MEASURE = ("Hikers plan every weekend trip in Trail App", "Weekly active planners")


def _series(spec: DemoSeries, now: dt.datetime) -> list[tuple[dt.datetime, float]]:
    """An S-shaped improvement from start to end with seasonal wobble and noise (deterministic)."""
    rng = random.Random(spec.name)  # noqa: S311 - demo noise, not security
    step = dt.timedelta(days=spec.cadence_days)
    count = math.ceil(WEEKS * 7 / spec.cadence_days) + 1
    points = []
    for i in range(count - spec.stale_weeks):
        share = i / (count - 1)
        shape = 1 / (1 + math.exp(-8 * (share - 0.5)))
        season = 1 + 0.03 * math.sin(2 * math.pi * share)
        value = (spec.start + (spec.end - spec.start) * shape) * season
        value *= 1 + rng.gauss(0, spec.noise)
        when = now - step * (count - 1 - i) - dt.timedelta(days=2, hours=3)
        points.append((when, round(value, 2)))
    return points


def load_value_demo(org: Organisation, users: dict[str, User], owner_email: str, member_email: str) -> None:
    product = Product.objects.filter(organisation=org, name="Trail App").first()
    if product is None or Measure.objects.filter(product=product).exists():
        return
    owner = users[owner_email]
    m = Membership.objects.get(organisation=org, user=owner)
    now = timezone.now()
    measures: dict[str, Measure] = {}
    for spec in SERIES:
        measure = services.create_measure(
            m,
            owner,
            name=spec.name,
            kva=spec.kva,
            product_id=product.pk,
            unit=spec.unit,
            direction=spec.direction,
            owner_id=users[member_email].pk,
            cadence_days=spec.cadence_days,
            description=spec.description,
            baseline=spec.baseline,
            target=spec.target,
            target_date=(now + dt.timedelta(days=270)).date(),
        )
        rows = [services.ObservationIn(measure.pk, value, when) for when, value in _series(spec, now)]
        services.add_observations(m, owner, rows, source="file", idempotency_key=f"demo:{measure.pk}")
        measures[spec.name] = measure
    # A correction, so the measure page shows a superseded value.
    latest = services.observations_of(m, measures["Customer satisfaction (NPS)"].pk).first()
    if latest is not None:
        services.correct_observation(
            m, owner, latest.pk, latest.value + 1, note="Survey late responses counted"
        )
    services.set_value_measure(m, owner, product.pk, measures[VALUE_MEASURE].pk)
    # Investment: the team (6 people at 650 a day) every quarter of the past year.
    today = now.date()
    for quarter in range(4, 0, -1):
        start = today - dt.timedelta(days=91 * quarter)
        services.add_investment(
            m,
            owner,
            product.pk,
            period_start=start,
            period_end=start + dt.timedelta(days=90),
            people=6 if quarter > 2 else 7,
            daily_rate=650,
            note="Trail Team",
        )
    # The strategic goal's target measure now takes its values from the Value pillar's measure.
    goal = Goal.objects.filter(organisation=org, title=GOAL_MEASURE[0]).first()
    target = goal.targets.first() if goal else None
    if target is not None:
        services.link_target(m, owner, target.pk, measures[GOAL_MEASURE[1]].pk)
