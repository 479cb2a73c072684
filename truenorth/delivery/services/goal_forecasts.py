"""Delivery services: forecasts attached to goals with target dates ("on track at 85%?").

For a goal of a product (strategy.Goal with a target date):

- **Remaining work**: the goal's and its live sub-goals' work items (strategy.WorkItem) that are not done.
  A work item counts as done when its own status is done, or when a delivery item linked to it
  (DeliveryItem.work_item, line of sight) is in a done state now, by its source's state mapping.
- **Throughput history**: the daily throughput (items entering done, flow.py's definition) of the
  product's live delivery sources over the last HISTORY_DAYS complete days (today, half over, is left
  out), starting at the first day with any activity when that is later. It is loaded for the items that
  moved in that window only (an item done in the window has a transition in it) and cached per
  organisation, product and day (CACHE_SECONDS at most).
- **Forecast** (truenorth.delivery.forecast, seeded): the probability of finishing the remaining N items
  by the target date is the share of `how_many` trials over the days from today to the target date whose
  total reaches N; the dates by which N items are done at 50/85/95 % come from `when`. Verdict: on track
  at 85 % (probability at least 0.85), off track (below 0.5), at risk in between.
- **Backtest**: `forecast.backtest` on the same history with the same horizon (shortened so that at least
  BACKTEST_MIN_WINDOWS past windows fit): how often the 85 % figure came true.
- **Reasons** instead of a forecast: no target date, an organisation-wide goal, a closed goal, a target
  date not after today, no delivery source, fewer than MIN_HISTORY_DAYS days of history, no item done
  in the history, too much history to compute inline; nothing remaining is "done".

Queries: the goals of the product, its sources, the work items and the linked delivery items' states
(four, skipped when not needed), and on a cache miss three more for the history; the same for one goal
or for every goal of a product (`product_goal_forecasts`, the brief).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.db.models import Subquery
from django.utils import timezone

from truenorth.core.errors import NotFound
from truenorth.delivery import flow, forecast
from truenorth.delivery.models import DeliveryItem, DeliverySource, StateTransition
from truenorth.delivery.services.metrics import (
    FORECAST_HISTORY_DAYS,
    FORECAST_SEED,
    MAX_FORECAST_DAYS,
    SourceRow,
    flow_of,
    inline_max_rows,
)
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Goal, WorkItem

HISTORY_DAYS = FORECAST_HISTORY_DAYS
MIN_HISTORY_DAYS = 28
TRIALS = 5_000  # how many items by the target date (the probability, the chart)
WHEN_TRIALS = 2_000  # when the remaining items are done (the 50/85/95 dates; costs more per trial)
BACKTEST_TRIALS = 1_000
BACKTEST_STEP_DAYS = 7
BACKTEST_MIN_WINDOWS = 4
ON_TRACK = 0.85
OFF_TRACK_BELOW = 0.5
CACHE_SECONDS = 3600
BRIEF_MAX_GOALS = 20
CLOSED = (Goal.Status.ACHIEVED, Goal.Status.MISSED, Goal.Status.ABANDONED)

VERDICTS = {
    "on_track": "On track at 85%",
    "at_risk": "At risk",
    "off_track": "Off track",
    "done": "Done",
    "unavailable": "No forecast",
}


@dataclass(frozen=True)
class BacktestSummary:
    horizon_days: int
    windows: int
    held_85: int
    hit_rate_85: float | None

    @property
    def text(self) -> str:
        return (
            f"the 85% forecast came true in {self.held_85} of {self.windows} past "
            f"{self.horizon_days}-day windows"
        )


@dataclass(frozen=True)
class GoalForecast:
    goal_id: int
    title: str
    product_id: int | None
    target_date: dt.date | None
    today: dt.date
    verdict: str  # one of VERDICTS
    reason: str = ""  # why there is no forecast ("unavailable", "done")
    remaining: int | None = None
    total_items: int | None = None
    probability: float | None = None
    dates: dict[int, dt.date | None] = field(default_factory=dict)  # 50/85/95: N items done by (None: later)
    backtest: BacktestSummary | None = None
    histogram: list[tuple[float, int]] = field(default_factory=list)  # items done by the target: trials
    history_days: int = 0
    trials: int = 0

    @property
    def verdict_label(self) -> str:
        return VERDICTS[self.verdict]

    @property
    def forecast(self) -> bool:
        return self.probability is not None

    @property
    def percent(self) -> int | None:
        """The probability in whole percent, rounded down (0.849 shows 84, never the 85 of on track)."""
        return percent(self.probability)

    @property
    def days_left(self) -> int | None:
        return None if self.target_date is None else (self.target_date - self.today).days

    @property
    def date_85(self) -> dt.date | None:
        return self.dates.get(85)

    @property
    def late_85_days(self) -> int | None:
        """Days the 85% date falls after the target date (negative: before it)."""
        if self.target_date is None or self.date_85 is None:
            return None
        return (self.date_85 - self.target_date).days


# --- loading ---------------------------------------------------------------------------------------


@dataclass
class _Product:
    sources: list[SourceRow]
    goals: dict[int, tuple[int | None, str, dt.date | None, str]]  # id: parent, title, target, status
    children: dict[int | None, list[int]]
    items: dict[int, list[tuple[int, bool]]]  # goal id: (work item id, done)


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _sources(org_id: int, product_id: int) -> list[SourceRow]:
    qs = DeliverySource.objects.filter(
        organisation_id=org_id, product_id=product_id, archived_at__isnull=True
    )
    return [
        SourceRow(pk, name, product_id, "", json.dumps(mapping or {}, sort_keys=True), env or "production")
        for pk, name, mapping, env in qs.values_list("pk", "name", "state_mapping", "production_environment")
    ]


def _mapping(raw: str) -> flow.StateMapping:
    try:
        return flow.StateMapping.from_config(json.loads(raw))
    except (ValueError, TypeError, AttributeError):
        return flow.StateMapping.from_config({})


def _load(org_id: int, product_id: int, *, with_items: bool) -> _Product:
    """The product's live goals (one query), live sources (one), and when asked the work items of its
    goals with whether each is done (two more, the second only for open items with sources)."""
    goals: dict[int, tuple[int | None, str, dt.date | None, str]] = {
        pk: (parent, title, target, status)
        for pk, parent, title, target, status in Goal.objects.filter(
            organisation_id=org_id, product_id=product_id, archived_at__isnull=True
        )
        .order_by("position", "id")
        .values_list("pk", "parent_id", "title", "target_date", "status")
    }
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, (parent, *_) in goals.items():
        children[parent if parent in goals else None].append(pk)
    data = _Product(_sources(org_id, product_id), goals, children, defaultdict(list))
    if with_items:
        _load_items(org_id, product_id, data)
    return data


def _load_items(org_id: int, product_id: int, data: _Product) -> None:
    """The work items of the product's goals, each with whether it is done (one query, and one more for
    the linked delivery items' states when some are open and the product has sources)."""
    if not data.sources:
        return
    rows = list(
        WorkItem.objects.filter(organisation_id=org_id, goal_id__in=Subquery(_goal_ids(org_id, product_id)))
        .order_by()
        .values_list("pk", "goal_id", "status")
    )
    open_ids = [pk for pk, _, status in rows if status != WorkItem.Status.DONE]
    done_by_delivery = _delivered(org_id, product_id, data.sources) if open_ids else set()
    for pk, goal_id, status in rows:
        data.items[goal_id].append((pk, status == WorkItem.Status.DONE or pk in done_by_delivery))


