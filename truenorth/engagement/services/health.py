"""Alignment health check: gathers the facts the rules read (engagement/healthrules.py, a pure core)
from every pillar in a fixed number of queries, turns the next steps' places into links, and saves
assessments (append-only) so the page can show the trend since the last one.

Queries, whatever the organisation's size: products, goals (with target / endorsement / concern flags),
overdue check-ins, measures (with their last value), work items, concluded hypotheses, experiments with
their latest computed result id, those results; plus what the alignment summary (pulses) and the
stakeholder summary read.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.engagement import healthrules as rules
from truenorth.engagement.models import HealthAssessment
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.hypotheses.models import Experiment, Hypothesis, HypothesisState, ResultSnapshot
from truenorth.measures import maths
from truenorth.measures import services as measures
from truenorth.measures.models import KVA
from truenorth.orgs.models import ROLE_RANK, Membership, Role
from truenorth.orgs.services import require_writer
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Endorsement, EndorsementKind, Goal, GoalStatus, TargetMeasure, WorkItem

log = logging.getLogger(__name__)

# An experiment's result is trustworthy when the sample-ratio check passed and the sample is enough:
# at least its planned sample size (total units), or without a plan at least this many units per variation.
MIN_UNITS_PER_VARIATION = 100
HISTORY_LIMIT = 20


def _alignment_index(membership: Membership) -> float | None:
    """The organisation's alignment index (pulses part), None when there is none to show."""
    try:
        pulses = importlib.import_module("truenorth.engagement.services.pulses")
    except ImportError:  # pragma: no cover - the pulses part is not there yet
        return None
    summary = pulses.organisation_alignment(membership)
    if summary is None or getattr(summary, "hidden", False):
        return None
    index = getattr(summary, "index", None)
    return None if index is None else float(index)


def _stakeholders(membership: Membership) -> tuple[int, int, int]:
    """(total, with an engagement gap, overdue for contact) from the stakeholders part."""
    try:
        from truenorth.engagement.services import stakeholders
    except ImportError:  # pragma: no cover
        return 0, 0, 0
    s = stakeholders.stakeholder_summary(membership)
    return s.total, s.with_gap, s.overdue


def _trustworthy(results: dict[str, Any], planned: int | None) -> bool:
    srm = results.get("srm") or {}
    if srm.get("p_value") is None or srm.get("mismatch"):
        return False
    units = [float(u) for u in (srm.get("units") or {}).values()]
    if len(units) < 2:
        return False
    if planned:
        return sum(units) >= planned
    return min(units) >= MIN_UNITS_PER_VARIATION


