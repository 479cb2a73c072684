"""The product brief: a one-page, always-current summary of a product built from live data, and the ways
it leaves the tool (read-only share links, PDFs made by a background job).

`build_brief(membership, product)` reads every pillar through its services and models, in a fixed number
of queries whatever the size of the product, and returns a `Brief` (a tree of dataclasses) that every
rendering uses: the web page, the share page, Markdown, JSON (API, CLI) and the PDF
(services/briefs_render.py). Rules (docs/engagement.md, "Product brief"):

- The goal tree: the product's live goals depth-first, down to TREE_DEPTH levels and at most TREE_ROWS
  rows (the rest is counted, not listed); each with its progress (strategy's roll-up) and its latest
  check-in (status and confidence out of 10).
- KVA measures: the product's live measures with their latest value, the change over the period
  (PERIOD_DAYS: the latest value minus the value in force when the period began or, for a series that
  begins within it, the mean of its first slice), a sparkline of the period and the target; full charts (the Value chart
  definition, measures.charts.chart_spec) for at most one measure per Key Value Area.
- Hypotheses in flight: ready or being tested. Decisions and learnings: the last PERIOD_DAYS days.
- Top risks, worst first, at most TOP_RISKS: goals off track (latest check-in off track: high; at risk,
  or confidence at most LOW_CONFIDENCE: medium), stale evidence (a measure past its cadence), open
  concerns (unresolved concerns on a live goal), overdue check-ins.
- Forecasts (delivery.services.goal_forecasts): the product's live goals with a target date, soonest
  first (at most goal_forecasts.BRIEF_MAX_GOALS), each with its delivery forecast: the chance its
  remaining work items are done by the target date, the 85% date, the verdict and the backtest, or why
  there is none.
- People appear by their display name only when they have set one: the brief never carries an e-mail
  address (it is shown to people outside the tool through share links).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import text as _text
from truenorth.delivery.services.goal_forecasts import GoalForecast, percent, product_goal_forecasts
from truenorth.engagement.models import BriefDocument, ShareLink
from truenorth.engagement.services import pulses
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses import services as validation
from truenorth.hypotheses.models import Experiment, Hypothesis
from truenorth.jobs import services as jobs
from truenorth.jobs.models import Job
from truenorth.measures.charts import Point, chart_spec
from truenorth.measures.dashboard import product_dashboard
from truenorth.measures.models import KVA, Observation
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_writer
from truenorth.strategy import services as vision
from truenorth.strategy.models import CheckIn, Endorsement, Goal, Product

PERIOD_DAYS = 90
TREE_DEPTH = 3
TREE_ROWS = 60
TOP_RISKS = 10
LOW_CONFIDENCE = 4
CHART_HEIGHT = 160

SHARE_MAX_DAYS = 90
SHARE_DEFAULT_DAYS = 30
SHARE_FIELDS = ("label", "expires_at", "revoked_at")
DOCUMENT_DAYS = 7
PDF_KIND = "engagement.briefs.pdf"


# --- the brief ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalLine:
    id: int
    title: str
    depth: int
    level: str
    level_label: str
    status: str
    status_label: str
    owner: str
    target_date: dt.date | None
    progress: float | None
    checkin_status: str | None
    checkin_status_label: str | None
    confidence: int | None
    checked_in_at: dt.datetime | None


@dataclass(frozen=True)
class MeasureLine:
    id: int
    name: str
    kva: str
    kva_label: str
    unit: str
    direction: str
    latest_value: float | None
    latest_at: dt.datetime | None
    start_value: float | None
    change: float | None
    improving: bool | None
    baseline: float | None
    target: float | None
    distance: float | None
    stale: bool
    cadence_days: int
    # Bucket means over the period (None: nothing observed then) and the polyline drawing them.
    trend: list[float | None]
    sparkline: str
    # The Vega-Lite spec (measures.charts.chart_spec) when this measure is charted in full.
    chart: dict[str, Any] | None = None

    @property
    def chart_id(self) -> str:
        """The id of the element holding its chart's spec on a page."""
        return f"brief-chart-{self.id}"


