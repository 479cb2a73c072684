"""Goals' delivery forecasts: remaining work, probability by the target date, verdict, backtest, reasons;
the goal page panel, the API and the CLI; another organisation's goal is not found."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from typer.testing import CliRunner

from truenorth.cli import app, main
from truenorth.core.errors import NotFound
from truenorth.delivery.models import DeliveryItem, DeliverySource, StateTransition
from truenorth.delivery.panels import outcome_chart
from truenorth.delivery.services import goal_forecasts
from truenorth.delivery.services.goal_forecasts import forecast_goal, product_goal_forecasts
from truenorth.delivery.tests.metrics_data import MAPPING, build
from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Goal, Product, WorkItem

pytestmark = pytest.mark.django_db

PANEL_QUERIES = 4


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def day(offset: int, hour: int = 12) -> dt.datetime:
    """`offset` days from today (negative: in the past), at `hour` UTC."""
    return dt.datetime.combine(today() + dt.timedelta(days=offset), dt.time(hour), tzinfo=dt.UTC)


@dataclass
class Team:
    product: Product
    source: DeliverySource
    goal: Goal


def throughput(source: DeliverySource, per_day: list[int], *, prefix: str = "T") -> None:
    """Items done on each of the last len(per_day) complete days (per_day[-1]: yesterday)."""
    org = source.organisation
    made = DeliveryItem.objects.bulk_create(
        [
            DeliveryItem(
                organisation=org, source=source, external_id=f"{prefix}-{i}-{k}", created_at=day(i, 8)
            )
            for i, n in zip(range(-len(per_day), 0), per_day, strict=True)
            for k in range(n)
        ]
    )
    StateTransition.objects.bulk_create(
        [
            StateTransition(item=item, at=item.created_at + dt.timedelta(hours=h), to_state=state)
            for item in made
            for h, state in ((0, "To Do"), (1, "In Progress"), (4, "Done"))
        ]
    )


def team(
    org: Organisation, *, remaining: int, target_in: int | None, per_day: list[int] | None = None
) -> Team:
    product = Product.objects.create(organisation=org, name="Checkout")
    source = DeliverySource.objects.create(
        organisation=org, name="Checkout Jira", kind="jira", product=product, state_mapping=MAPPING
    )
    target = today() + dt.timedelta(days=target_in) if target_in is not None else None
    goal = Goal.objects.create(
        organisation=org, product=product, title="One-page checkout", target_date=target, status="active"
    )
    WorkItem.objects.bulk_create(
        [
            WorkItem(
                organisation=org, product=product, title=f"Story {i}", external_key=f"CHK-{i}", goal=goal
            )
            for i in range(remaining)
        ]
    )
    if per_day is not None:
        throughput(source, per_day)
    return Team(product, source, goal)


def test_constant_throughput_gives_a_certain_answer(owner) -> None:
    """Two items a day, every day: 20 items take exactly 10 days (a degenerate distribution)."""
    t = team(owner.membership.organisation, remaining=20, target_in=10, per_day=[2] * 60)
    f = forecast_goal(owner.membership, t.goal.pk)
    assert (f.remaining, f.total_items, f.history_days) == (20, 20, 60)
    assert f.probability == 1.0 and f.verdict == "on_track" and f.verdict_label == "On track at 85%"
    assert f.histogram == [(20.0, goal_forecasts.TRIALS)]  # 2 a day for 10 days, in every trial
    assert f.dates == {c: today() + dt.timedelta(days=10) for c in (50, 85, 95)}
    assert f.late_85_days == 0
    assert f.backtest is not None and f.backtest.held_85 == f.backtest.windows >= 4
    assert f.backtest.text.startswith(f"the 85% forecast came true in {f.backtest.windows} of ")

    Goal.objects.filter(pk=t.goal.pk).update(target_date=today() + dt.timedelta(days=9))
    f = forecast_goal(owner.membership, t.goal.pk)
    assert f.probability == 0.0 and f.verdict == "off_track"  # 18 at most by then
    assert f.late_85_days == 1


def test_a_far_target_is_on_track_and_a_close_one_off_track(owner) -> None:
    """One item every other day on average (0 or 2): 10 items need about 10 days."""
    pattern = [0, 2, 2, 0, 1, 1, 0, 2, 0, 2] * 9
    t = team(owner.membership.organisation, remaining=10, target_in=30, per_day=pattern)
    far = forecast_goal(owner.membership, t.goal)
    assert far.verdict == "on_track" and far.probability is not None and far.probability >= 0.85
    assert far.date_85 is not None and far.date_85 <= far.target_date  # type: ignore[operator]
    Goal.objects.filter(pk=t.goal.pk).update(target_date=today() + dt.timedelta(days=4))
    close = forecast_goal(owner.membership, t.goal.pk)
    assert close.verdict == "off_track" and close.probability is not None and close.probability < 0.5
    Goal.objects.filter(pk=t.goal.pk).update(target_date=today() + dt.timedelta(days=11))
    middle = forecast_goal(owner.membership, t.goal.pk)
    assert middle.verdict == "at_risk" and 0.5 <= (middle.probability or 0) < 0.85


def test_remaining_counts_sub_goals_and_work_done_in_delivery(owner) -> None:
    org = owner.membership.organisation
    t = team(org, remaining=3, target_in=20, per_day=[1] * 40)
    sub = Goal.objects.create(organisation=org, product=t.product, parent=t.goal, title="Saved cards")
    WorkItem.objects.create(organisation=org, product=t.product, title="Card vault", goal=sub)
    WorkItem.objects.create(
        organisation=org, product=t.product, title="Done already", goal=sub, status="done"
    )
    assert forecast_goal(owner.membership, t.goal.pk).remaining == 4
    # A ticket linked to CHK-0 (line of sight) is done in Jira: CHK-0 is no longer remaining.
    chk0 = WorkItem.objects.get(external_key="CHK-0")
    ticket = DeliveryItem.objects.create(
        organisation=org, source=t.source, external_id="CHK-0", created_at=day(-3), work_item=chk0
    )
    StateTransition.objects.create(item=ticket, at=day(-3), to_state="In Progress")
    StateTransition.objects.create(item=ticket, at=day(-2), to_state="Done")
    f = forecast_goal(owner.membership, t.goal.pk)
    assert (f.remaining, f.total_items) == (3, 5)
    StateTransition.objects.create(item=ticket, at=day(-1), to_state="In Progress")  # reopened
    assert forecast_goal(owner.membership, t.goal.pk).remaining == 4
    WorkItem.objects.filter(goal__in=(t.goal, sub)).update(status="done")
    done = forecast_goal(owner.membership, t.goal.pk)
    assert done.verdict == "done" and done.remaining == 0 and "done" in done.reason


def test_reasons_when_there_is_no_forecast(owner) -> None:
    org = owner.membership.organisation
    m = owner.membership

    undated = team(org, remaining=5, target_in=None, per_day=[1] * 40)
    assert "no target date" in forecast_goal(m, undated.goal.pk).reason
    wide = Goal.objects.create(organisation=org, title="Company-wide", target_date=today() + dt.timedelta(30))
    assert "organisation-wide" in forecast_goal(m, wide.pk).reason

    Goal.objects.filter(pk=undated.goal.pk).update(target_date=today())
    assert "is not after today" in forecast_goal(m, undated.goal.pk).reason
    Goal.objects.filter(pk=undated.goal.pk).update(target_date=today() + dt.timedelta(9), status="achieved")
    assert forecast_goal(m, undated.goal.pk).reason == "The goal is achieved: nothing to forecast."

    bare = Product.objects.create(organisation=org, name="No delivery")
    goal = Goal.objects.create(
        organisation=org, product=bare, title="G", target_date=today() + dt.timedelta(9)
    )
    WorkItem.objects.create(organisation=org, product=bare, title="W", goal=goal)
    f = forecast_goal(m, goal.pk)
    assert f.verdict == "unavailable" and "no delivery source" in f.reason

    # The metrics tests' history is from March 2026: nothing moved in the last 180 days.
    old = build(org, name="Payments")
    goal = Goal.objects.create(
        organisation=org, product=old.product, title="P", target_date=today() + dt.timedelta(9)
    )
    WorkItem.objects.create(organisation=org, product=old.product, title="W", goal=goal)
    assert "Only 0 days of delivery history" in forecast_goal(m, goal.pk).reason
    cache.clear()
    throughput(old.source, [1] * 10, prefix="NEW")  # a team that began ten days ago
    assert forecast_goal(m, goal.pk).reason == (
        "Only 10 days of delivery history: a forecast needs at least 28."
    )
    nothing = Goal.objects.create(
        organisation=org, product=old.product, title="E", target_date=goal.target_date
    )
    assert "No work item is linked" in forecast_goal(m, nothing.pk).reason


def test_work_that_never_finishes_gives_no_throughput(owner) -> None:
    t = team(owner.membership.organisation, remaining=2, target_in=20)
    started = DeliveryItem.objects.create(
        organisation=t.product.organisation, source=t.source, external_id="S-1", created_at=day(-40)
    )
    StateTransition.objects.create(item=started, at=day(-40), to_state="In Progress")
    f = forecast_goal(owner.membership, t.goal.pk)
    assert f.history_days == 40 and f.reason.startswith("No item was done in the last 40 days")


def test_too_much_history_is_a_reason_not_a_slow_page(owner, settings) -> None:
    settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS = 50
    t = team(owner.membership.organisation, remaining=2, target_in=20, per_day=[1] * 40)  # 120 transitions
    assert "Too much delivery history" in forecast_goal(owner.membership, t.goal.pk).reason


def test_another_organisations_goal_is_not_found(owner, outsider) -> None:
    t = team(owner.membership.organisation, remaining=5, target_in=20, per_day=[1] * 40)
    with pytest.raises(NotFound):
        forecast_goal(outsider.membership, t.goal.pk)
    with pytest.raises(NotFound):
        forecast_goal(outsider.membership, t.goal)  # the object itself, as a panel would get it
    url = f"/api/v1/orgs/beta/delivery/goals/{t.goal.pk}/forecast"
    assert outsider.api().get(url).status_code == 404
    assert owner.api().get(f"/api/v1/orgs/alpha/delivery/goals/{t.goal.pk}/forecast").status_code == 200
    assert owner.api().get(f"/api/v1/orgs/beta/delivery/goals/{t.goal.pk}/forecast").status_code == 404
    page = reverse("strategy:goal", kwargs={"org_slug": "beta", "goal_id": t.goal.pk})
    assert outsider.client.get(page).status_code == 404


def test_api_answers_the_forecast_as_json(owner) -> None:
    t = team(owner.membership.organisation, remaining=20, target_in=10, per_day=[2] * 60)
    response = owner.api_read().get(f"/api/v1/orgs/alpha/delivery/goals/{t.goal.pk}/forecast")
    assert response.status_code == 200, response.content
    data = response.json()
    target = (today() + dt.timedelta(days=10)).isoformat()
    assert data["verdict"] == "on_track" and data["probability"] == 1.0 and data["remaining"] == 20
    assert data["target_date"] == target and data["dates"] == {"50": target, "85": target, "95": target}
    assert data["backtest"]["held_85"] == data["backtest"]["windows"]
    assert data["histogram"] == [{"items": 20.0, "trials": goal_forecasts.TRIALS}]
    bad = owner.api().get("/api/v1/orgs/alpha/delivery/goals/0/forecast")
    assert bad.status_code == 422 and "goal_id" in bad.content.decode()
    assert owner.api().get("/api/v1/orgs/alpha/delivery/goals/987654/forecast").status_code == 404


def test_the_goal_page_shows_the_forecast(owner) -> None:
    t = team(owner.membership.organisation, remaining=20, target_in=9, per_day=[2] * 60)
    url = reverse("strategy:goal", kwargs={"org_slug": "alpha", "goal_id": t.goal.pk})
    html = owner.client.get(url).content.decode()
    assert 'data-testid="goal-forecast"' in html and 'data-verdict="off_track"' in html
    assert "Off track" in html and "0 % chance to finish the 20 remaining work items" in html
    assert "1 day after the target" in html and "came true in" in html
    assert f"/products/{t.product.pk}/delivery/?items=20" in html
    assert "<svg" in html and "<rect" in html


def test_the_goal_page_keeps_a_fixed_query_count(owner, settings) -> None:
    settings.TRUENORTH_PAGE_CACHE_SECONDS = 0  # the page as built, not as kept (orgs/pagecache.py)
    org = owner.membership.organisation
    t = team(org, remaining=3, target_in=30, per_day=[1, 0, 2] * 20)
    url = reverse("strategy:goal", kwargs={"org_slug": "alpha", "goal_id": t.goal.pk})

    def count() -> int:
        owner.client.get(url)  # warm-up: session, the day's cached history
        with CaptureQueriesContext(connection) as ctx:
            assert owner.client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    subs = Goal.objects.bulk_create(
        [Goal(organisation=org, product=t.product, parent=t.goal, title=f"Sub {i}") for i in range(30)]
    )
    items = WorkItem.objects.bulk_create(
        [
            WorkItem(organisation=org, product=t.product, title=f"W {g.pk}", external_key=f"W-{g.pk}", goal=g)
            for g in subs
        ]
    )
    tickets = DeliveryItem.objects.bulk_create(
        [
            DeliveryItem(
                organisation=org, source=t.source, external_id=w.external_key, created_at=day(-5), work_item=w
            )
            for w in items
        ]
    )
    StateTransition.objects.bulk_create(
        [
            StateTransition(item=d, at=day(-4), to_state="Done" if i % 2 else "In Progress")
            for i, d in enumerate(tickets)
        ]
    )
    assert forecast_goal(owner.membership, t.goal.pk).remaining == 3 + 15
    assert count() == few
    # The panel's own queries (the history cached for the day): the product's goals, its sources, the
    # work items and the linked tickets' states. Without a target date it runs none.
    target = t.goal.target_date
    Goal.objects.filter(pk=t.goal.pk).update(target_date=None)
    assert few - count() == PANEL_QUERIES
    Goal.objects.filter(pk=t.goal.pk).update(target_date=target)
    cache.clear()
    owner.client.get(url)  # the history is loaded again once a day: three more queries then
    with CaptureQueriesContext(connection) as ctx:
        cache.clear()
        owner.client.get(url)
    assert len(ctx.captured_queries) == few + 3


def test_the_panel_without_a_target_date_says_why(owner) -> None:
    t = team(owner.membership.organisation, remaining=2, target_in=None)
    url = reverse("strategy:goal", kwargs={"org_slug": "alpha", "goal_id": t.goal.pk})
    html = owner.client.get(url).content.decode()
    assert "The goal has no target date to forecast against." in html


def test_the_outcome_chart_splits_hits_from_misses(owner) -> None:
    t = team(owner.membership.organisation, remaining=10, target_in=10, per_day=[0, 2, 1, 1] * 10)
    f = forecast_goal(owner.membership, t.goal.pk)
    chart = outcome_chart(f)
    assert chart is not None and 1 <= len(chart.bars) <= 40
    hit_share = sum(n for v, n in f.histogram if v >= 10) / f.trials
    assert f.probability == hit_share
    assert any(b.hit for b in chart.bars) and any(not b.hit for b in chart.bars)
    assert chart.marker_x is not None and all(b.hit == (b.x >= chart.marker_x - 0.01) for b in chart.bars)


def test_product_forecasts_list_dated_goals_soonest_first_in_fixed_queries(owner) -> None:
    org = owner.membership.organisation
    t = team(org, remaining=4, target_in=40, per_day=[1] * 40)
    soon = Goal.objects.create(
        organisation=org, product=t.product, title="Soon", target_date=today() + dt.timedelta(5)
    )
    Goal.objects.create(organisation=org, product=t.product, title="Undated")
    product_goal_forecasts(owner.membership, t.product.pk)  # warm the day's history
    with CaptureQueriesContext(connection) as few:
        found, total = product_goal_forecasts(owner.membership, t.product.pk)
    assert total == 2 and [f.goal_id for f in found] == [soon.pk, t.goal.pk]
    assert found[0].reason.startswith("No work item") and found[1].verdict == "on_track"
    Goal.objects.bulk_create(
        [
            Goal(
                organisation=org, product=t.product, title=f"G{i}", target_date=today() + dt.timedelta(i + 1)
            )
            for i in range(30)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        found, total = product_goal_forecasts(owner.membership, t.product.pk)
    assert total == 32 and len(found) == goal_forecasts.BRIEF_MAX_GOALS
    assert len(many.captured_queries) == len(few.captured_queries) <= 4


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_forecasts_a_goal(owner, outsider) -> None:
    t = team(owner.membership.organisation, remaining=20, target_in=10, per_day=[2] * 60)
    who = ["--org", "alpha", "--as", owner.user.email]
    code, out = run("forecast", "--goal", str(t.goal.pk), "--json", *who)
    assert code == 0, out
    assert json.loads(out)["verdict"] == "on_track"
    code, out = run("forecast", "--goal", str(t.goal.pk), *who)
    assert code == 0 and "On track at 85%: 100 % chance" in out and "came true in" in out
    assert main(["forecast", "--goal", str(t.goal.pk), "--items", "3", *who]) == 2
    assert main(["forecast", "--goal", "0", *who]) == 2
    assert main(["forecast", "--goal", str(t.goal.pk), "--org", "beta", "--as", outsider.user.email]) == 2


def test_a_year_of_demo_delivery_forecasts_plausibly(owner) -> None:
    """Trail App's demo year (about 1.65 items a day): a goal whose tickets are the demo's open items."""
    from truenorth.delivery.demo import load_delivery_demo
    from truenorth.strategy import services as strategy

    org = owner.membership.organisation
    product = strategy.create_product(owner.membership, owner.user, name="Trail App")
    source = load_delivery_demo(org, {owner.user.email: owner.user}, owner.user.email)
    assert source is not None
    goal = Goal.objects.create(
        organisation=org, product=product, title="Offline maps", target_date=today() + dt.timedelta(days=60)
    )
    keys = list(
        DeliveryItem.objects.filter(source=source).order_by("pk").values_list("external_id", flat=True)
    )
    items = WorkItem.objects.bulk_create(
        [WorkItem(organisation=org, product=product, title=k, external_key=k, goal=goal) for k in keys[-60:]]
    )
    DeliveryItem.objects.filter(source=source, external_id__in=keys[-60:]).update(
        work_item_id=Subquery(
            WorkItem.objects.filter(product=product, external_key=OuterRef("external_id")).values("pk")[:1]
        )
    )
    f = forecast_goal(owner.membership, goal.pk)
    assert f.total_items == len(items) and f.remaining is not None and 0 < f.remaining < len(items)
    assert f.history_days == goal_forecasts.HISTORY_DAYS and f.verdict == "on_track"
    assert f.backtest is not None and f.backtest.windows >= 4 and f.backtest.hit_rate_85 is not None
    assert f.date_85 is not None and f.date_85 < goal.target_date  # type: ignore[operator]
    WorkItem.objects.bulk_create(
        [WorkItem(organisation=org, product=product, title=f"More {i}", goal=goal) for i in range(200)]
    )
    assert forecast_goal(owner.membership, goal.pk).verdict == "off_track"  # ~100 items in 60 days


def test_the_shown_percentage_never_rounds_up_into_the_next_verdict() -> None:
    assert goal_forecasts.percent(0.8498) == 84 and goal_forecasts._verdict(0.8498) == "at_risk"
    assert goal_forecasts.percent(0.85) == 85 and goal_forecasts._verdict(0.85) == "on_track"
    assert goal_forecasts.percent(0.4999) == 49 and goal_forecasts._verdict(0.4999) == "off_track"
    assert goal_forecasts.percent(1.0) == 100 and goal_forecasts.percent(None) is None