def gather_facts(membership: Membership, now: dt.datetime | None = None) -> rules.Facts:
    """The counts of one organisation the rules read (see the module docstring for the queries)."""
    now = now or timezone.now()
    org_id = membership.organisation_id
    product_ids = list(strategy.products_of(membership).prefetch_related(None).values_list("pk", flat=True))

    goals = (
        Goal.objects.filter(
            organisation_id=org_id,
            archived_at__isnull=True,
            status__in=(GoalStatus.PROPOSED, GoalStatus.ACTIVE),
        )
        .order_by()
        .annotate(
            has_target=Exists(TargetMeasure.objects.filter(goal=OuterRef("pk"))),
            endorsed=Exists(
                Endorsement.objects.filter(
                    goal=OuterRef("pk"), kind=EndorsementKind.ENDORSE, resolved_at__isnull=True
                )
            ),
            concerned=Exists(
                Endorsement.objects.filter(
                    goal=OuterRef("pk"), kind=EndorsementKind.CONCERN, resolved_at__isnull=True
                )
            ),
        )
        .values_list("status", "owner_id", "target_date", "has_target", "endorsed", "concerned")
    )
    vision = dict.fromkeys(("active", "target", "owner", "date", "endorsed", "live", "concerned"), 0)
    for status, owner_id, target_date, has_target, endorsed, concerned in goals:
        vision["live"] += 1
        vision["concerned"] += bool(concerned)
        if status == GoalStatus.ACTIVE:
            vision["active"] += 1
            vision["target"] += bool(has_target)
            vision["owner"] += owner_id is not None
            vision["date"] += target_date is not None
            vision["endorsed"] += bool(endorsed)
    overdue = len(strategy.overdue_checkins(membership, now=now))

    fresh_cells: set[tuple[int | None, str]] = set()
    measure_count = stale = 0
    live = measures.measures_of(membership).select_related(None).only("product_id", "kva", "cadence_days")
    for m in measures.with_last_observed(live):
        measure_count += 1
        if maths.is_stale(getattr(m, "last_observed_at", None), m.cadence_days, now):
            stale += 1
        else:
            fresh_cells.add((m.product_id, m.kva))
    kvas = list(KVA.values)
    units: list[int | None] = list(product_ids) or ([None] if measure_count else [])
    cells = len(units) * len(kvas)
    fresh = sum(1 for u in units for k in kvas if (u, k) in fresh_cells or (None, k) in fresh_cells)

    work = WorkItem.objects.filter(organisation_id=org_id, product__archived_at__isnull=True).aggregate(
        total=Count("id"), linked=Count("id", filter=Q(goal__isnull=False))
    )
    concluded = (
        Hypothesis.objects.filter(organisation_id=org_id, state=HypothesisState.CONCLUDED)
        .order_by()
        .aggregate(total=Count("id", distinct=True), decided=Count("decisions__hypothesis_id", distinct=True))
    )
    latest = ResultSnapshot.objects.filter(
        experiment=OuterRef("pk"), kind=ResultSnapshot.Kind.COMPUTED
    ).order_by("-computed_at", "-id")
    experiments = [
        (snapshot_id, planned)
        for snapshot_id, planned in Experiment.objects.filter(hypothesis__organisation_id=org_id)
        .order_by()
        .annotate(latest=Subquery(latest.values("pk")[:1]))
        .values_list("latest", "planned_sample_size")
        if snapshot_id is not None
    ]
    results = (
        dict(ResultSnapshot.objects.filter(pk__in=[s for s, _ in experiments]).values_list("pk", "results"))
        if experiments
        else {}
    )
    trustworthy = sum(1 for s, planned in experiments if _trustworthy(results.get(s) or {}, planned))

    total, with_gap, overdue_contacts = _stakeholders(membership)
    return rules.Facts(
        active_goals=vision["active"],
        goals_with_target=vision["target"],
        goals_with_owner=vision["owner"],
        goals_with_date=vision["date"],
        goals_endorsed=vision["endorsed"],
        live_goals=vision["live"],
        goals_with_open_concerns=vision["concerned"],
        kva_cells=cells,
        kva_cells_fresh=fresh,
        measures=measure_count,
        stale_measures=stale,
        work_items=work["total"],
        work_items_linked=work["linked"],
        concluded_hypotheses=concluded["total"],
        concluded_with_decision=concluded["decided"],
        judged_experiments=len(experiments),
        trustworthy_experiments=trustworthy,
        alignment_index=_alignment_index(membership),
        stakeholders=total,
        stakeholders_with_gap=with_gap,
        stakeholders_overdue=overdue_contacts,
        overdue_checkins=overdue,
    )


def _reverse(name: str, slug: str, **kwargs: Any) -> str | None:
    try:
        return reverse(name, kwargs={"org_slug": slug, **kwargs})
    except NoReverseMatch:  # a part's page not built (yet)
        return None


def link_for(where: str, membership: Membership, first_product_id: int | None = None) -> str:
    """The page where a step is acted on (`where` comes from the rules)."""
    slug = membership.organisation.slug
    candidates: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "goals": [("strategy:products", {})],
        "alignment": [("strategy:alignment", {})],
        "overdue": [("strategy:overdue", {})],
        "value": [("measures:catalogue", {})],
        "work": [("strategy:products", {})],
        "hypotheses": ([("hypotheses:board", {"product_id": first_product_id})] if first_product_id else [])
        + [("strategy:products", {})],
        "pulses": [("engagement:pulses", {})],
        "stakeholders": [("engagement:stakeholders", {})],
    }
    for name, kwargs in candidates.get(where, []):
        url = _reverse(name, slug, **kwargs)
        if url:
            return url
    return _reverse("engagement:health", slug) or "/"