@dataclass(frozen=True)
class HypothesisLine:
    id: int
    title: str
    state: str
    state_label: str
    owner: str
    goal: str
    metric: str
    running_experiments: int


@dataclass(frozen=True)
class DecisionLine:
    id: int
    hypothesis: str
    outcome: str
    outcome_label: str
    decision: str
    decision_label: str
    learning: str
    next_step: str
    decided_at: dt.datetime
    decided_by: str


@dataclass(frozen=True)
class AlignmentLine:
    index: float | None
    clarity: float | None
    commitment: float | None
    similarity: float | None
    responses: int
    invited: int
    response_rate: float | None
    previous_index: float | None
    hidden: bool


@dataclass(frozen=True)
class Risk:
    kind: str  # off_track, stale_evidence, open_concern, overdue_checkin
    severity: int  # 3 high, 2 medium, 1 low
    title: str
    detail: str


@dataclass(frozen=True)
class ForecastLine:
    """A goal with a target date and its delivery forecast (or the reason there is none)."""

    goal_id: int
    title: str
    target_date: dt.date | None
    verdict: str  # on_track, at_risk, off_track, done, unavailable
    verdict_label: str
    probability: float | None
    remaining: int | None
    total_items: int | None
    date_85: dt.date | None
    backtest: str  # "the 85% forecast came true in 9 of 11 past 28-day windows", or ""
    reason: str

    @property
    def percent(self) -> int | None:
        """The probability in whole percent, rounded down (never 85 for an "at risk" 0.849)."""
        return percent(self.probability)


def _forecast_line(f: GoalForecast) -> ForecastLine:
    return ForecastLine(
        goal_id=f.goal_id,
        title=f.title,
        target_date=f.target_date,
        verdict=f.verdict,
        verdict_label=f.verdict_label,
        probability=None if f.probability is None else round(f.probability, 4),
        remaining=f.remaining,
        total_items=f.total_items,
        date_85=f.date_85,
        backtest=f.backtest.text if f.backtest else "",
        reason=f.reason,
    )


RISK_LABELS = {
    "off_track": "Goal off track",
    "stale_evidence": "Stale evidence",
    "open_concern": "Open concern",
    "overdue_checkin": "Overdue check-in",
}


@dataclass(frozen=True)
class Brief:
    organisation: str
    product_id: int
    product: str
    vision: str
    product_goal: str
    owner: str
    archived: bool
    generated_at: dt.datetime
    period_days: int
    progress: float | None
    goals: list[GoalLine]
    goals_total: int
    measures: list[MeasureLine]
    missing_kvas: list[str]
    hypotheses: list[HypothesisLine]
    decisions: list[DecisionLine]
    alignment: AlignmentLine | None
    risks: list[Risk]
    risks_total: int
    counts: dict[str, int] = field(default_factory=dict)
    forecasts: list[ForecastLine] = field(default_factory=list)
    forecasts_total: int = 0

    @property
    def goals_omitted(self) -> int:
        return self.goals_total - len(self.goals)

    @property
    def forecasts_omitted(self) -> int:
        return self.forecasts_total - len(self.forecasts)

    @property
    def charts(self) -> list[MeasureLine]:
        return [m for m in self.measures if m.chart is not None]


def person(user: User | None) -> str:
    """How the brief names a person: their display name when they set one, never their e-mail."""
    return (user.name or "").strip() if user is not None else ""