def _goal_ids(org_id: int, product_id: int) -> Any:
    return Goal.objects.filter(
        organisation_id=org_id, product_id=product_id, archived_at__isnull=True
    ).values("pk")


def _delivered(org_id: int, product_id: int, sources: list[SourceRow]) -> set[int]:
    """Open work items of the product's goals with a linked delivery item in a done state now."""
    mappings = {s.id: _mapping(s.mapping) for s in sources}
    latest: dict[int, tuple[int, int, str]] = {}  # delivery item: (work item, source, latest state)
    rows = (
        StateTransition.objects.filter(
            item__organisation_id=org_id,
            item__source_id__in=list(mappings),
            item__work_item__goal_id__in=Subquery(_goal_ids(org_id, product_id)),
        )
        .exclude(item__work_item__status=WorkItem.Status.DONE)
        .order_by("at", "id")
        .values_list("item_id", "item__work_item_id", "item__source_id", "to_state")
    )
    for item_id, work_item_id, source_id, state in rows.iterator(chunk_size=10_000):
        latest[item_id] = (work_item_id, source_id, state)
    return {wi for wi, src, state in latest.values() if mappings[src].category(state) == flow.DONE}


def _subtree(data: _Product, goal_id: int) -> list[int]:
    out, stack = [], [goal_id]
    while stack:
        pk = stack.pop()
        out.append(pk)
        stack.extend(data.children.get(pk, ()))
    return out


def _cache() -> BaseCache:
    """The per-process cache (settings.CACHES["local"]: a get is no query, unlike the database cache the
    default one is in production), or the default one where no "local" alias is configured."""
    return caches["local" if "local" in settings.CACHES else "default"]


