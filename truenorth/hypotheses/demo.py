"""Validation demo for Trail App: hypotheses in every lifecycle state linked to its goals, an A/B
experiment with variations and metrics, and concluded hypotheses with decisions and learnings.

Everything goes through the services (so history is written); only decision dates are moved into the
past afterwards so they show on the measure charts. Safe to run twice: it does nothing when Trail App
already has hypotheses.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.evidence import synthetic
from truenorth.hypotheses import results, services
from truenorth.hypotheses.models import Decision, Hypothesis
from truenorth.measures import sources
from truenorth.measures.models import DataSource, Measure
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import Goal, Product


def load_validation_demo(
    org: Organisation, users: dict[str, User], owner_email: str, member_email: str
) -> None:
    product = Product.objects.filter(organisation=org, name="Trail App").first()
    if product is None or Hypothesis.objects.filter(product=product).exists():
        return
    member = users[member_email]
    m = Membership.objects.get(organisation=org, user=member)
    goals = {g.title: g.pk for g in Goal.objects.filter(product=product)}
    measures = {x.name: x.pk for x in Measure.objects.filter(organisation=org)}
    today = timezone.localdate()

    def goal(prefix: str) -> int | None:
        return next((pk for title, pk in goals.items() if title.startswith(prefix)), None)

    def create(title: str, **fields: Any) -> Hypothesis:
        return services.create_hypothesis(m, member, product.pk, title=title, owner_id=member.pk, **fields)

    planners = measures.get("Weekly active planners")
    # Draft, without a success signal: the lint asks "How will we measure its success?".
    create(
        "Route hints for junctions without signal",
        goal_id=goal("Hikers trust our routes"),
        capability="spoken turn hints cached with the route",
        who="hikers walking in valleys",
        outcome="fewer wrong turns when the phone has no signal",
        impact=6,
        confidence=4,
        ease=5,
    )
    create(
        "Trip templates for first-time hikers",
        goal_id=goal("Hikers plan every weekend trip"),
        capability="ready-made weekend trip templates",
        who="hikers planning their first trip",
        outcome="more first trips planned in the app",
        measure_id=planners,
        baseline=1200,
        target=1500,
        by_date=today + dt.timedelta(days=120),
        impact=7,
        confidence=5,
        ease=8,
        reach=900,
        effort=3,
        cost_of_delay=4000,
        duration_weeks=3,
        business_value=8,
        time_criticality=3,
        risk_reduction=2,
        job_size=3,
    )
    ready = create(
        "A download reminder on Friday evening",
        goal_id=goal("Download a whole region"),
        capability="a push reminder to download Saturday's maps",
        who="hikers with a trip planned for the weekend",
        outcome="more trips started with the maps already on the phone",
        metric_name="Trips started with offline maps (%)",
        baseline=38,
        target=50,
        by_date=today + dt.timedelta(days=60),
        impact=6,
        confidence=6,
        ease=9,
        reach=2000,
        effort=1,
        cost_of_delay=2500,
        duration_weeks=1,
        business_value=5,
        time_criticality=8,
        risk_reduction=3,
        job_size=1,
    )
    services.move_hypothesis(m, member, ready.pk, "ready")

    # Testing: an A/B test with two variations, a primary, a secondary and a guardrail metric.
    ab = create(
        "One-tap region download on the trip screen",
        goal_id=goal("Download a whole region"),
        capability="a one-tap 'download this region' button on the trip screen",
        who="hikers who planned a trip",
        outcome="more hikers with the maps on their phone before they leave",
        metric_name="Region download rate (%)",
        baseline=22,
        target=30,
        by_date=today + dt.timedelta(days=30),
        impact=8,
        confidence=7,
        ease=6,
        reach=5000,
        effort=2,
        cost_of_delay=6000,
        duration_weeks=2,
        business_value=8,
        time_criticality=5,
        risk_reduction=5,
        job_size=2,
    )
    services.move_hypothesis(m, member, ab.pk, "ready")
    trip_test = services.create_experiment(
        m,
        member,
        ab.pk,
        name="Trip screen download button",
        kind="ab",
        state="running",
        variations=[{"name": "control", "allocation": 0.5}, {"name": "one_tap", "allocation": 0.5}],
        metrics=[
            {"role": "primary", "name": "Region download rate"},
            {"role": "secondary", "name": "Regions downloaded per hiker"},
            {"role": "guardrail", "name": "Map views per hiker"},
        ],
        minimum_detectable_effect=0.05,
        alpha=0.05,
        power=0.8,
        planned_sample_size=12000,
        start_date=today - dt.timedelta(days=10),
        stop_date=today + dt.timedelta(days=18),
    )
    services.move_hypothesis(m, member, ab.pk, "testing")
    load_ab_evidence(org, users[owner_email], member, trip_test.pk)

    # Testing: qualitative usability sessions.
    poll = create(
        "Friends agree on a date faster with a poll",
        goal_id=goal("Friends vote on the trip date"),
        capability="a date poll inside the group trip",
        who="groups of friends planning a trip",
        outcome="a date agreed within a day",
        metric_name="Groups agreeing on a date within 24 h (of 8 sessions)",
        baseline=2,
        target=6,
        impact=5,
        confidence=4,
        ease=4,
    )
    services.move_hypothesis(m, member, poll.pk, "ready")
    services.create_experiment(
        m,
        member,
        poll.pk,
        name="Eight usability sessions with hiking groups",
        kind="qualitative",
        state="running",
        metrics=[{"role": "primary", "name": "Groups agreeing within 24 h"}],
    )
    services.move_hypothesis(m, member, poll.pk, "testing")

    # Concluded: a before/after comparison with its result snapshot, validated.
    fast = create(
        "Cached tiles make offline maps open fast",
        goal_id=goal("Offline maps open in under two seconds"),
        capability="caching the map tiles of planned routes on the device",
        who="hikers opening maps offline",
        outcome="maps that open before the hiker starts to doubt the app",
        measure_id=planners,
        baseline=1100,
        target=1300,
        by_date=today - dt.timedelta(days=7),
    )
    services.move_hypothesis(m, member, fast.pk, "ready")
    experiment = services.create_experiment(
        m,
        member,
        fast.pk,
        name="Map open time before and after the tile cache",
        kind="before_after",
        state="stopped",
        metrics=[{"role": "primary", "name": "Median offline map open time (s)"}],
        start_date=today - dt.timedelta(days=42),
        stop_date=today - dt.timedelta(days=14),
    )
    services.move_hypothesis(m, member, fast.pk, "testing")
    before, after = {"n": 4120, "mean": 3.4}, {"n": 4380, "mean": 1.9}
    services.import_snapshot(
        m,
        member,
        experiment.pk,
        source="the app's performance dashboard",
        note="Median open times before and after the tile cache, copied from the dashboard.",
        method="Before/after difference in means (observational, not randomised)",
        inputs={"metric": "Median offline map open time (s)", "before": before, "after": after},
        results={"difference": round(after["mean"] - before["mean"], 2), "relative": round(1.9 / 3.4 - 1, 3)},
        query="-- entered from the app's performance dashboard",
    )
    services.conclude(
        m,
        member,
        fast.pk,
        outcome="validated",
        decision="persevere",
        observed="Offline maps opened in 1.9 s on average after the tile cache, down from 3.4 s.",
        learning="Speed at a junction matters more to hikers than map detail: reviews praising speed doubled.",
        next_step="Cache vector maps next and keep the two-second budget in every release check.",
    )

    # Concluded: a qualitative test that invalidated the idea, and a pivot.
    share = create(
        "A route preview image makes shared links open",
        goal_id=goal("Share a route with friends"),
        capability="a preview image of the route in shared links",
        who="friends receiving a route in a chat",
        outcome="more shared routes opened",
        metric_name="Shared links opened (%)",
        baseline=35,
        target=50,
    )
    services.move_hypothesis(m, member, share.pk, "ready")
    services.create_experiment(
        m,
        member,
        share.pk,
        name="Six interviews with hikers who share routes",
        kind="qualitative",
        state="stopped",
        metrics=[{"role": "primary", "name": "Interviewees who would open the link"}],
    )
    services.move_hypothesis(m, member, share.pk, "testing")
    services.conclude(
        m,
        member,
        share.pk,
        outcome="invalidated",
        decision="pivot",
        observed="Five of six interviewees ignored the image and asked for the date and meeting point.",
        learning="Friends open a shared route for the plan (date, meeting point), not for the map picture.",
        next_step="Put the date and meeting point in the link preview instead of the map image.",
    )
    # The decisions were taken a few weeks ago, so they sit among the measure's observations.
    now = timezone.now()
    for weeks, hypothesis in ((2, fast), (4, share)):
        Decision.objects.filter(hypothesis=hypothesis).update(decided_at=now - dt.timedelta(weeks=weeks))


DEMO_UNITS = 20_000
DEMO_FILE = "demo-trail-app-events.duckdb"
# The synthetic events are "page_view" and "purchase"; in the demo a purchase stands for a region download.
DEMO_DEFINITIONS: list[dict[str, Any]] = [
    {
        "name": "region_download_rate",
        "aggregation": "proportion",
        "events": ["purchase"],
        "window_days": 7,
        "covariate_days": 14,
        "description": "Hikers who downloaded a region within 7 days of seeing the trip screen.",
    },
    {
        "name": "regions_downloaded_per_hiker",
        "aggregation": "count",
        "events": ["purchase"],
        "window_days": 7,
        "description": "Region downloads per hiker within 7 days.",
    },
    {
        "name": "map_views_per_hiker",
        "aggregation": "count",
        "events": ["page_view"],
        "window_days": 14,
        "covariate_days": 14,
        "description": "Map views per hiker within 14 days (must not fall).",
    },
]


def demo_events_file(org: Organisation) -> Path | None:
    """The demo's DuckDB file of raw events (≈20,000 hikers, +3 % planted on the download rate), written
    once into the demo organisation's own DuckDB directory (`sources.organisation_directory`); None when
    no directory is configured."""
    if not settings.TRUENORTH_DUCKDB_DIRS:
        return None
    directory = sources.organisation_directory(org)
    path = directory / DEMO_FILE
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".{DEMO_FILE}.{os.getpid()}.tmp"
        results.write_duckdb(partial, DEMO_UNITS, seed=11, treatment="one_tap")
        os.replace(partial, path)
    return path


def load_ab_evidence(org: Organisation, owner: User, member: User, experiment_id: int) -> None:
    """A DuckDB data source with the A/B test's raw events, attached to it, and one computed snapshot."""
    path = demo_events_file(org)
    if path is None:
        return
    owner_m = Membership.objects.get(organisation=org, user=owner)
    member_m = Membership.objects.get(organisation=org, user=member)
    source = DataSource.objects.filter(organisation=org, name="Trail App events (DuckDB)").first()
    if source is None:
        source = sources.create_data_source(
            owner_m, owner, name="Trail App events (DuckDB)", kind="duckdb", config={"path": str(path)}
        )
    results.configure_evidence(  # evidence settings hold SQL: an admin's (here the owner's) to set
        owner_m,
        owner,
        experiment_id,
        data_source_id=source.pk,
        evidence_key=synthetic.EXPERIMENT,
        metric_definitions=DEMO_DEFINITIONS,
    )
    results.compute_results(member_m, member, experiment_id)