def _goal_lines(
    membership: Membership, product_id: int, now: dt.datetime
) -> tuple[list[GoalLine], int, list[Risk]]:
    """The tree (bounded), the number of live goals, and the off-track risks (any depth). 2 + roll-up queries."""
    latest = CheckIn.objects.filter(goal=OuterRef("pk")).order_by("-created_at", "-id")
    goals = list(
        Goal.objects.filter(
            organisation_id=membership.organisation_id, product_id=product_id, archived_at__isnull=True
        )
        .select_related("owner")
        .annotate(
            last_status=Subquery(latest.values("status")[:1]),
            last_confidence=Subquery(latest.values("confidence")[:1]),
            last_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("position", "id")
    )
    progress = vision.progress_for_org(membership.organisation_id)
    ids = {g.pk for g in goals}
    children: dict[int | None, list[Goal]] = defaultdict(list)
    for g in goals:
        children[g.parent_id if g.parent_id in ids else None].append(g)
    statuses = dict(CheckIn.Status.choices)
    lines: list[GoalLine] = []
    risks: list[Risk] = []
    stack = [(g, 0) for g in reversed(children[None])]
    while stack:
        goal, depth = stack.pop()
        p = progress.get(goal.pk)
        last_status: str | None = getattr(goal, "last_status", None)
        line = GoalLine(
            id=goal.pk,
            title=goal.title,
            depth=depth,
            level=goal.level,
            level_label=goal.get_level_display(),
            status=goal.status,
            status_label=goal.get_status_display(),
            owner=person(goal.owner),
            target_date=goal.target_date,
            progress=p.value if p else None,
            checkin_status=last_status,
            checkin_status_label=statuses.get(last_status) if last_status else None,
            confidence=getattr(goal, "last_confidence", None),
            checked_in_at=getattr(goal, "last_at", None),
        )
        if depth < TREE_DEPTH and len(lines) < TREE_ROWS:
            lines.append(line)
        risk = _off_track(line)
        if risk is not None:
            risks.append(risk)
        stack.extend((c, depth + 1) for c in reversed(children[goal.pk]))
    return lines, len(goals), risks


def _off_track(goal: GoalLine) -> Risk | None:
    if goal.status != Goal.Status.ACTIVE or goal.checkin_status is None:
        return None
    confidence = f"confidence {goal.confidence}/10" if goal.confidence is not None else ""
    said = f"{goal.checkin_status_label}, {confidence}".rstrip(", ")
    if goal.checkin_status == CheckIn.Status.OFF_TRACK:
        return Risk("off_track", 3, goal.title, f"Latest check-in: {said}.")
    low = goal.confidence is not None and goal.confidence <= LOW_CONFIDENCE
    if goal.checkin_status == CheckIn.Status.AT_RISK or low:
        return Risk("off_track", 2, goal.title, f"Latest check-in: {said}.")
    return None


def _measure_lines(
    membership: Membership, product_id: int, now: dt.datetime
) -> tuple[Product, float | None, list[MeasureLine], list[str]]:
    """The product (through the value dashboard, which reads it), its roll-up, measures and empty KVAs."""
    board = product_dashboard(
        membership, product_id, now=now, until=now, since=now - dt.timedelta(PERIOD_DAYS)
    )
    summaries = [s for column in board.columns for s in column.measures]
    charted: dict[str, int] = {}
    for s in summaries:  # one chart per Key Value Area: its first measure with a trend to draw
        if s.measure.kva not in charted and s.sparkline:
            charted[s.measure.kva] = s.measure.pk
    points: dict[int, list[Point]] = defaultdict(list)
    if charted:
        rows = Observation.objects.filter(
            measure_id__in=list(charted.values()),
            superseded=Value(False),
            observed_at__gte=board.since,
            observed_at__lte=board.until,
        ).values_list("measure_id", "observed_at", "value")
        for measure_id, when, value in rows:
            points[measure_id].append((when, value))
    kva_labels = dict(KVA.choices)
    lines = []
    for s in summaries:
        m = s.measure
        spec = None
        if m.pk in charted.values():
            spec = chart_spec(
                points[m.pk],
                title=m.name,
                unit=m.unit,
                baseline=m.baseline,
                target=m.target,
                height=CHART_HEIGHT,
            )
        start = s.start_value
        if start is None:  # a series that begins within the period: from its first slice's mean
            start = next((v for v in s.buckets if v is not None), None)
        change = None if start is None or s.latest_value is None else s.latest_value - start
        improving = None if not change else (change > 0) == (m.direction == "higher")
        lines.append(
            MeasureLine(
                id=m.pk,
                name=m.name,
                kva=m.kva,
                kva_label=str(kva_labels.get(m.kva, m.kva)),
                unit=m.unit,
                direction=m.direction,
                latest_value=s.latest_value,
                latest_at=s.latest_at,
                start_value=start,
                change=change,
                improving=improving,
                baseline=m.baseline,
                target=m.target,
                distance=s.distance,
                stale=s.stale,
                cadence_days=m.cadence_days,
                trend=s.buckets,
                sparkline=s.sparkline,
                chart=spec,
            )
        )
    return board.product, board.goal_progress, lines, [label for _, label in board.missing_kvas]


def _hypotheses(membership: Membership, product_id: int) -> list[HypothesisLine]:
    running = Count("experiments", filter=Q(experiments__state=Experiment.State.RUNNING))
    rows = (
        validation.hypotheses_of(membership)
        .filter(product_id=product_id, state__in=(Hypothesis.State.READY, Hypothesis.State.TESTING))
        .annotate(running=running)
        .order_by("-state", "position", "id")
    )
    return [
        HypothesisLine(
            id=h.pk,
            title=h.title,
            state=h.state,
            state_label=h.get_state_display(),
            owner=person(h.owner),
            goal=h.goal.title if h.goal else "",
            metric=h.metric_label,
            running_experiments=h.running,
        )
        for h in rows
    ]


def _decisions(membership: Membership, product_id: int, now: dt.datetime) -> list[DecisionLine]:
    since = now - dt.timedelta(days=PERIOD_DAYS)
    rows = validation.learnings(membership, product_id).filter(decided_at__gte=since)[:20]
    return [
        DecisionLine(
            id=d.pk,
            hypothesis=d.hypothesis.title,
            outcome=d.outcome,
            outcome_label=d.get_outcome_display(),
            decision=d.decision,
            decision_label=d.get_decision_display(),
            learning=d.learning,
            next_step=d.next_step,
            decided_at=d.decided_at,
            decided_by=person(d.decided_by),
        )
        for d in rows
    ]


def _alignment(membership: Membership, product: Product) -> AlignmentLine | None:
    """The product's alignment index from its latest pulse round with answers (the pulses part)."""
    found = pulses.product_alignment(membership, product)
    if found is None:
        return None
    return AlignmentLine(
        index=found.index,
        clarity=found.clarity,
        commitment=found.commitment,
        similarity=found.similarity,
        responses=found.responses,
        invited=found.invited,
        response_rate=found.response_rate,
        previous_index=found.previous_index,
        hidden=found.hidden,
    )


def _concern_risks(membership: Membership, product_id: int) -> list[Risk]:
    rows = (
        Endorsement.objects.filter(
            goal__organisation_id=membership.organisation_id,
            goal__product_id=product_id,
            goal__archived_at__isnull=True,
            kind=Endorsement.Kind.CONCERN,
            resolved_at__isnull=True,
        )
        .values("goal_id", "goal__title")
        .annotate(n=Count("id"))
        .order_by("-n", "goal__title")
    )
    return [
        Risk("open_concern", 2, r["goal__title"], f"{r['n']} open concern{'s' if r['n'] != 1 else ''}.")
        for r in rows
    ]


def _overdue_risks(membership: Membership, product_id: int, now: dt.datetime) -> list[Risk]:
    late = vision.overdue_checkins(membership, product_id=product_id, now=now)
    return [
        Risk(
            "overdue_checkin",
            2 if o.days_overdue >= 14 else 1,
            o.goal.title,
            f"Check-in due {o.due:%Y-%m-%d}, {o.days_overdue} day{'s' if o.days_overdue != 1 else ''} overdue.",
        )
        for o in late
    ]


def _stale_risks(measures: list[MeasureLine]) -> list[Risk]:
    out = []
    for m in measures:
        if not m.stale:
            continue
        when = f"last observed {m.latest_at:%Y-%m-%d}" if m.latest_at else "never observed"
        out.append(Risk("stale_evidence", 2, m.name, f"{when}; expected every {m.cadence_days} days."))
    return out


def build_brief(membership: Membership, product: Product | int, now: dt.datetime | None = None) -> Brief:
    """The brief of one product of the membership's organisation (NotFound otherwise), from live data,
    in a fixed number of queries."""
    now = now or timezone.now()
    product_id = product if isinstance(product, int) else product.pk
    found, progress, measures, missing = _measure_lines(membership, product_id, now)
    goals, goals_total, off_track = _goal_lines(membership, found.pk, now)
    risks = [
        *off_track,
        *_stale_risks(measures),
        *_concern_risks(membership, found.pk),
        *_overdue_risks(membership, found.pk, now),
    ]
    order = list(RISK_LABELS)
    risks.sort(key=lambda r: (-r.severity, order.index(r.kind), r.title))
    hypotheses = _hypotheses(membership, found.pk)
    decisions = _decisions(membership, found.pk, now)
    forecasts, forecasts_total = product_goal_forecasts(
        membership, found.pk, today=now.astimezone(dt.UTC).date()
    )
    return Brief(
        organisation=membership.organisation.name,
        product_id=found.pk,
        product=found.name,
        vision=found.vision,
        product_goal=found.product_goal,
        owner=person(found.owner),
        archived=found.archived_at is not None,
        generated_at=now,
        period_days=PERIOD_DAYS,
        progress=progress,
        goals=goals,
        goals_total=goals_total,
        measures=measures,
        missing_kvas=missing,
        hypotheses=hypotheses,
        decisions=decisions,
        alignment=_alignment(membership, found),
        risks=risks[:TOP_RISKS],
        risks_total=len(risks),
        counts={
            "goals": goals_total,
            "measures": len(measures),
            "stale_measures": sum(1 for m in measures if m.stale),
            "hypotheses_in_flight": len(hypotheses),
            "decisions": len(decisions),
        },
        forecasts=[_forecast_line(f) for f in forecasts],
        forecasts_total=forecasts_total,
    )


# --- share links ----------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def share_links_of(membership: Membership, product_id: int) -> list[ShareLink]:
    """A product's share links, newest first (every member sees them; the raw links are never kept)."""
    product = vision.get_product(membership, product_id)
    return list(
        ShareLink.objects.filter(organisation_id=membership.organisation_id, product=product).select_related(
            "created_by", "revoked_by"
        )
    )


def get_share_link(membership: Membership, link_id: int) -> ShareLink:
    found = (
        ShareLink.objects.filter(pk=link_id, organisation_id=membership.organisation_id)
        .select_related("product", "created_by", "revoked_by")
        .first()
    )
    if found is None:
        raise NotFound("No such share link.")
    return found


def _expiry(expires_in_days: Any, now: dt.datetime) -> dt.datetime:
    if expires_in_days in (None, ""):
        expires_in_days = SHARE_DEFAULT_DAYS
    try:
        days = int(expires_in_days)
    except (TypeError, ValueError):
        raise ValidationFailed(
            "Give the number of days the link stays valid.", field="expires_in_days"
        ) from None
    if not 1 <= days <= SHARE_MAX_DAYS:
        raise ValidationFailed(
            f"A share link expires after 1 to {SHARE_MAX_DAYS} days.", field="expires_in_days"
        )
    return now + dt.timedelta(days=days)


@transaction.atomic
def create_share_link(
    membership: Membership,
    actor: User,
    product_id: int,
    *,
    label: str,
    expires_in_days: Any = SHARE_DEFAULT_DAYS,
    now: dt.datetime | None = None,
) -> tuple[ShareLink, str]:
    """A new read-only link to the product's brief (members and above). Returns the link and its raw
    token, which is not kept anywhere: show it once."""
    require_writer(membership)
    product = vision.get_product(membership, product_id)
    label = _text(label, "label", required=True, max_length=120)
    now = now or timezone.now()
    expires_at = _expiry(expires_in_days, now)
    raw = secrets.token_urlsafe(32)
    link = ShareLink.objects.create(
        organisation_id=membership.organisation_id,
        product=product,
        label=label,
        token_hash=token_hash(raw),
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
    )
    record(
        membership.organisation,
        link,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, {**snapshot(link, SHARE_FIELDS), "product": product.name}),
    )
    return link, raw