def _history(org_id: int, product_id: int, sources: list[SourceRow], today: dt.date) -> dict[str, Any]:
    """{"daily": [...], "too_big": bool} for the product's sources, cached per product and day."""
    key = f"delivery:goal-forecasts:history:{org_id}:{product_id}:{today.isoformat()}"
    cache = _cache()
    found = cache.get(key)
    if isinstance(found, dict):
        return found
    end = dt.datetime.combine(today, dt.time.min, tzinfo=dt.UTC) - dt.timedelta(microseconds=1)
    start = dt.datetime.combine(today - dt.timedelta(days=HISTORY_DAYS), dt.time.min, tzinfo=dt.UTC)
    ids = [s.id for s in sources]
    moved = StateTransition.objects.filter(item__source_id__in=ids, at__gte=start, at__lte=end).values(
        "item_id"
    )
    transitions = StateTransition.objects.filter(item_id__in=Subquery(moved), at__lte=end).order_by()
    out: dict[str, Any]
    if transitions.count() > inline_max_rows():
        out = {"daily": [], "too_big": True}
    else:
        steps: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        first: dt.datetime | None = None
        for item_id, at, state in transitions.values_list("item_id", "at", "to_state").iterator(
            chunk_size=10_000
        ):
            steps[item_id].append((at, state))
            first = at if first is None or at < first else first
        groups: dict[int, list[flow.ItemHistory]] = defaultdict(list)
        items = DeliveryItem.objects.filter(pk__in=Subquery(moved), created_at__lte=end).order_by()
        for pk, source_id, external_id, created_at, item_type in items.values_list(
            "pk", "source_id", "external_id", "created_at", "item_type"
        ).iterator(chunk_size=10_000):
            groups[source_id].append(flow.ItemHistory(external_id, created_at, steps.pop(pk, []), item_type))
        daily = flow_of(sources, groups, start=start, end=end).daily_throughput
        if first is not None and first > start:  # the team's history begins within the window
            daily = daily[(first.date() - start.date()).days :]
        out = {"daily": [int(n) for n in daily] if first is not None else [], "too_big": False}
    cache.set(key, out, CACHE_SECONDS)
    return out


# --- the forecast ----------------------------------------------------------------------------------


def _simulate(daily: list[int], remaining: int, days: int, today: dt.date) -> dict[str, Any]:
    """The Monte Carlo figures (cached: the same history, N and horizon give the same answer)."""
    digest = hashlib.sha256(json.dumps([daily, remaining, days]).encode()).hexdigest()[:32]
    key = f"delivery:goal-forecasts:simulation:{today.isoformat()}:{digest}"
    cache = _cache()
    found = cache.get(key)
    if isinstance(found, dict):
        return found
    many = forecast.how_many(daily, days, trials=TRIALS, seed=FORECAST_SEED)
    reached = sum(n for value, n in many.histogram if value >= remaining)
    until = forecast.when(
        daily, remaining, trials=WHEN_TRIALS, seed=FORECAST_SEED, max_days=MAX_FORECAST_DAYS
    )
    dates = {
        c: None
        if v >= MAX_FORECAST_DAYS and until.capped
        else (today + dt.timedelta(days=int(v))).isoformat()
        for c, v in until.percentiles.items()
    }
    out = {
        "probability": reached / many.trials,
        "histogram": many.histogram,
        "dates": dates,
        "backtest": _backtest(daily, days),
    }
    cache.set(key, out, CACHE_SECONDS)
    return out