@dataclass
class NextStep:
    key: str
    area: str
    text: str
    gain: float
    url: str


@dataclass
class Check:
    """The health check as the page, API and CLI show it."""

    facts: rules.Facts
    assessment: rules.Assessment
    next_steps: list[NextStep]
    previous: HealthAssessment | None
    trend: dict[str, int | None] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, int | None]:
        return self.assessment.scores()

    def rules_of(self, area: str) -> list[rules.RuleResult]:
        return [r for r in self.assessment.rules if r.area == area]


def _steps(membership: Membership, assessment: rules.Assessment) -> list[NextStep]:
    first_product = (
        strategy.products_of(membership).prefetch_related(None).values_list("pk", flat=True).first()
        if any(s.where == "hypotheses" for s in assessment.next_steps)
        else None
    )
    return [
        NextStep(s.key, s.area, s.text, s.gain, link_for(s.where, membership, first_product))
        for s in assessment.next_steps
    ]


def assessments_of(membership: Membership) -> QuerySet[HealthAssessment]:
    return HealthAssessment.objects.filter(organisation_id=membership.organisation_id).order_by(
        "-created_at", "-id"
    )


def latest_assessment(membership: Membership) -> HealthAssessment | None:
    return assessments_of(membership).select_related("created_by").first()


def current(membership: Membership, now: dt.datetime | None = None) -> Check:
    """The health check computed now, with the trend since the last saved assessment."""
    facts = gather_facts(membership, now)
    assessment = rules.assess(facts)
    previous = latest_assessment(membership)
    return Check(
        facts=facts,
        assessment=assessment,
        next_steps=_steps(membership, assessment),
        previous=previous,
        trend=rules.trend(assessment.scores(), previous.scores if previous else None),
    )


def save_assessment(
    membership: Membership, actor: User | None, now: dt.datetime | None = None
) -> HealthAssessment:
    """Compute the health check and save it (members and above; the weekly job passes no actor)."""
    if actor is not None:
        require_writer(membership)
    now = now or timezone.now()
    facts = gather_facts(membership, now)
    assessment = rules.assess(facts)
    saved = HealthAssessment.objects.create(
        organisation_id=membership.organisation_id,
        created_at=now,
        created_by=actor,
        scores=assessment.scores(),
        facts=facts.to_dict(),
        next_steps=[
            {"key": s.key, "area": s.area, "text": s.text, "gain": s.gain, "url": s.url}
            for s in _steps(membership, assessment)
        ],
    )
    record(
        membership.organisation,
        saved,
        actor,
        HistoryEntry.Action.CREATED,
        {"scores": {"old": None, "new": assessment.scores()}},
    )
    return saved


def save_weekly(now: dt.datetime | None = None) -> int:
    """Save an assessment for every organisation whose last one is a week old or more (or missing), as
    its first owner sees it; the number saved."""
    now = now or timezone.now()
    week_ago = now - dt.timedelta(days=7)
    recent = HealthAssessment.objects.filter(
        organisation_id=OuterRef("organisation_id"), created_at__gt=week_ago
    )
    owners = (
        Membership.objects.filter(role=Role.OWNER)
        .annotate(recent=Exists(recent))
        .filter(recent=False)
        .select_related("organisation", "user")
        .order_by("organisation_id", "joined_at", "id")
    )
    done: set[int] = set()
    for m in owners:
        if m.organisation_id in done or ROLE_RANK[m.role] < ROLE_RANK[Role.OWNER]:
            continue
        done.add(m.organisation_id)
        try:
            save_assessment(m, None, now)
        except Exception:  # one organisation's failure must not stop the others
            log.exception("Weekly health check failed for organisation %s", m.organisation_id)
    return len(done)