@transaction.atomic
def revoke_share_link(
    membership: Membership, actor: User, link_id: int, now: dt.datetime | None = None
) -> ShareLink:
    """Revoke a share link (members and above); revoking a revoked link changes nothing."""
    require_writer(membership)
    link = get_share_link(membership, link_id)
    link = ShareLink.objects.select_for_update().get(pk=link.pk)
    if link.revoked_at is not None:
        return get_share_link(membership, link_id)
    before = snapshot(link, SHARE_FIELDS)
    link.revoked_at = now or timezone.now()
    link.revoked_by = actor
    link.save(update_fields=["revoked_at", "revoked_by"])
    record(
        membership.organisation,
        link,
        actor,
        HistoryEntry.Action.UPDATED,
        diff(before, snapshot(link, SHARE_FIELDS)),
    )
    return get_share_link(membership, link_id)


def open_share_link(token: str, now: dt.datetime | None = None) -> ShareLink:
    """The live link this raw token opens, counted as one use; NotFound for an unknown, expired or
    revoked token alike (the answer never tells which)."""
    now = now or timezone.now()
    if not token or len(token) > 200:
        raise NotFound("No such link.")
    link = (
        ShareLink.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True, expires_at__gt=now)
        .select_related("organisation", "product")
        .first()
    )
    if link is None:
        raise NotFound("No such link.")
    ShareLink.objects.filter(pk=link.pk).update(use_count=F("use_count") + 1, last_used_at=now)
    return link