def _backtest(daily: list[int], days: int) -> dict[str, Any] | None:
    min_history = min(MIN_HISTORY_DAYS, max(len(daily) // 3, 7))
    room = len(daily) - min_history
    horizon = min(days, room - BACKTEST_STEP_DAYS * (BACKTEST_MIN_WINDOWS - 1))
    if horizon < 1:
        horizon = min(days, room)
    if horizon < 1:
        return None
    test = forecast.backtest(
        daily,
        horizon_days=horizon,
        step_days=BACKTEST_STEP_DAYS,
        min_history=min_history,
        trials=BACKTEST_TRIALS,
        seed=FORECAST_SEED,
    )
    if not test.points:
        return None
    held = sum(1 for p in test.points if p.actual >= p.p85)
    return {
        "horizon_days": horizon,
        "windows": len(test.points),
        "held_85": held,
        "hit_rate_85": test.hit_rate_85,
    }


def percent(probability: float | None) -> int | None:
    return None if probability is None else math.floor(probability * 100 + 1e-9)


def _verdict(probability: float) -> str:
    if probability >= ON_TRACK:
        return "on_track"
    if probability < OFF_TRACK_BELOW:
        return "off_track"
    return "at_risk"


def _for_goal(org_id: int, data: _Product, goal_id: int, product_id: int, today: dt.date) -> GoalForecast:
    _, title, target, status = data.goals[goal_id]
    no = GoalForecast(goal_id, title, product_id, target, today, "unavailable")
    if target is None:
        return replace(no, reason="The goal has no target date to forecast against.")
    if status in CLOSED:
        return replace(no, reason=f"The goal is {Goal.Status(status).label.lower()}: nothing to forecast.")
    days = (target - today).days
    if days < 1:
        return replace(no, reason=f"The target date {target:%Y-%m-%d} is not after today.")
    if not data.sources:
        return replace(
            no, reason="The product has no delivery source: import its delivery history to forecast."
        )
    items = [done for pk in _subtree(data, goal_id) for _, done in data.items.get(pk, ())]
    remaining = sum(1 for done in items if not done)
    no = replace(no, remaining=remaining, total_items=len(items))
    if not items:
        return replace(no, reason="No work item is linked to the goal or its sub-goals: nothing to forecast.")
    if remaining == 0:
        return replace(no, verdict="done", reason="Every work item of the goal is done.")
    history = _history(org_id, product_id, data.sources, today)
    daily: list[int] = history["daily"]
    if history["too_big"]:
        return replace(
            no, reason="Too much delivery history to forecast on this page: use the delivery forecast page."
        )
    no = replace(no, history_days=len(daily))
    if len(daily) < MIN_HISTORY_DAYS:
        return replace(
            no,
            reason=f"Only {len(daily)} day{'s' if len(daily) != 1 else ''} of delivery history: "
            f"a forecast needs at least {MIN_HISTORY_DAYS}.",
        )
    if not any(daily):
        return replace(
            no,
            reason=f"No item was done in the last {len(daily)} days: there is no throughput to forecast from.",
        )
    sim = _simulate(daily, remaining, days, today)
    test = sim["backtest"]
    return replace(
        no,
        verdict=_verdict(sim["probability"]),
        probability=sim["probability"],
        dates={int(c): dt.date.fromisoformat(v) if v else None for c, v in sim["dates"].items()},
        backtest=BacktestSummary(**test) if test else None,
        histogram=[(float(v), int(n)) for v, n in sim["histogram"]],
        trials=TRIALS,
    )


def forecast_goal(membership: Membership, goal: Goal | int, *, today: dt.date | None = None) -> GoalForecast:
    """The forecast of one goal of the membership's organisation (NotFound for another's)."""
    org_id = membership.organisation_id
    today = today or _today()
    product_id: int | None
    if isinstance(goal, int):
        row = (
            Goal.objects.filter(pk=goal, organisation_id=org_id)
            .values_list("pk", "product_id", "title", "target_date")
            .first()
        )
        if row is None:
            raise NotFound("No such goal.")
        goal_id, product_id, title, target = row
    else:
        if goal.organisation_id != org_id:
            raise NotFound("No such goal.")
        goal_id, product_id, title, target = goal.pk, goal.product_id, goal.title, goal.target_date
    if target is None or product_id is None:
        reason = (
            "The goal has no target date to forecast against."
            if target is None
            else "An organisation-wide goal has no product delivery to forecast from."
        )
        return GoalForecast(goal_id, title, product_id, target, today, "unavailable", reason)
    data = _load(org_id, product_id, with_items=True)
    if goal_id not in data.goals:  # archived
        return GoalForecast(goal_id, title, product_id, target, today, "unavailable", "The goal is archived.")
    return _for_goal(org_id, data, goal_id, product_id, today)


def product_goal_forecasts(
    membership: Membership, product_id: int, *, today: dt.date | None = None, limit: int = BRIEF_MAX_GOALS
) -> tuple[list[GoalForecast], int]:
    """The forecasts of the product's live goals with a target date, soonest target first (at most
    `limit`), and how many such goals there are; a fixed number of queries."""
    org_id = membership.organisation_id
    today = today or _today()
    data = _load(org_id, product_id, with_items=False)
    dated = sorted(
        (pk for pk, (_, _, target, _) in data.goals.items() if target is not None),
        key=lambda pk: (data.goals[pk][2], pk),
    )
    if not dated:
        return [], 0
    _load_items(org_id, product_id, data)
    return [_for_goal(org_id, data, pk, product_id, today) for pk in dated[:limit]], len(dated)


def goal_forecast_out(f: GoalForecast) -> dict[str, Any]:
    """The JSON the API, the CLI and the brief show."""
    out = asdict(f)
    out.update(
        target_date=f.target_date.isoformat() if f.target_date else None,
        today=f.today.isoformat(),
        verdict_label=f.verdict_label,
        probability=None if f.probability is None else round(f.probability, 4),
        dates={str(c): d.isoformat() if d else None for c, d in sorted(f.dates.items())},
        histogram=[{"items": v, "trials": n} for v, n in f.histogram],
        backtest=None if f.backtest is None else {**asdict(f.backtest), "text": f.backtest.text},
    )
    if f.backtest is not None and f.backtest.hit_rate_85 is not None:
        out["backtest"]["hit_rate_85"] = round(f.backtest.hit_rate_85, 4)
    return out