def share_reader(link: ShareLink) -> Membership:
    """Who a share link reads as: a stakeholder of the link's organisation (unsaved: nobody in person)."""
    return Membership(organisation=link.organisation, role=Role.STAKEHOLDER)


def shared_brief(link: ShareLink, now: dt.datetime | None = None) -> Brief:
    """The brief a live share link shows: its own product's, and nothing else."""
    return build_brief(share_reader(link), link.product_id, now=now)


# --- PDF documents --------------------------------------------------------------------------------


def submit_pdf(membership: Membership, actor: User, product_id: int) -> Job:
    """Make the brief's PDF on the background worker (any member; 404 for another organisation's
    product at once; 429 past the organisation's job limit). The job's result links the document."""
    product = vision.get_product(membership, product_id)
    return jobs.submit(membership, actor, PDF_KIND, {"product_id": product.pk})


def store_document(membership: Membership, actor: User, product_id: int, pdf: bytes) -> BriefDocument:
    now = timezone.now()
    return BriefDocument.objects.create(
        organisation_id=membership.organisation_id,
        product_id=product_id,
        created_by=actor,
        created_at=now,
        expires_at=now + dt.timedelta(days=DOCUMENT_DAYS),
        pdf=pdf,
        size=len(pdf),
    )


def get_document(membership: Membership, actor: User, document_id: int) -> BriefDocument:
    """A brief's PDF, for the member who asked for it, while it is kept (NotFound otherwise)."""
    found = (
        BriefDocument.objects.filter(
            pk=document_id,
            organisation_id=membership.organisation_id,
            created_by=actor,
            expires_at__gt=timezone.now(),
        )
        .select_related("product")
        .first()
    )
    if found is None:
        raise NotFound(f"No such document (documents are kept for {DOCUMENT_DAYS} days).")
    return found


def purge_documents(now: dt.datetime | None = None) -> int:
    """Delete the PDFs past their keeping time; returns how many."""
    deleted, _ = BriefDocument.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
