"""The brief's Forecasts section: the product's goals with a target date and their delivery forecasts, the
same in the page, the share page, Markdown, JSON (API and CLI) and the PDF, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from truenorth.delivery.tests.test_goal_forecasts import Team, team, today
from truenorth.engagement.services import briefs as services
from truenorth.engagement.services.briefs_render import brief_data, brief_markdown, brief_pdf
from truenorth.strategy.models import Goal, Product, WorkItem

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def checkout(owner) -> Team:
    """Two items done a day for 60 days; "One-page checkout": 20 items by 10 days from now (certain);
    "Express pay": 20 items by 9 days from now (impossible); an undated goal; a dated goal with no work."""
    org = owner.membership.organisation
    t = team(org, remaining=20, target_in=10, per_day=[2] * 60)
    express = Goal.objects.create(
        organisation=org,
        product=t.product,
        title="Express pay",
        target_date=today() + dt.timedelta(days=9),
        status="active",
    )
    WorkItem.objects.bulk_create(
        [WorkItem(organisation=org, product=t.product, title=f"Pay {i}", goal=express) for i in range(20)]
    )
    Goal.objects.create(organisation=org, product=t.product, title="Someday goal")
    Goal.objects.create(
        organisation=org, product=t.product, title="Empty goal", target_date=today() + dt.timedelta(days=30)
    )
    return t


def test_the_brief_lists_dated_goals_with_their_forecasts(owner, checkout) -> None:
    brief = services.build_brief(owner.membership, checkout.product)
    assert [(f.title, f.verdict) for f in brief.forecasts] == [
        ("Express pay", "off_track"),
        ("One-page checkout", "on_track"),
        ("Empty goal", "unavailable"),
    ]
    express, checkout_line, empty = brief.forecasts
    assert express.probability == 0.0 and express.remaining == 20
    assert express.date_85 == today() + dt.timedelta(days=10)
    assert checkout_line.probability == 1.0 and checkout_line.backtest.startswith(
        "the 85% forecast came true"
    )
    assert "No work item is linked" in empty.reason and brief.forecasts_total == 3


def test_page_share_page_and_pdf_show_the_section(client, owner, checkout) -> None:
    from pypdf import PdfReader

    html = owner.client.get(reverse("engagement:brief", args=("alpha", checkout.product.pk))).content.decode()
    assert 'data-testid="brief-forecasts"' in html
    assert '<tr data-verdict="off_track"><td>Express pay</td>' in html
    assert "On track at 85%" in html and "came true in" in html and "No work item is linked" in html
    assert "Someday goal</td>" not in html.split('data-testid="brief-forecasts"')[1].split("</table>")[0]

    created = owner.client.post(
        reverse("engagement:brief_share_create", args=("alpha", checkout.product.pk)),
        {"label": "Board pack", "expires_in_days": 7},
    )
    token = created.context["url"].split("/share/")[1].strip("/")
    shared = client.get(reverse("engagement:share", args=(token,))).content.decode()
    assert '<tr data-verdict="on_track"><td>One-page checkout</td>' in shared

    pdf = brief_pdf(services.build_brief(owner.membership, checkout.product))
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Forecasts" in text and "Express pay" in text and "Off track" in text


def test_markdown_and_json_carry_the_forecasts(owner, checkout) -> None:
    target = today() + dt.timedelta(days=10)
    text = brief_markdown(services.build_brief(owner.membership, checkout.product))
    section = text.split("## Forecasts")[1].split("## Key Value Measures")[0]
    assert "| Goal | Target date | Remaining | Chance by target | 85% date | Forecast |" in section
    assert (
        f"| One-page checkout | {target:%Y-%m-%d} | 20 of 20 | 100 % | {target:%Y-%m-%d} | On track at 85%"
        in section
    )
    assert (
        f"| Express pay | {target - dt.timedelta(days=1):%Y-%m-%d} | 20 of 20 | 0 % | {target:%Y-%m-%d} | Off track"
        in section
    )
    assert "| Empty goal |" in section and "No work item is linked" in section

    # The JSON of `truenorth brief --json` (brief_data; the API's BriefOut schema lists its fields).
    data = json.loads(
        json.dumps(brief_data(services.build_brief(owner.membership, checkout.product)), default=str)
    )
    assert [f["verdict"] for f in data["forecasts"]] == ["off_track", "on_track", "unavailable"]
    assert data["forecasts"][1]["probability"] == 1.0 and data["forecasts_omitted"] == 0
    assert data["forecasts"][1]["date_85"] == target.isoformat()
    assert data["forecasts"][0]["verdict_label"] == "Off track" and data["forecasts_total"] == 3


def test_cli_json_carries_the_forecasts(owner, checkout, capsys) -> None:
    from truenorth.cli import main

    who = ["--org", "alpha", "--as", owner.user.email]
    assert main(["brief", str(checkout.product.pk), "--json", *who]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [f["title"] for f in data["forecasts"]] == ["Express pay", "One-page checkout", "Empty goal"]


def test_a_product_without_dated_goals_or_delivery_says_so(owner) -> None:
    org = owner.membership.organisation
    product = Product.objects.create(organisation=org, name="Quiet")
    text = brief_markdown(services.build_brief(owner.membership, product))
    assert "## Forecasts\n\nNo goal with a target date." in text
    goal = Goal.objects.create(
        organisation=org, product=product, title="Launch", target_date=today() + dt.timedelta(days=20)
    )
    WorkItem.objects.create(organisation=org, product=product, title="W", goal=goal)
    (line,) = services.build_brief(owner.membership, product).forecasts
    assert line.verdict == "unavailable" and "no delivery source" in line.reason


def test_another_organisations_goals_never_appear(owner, outsider, checkout) -> None:
    other = Product.objects.create(organisation=outsider.membership.organisation, name="Beta shop")
    Goal.objects.create(
        organisation=outsider.membership.organisation,
        product=other,
        title="Beta goal",
        target_date=today() + dt.timedelta(days=5),
    )
    brief = services.build_brief(owner.membership, checkout.product)
    assert "Beta goal" not in [f.title for f in brief.forecasts]
    assert outsider.api().get(f"/api/v1/orgs/beta/products/{checkout.product.pk}/brief").status_code == 404


def test_the_forecasts_keep_the_brief_at_a_fixed_query_count(owner, checkout) -> None:
    def count() -> int:
        services.build_brief(owner.membership, checkout.product.pk)  # warm the day's throughput history
        with CaptureQueriesContext(connection) as ctx:
            services.build_brief(owner.membership, checkout.product.pk)
        return len(ctx.captured_queries)

    few = count()
    org = owner.membership.organisation
    goals = Goal.objects.bulk_create(
        [
            Goal(
                organisation=org,
                product=checkout.product,
                title=f"Dated {i}",
                target_date=today() + dt.timedelta(days=20 + i),
            )
            for i in range(30)
        ]
    )
    WorkItem.objects.bulk_create(
        [WorkItem(organisation=org, product=checkout.product, title=f"W {g.pk}", goal=g) for g in goals]
    )
    assert count() == few
    brief = services.build_brief(owner.membership, checkout.product.pk)
    assert brief.forecasts_total == 33 and brief.forecasts_omitted == 13
    assert "13 later goals with a target date are not listed." in brief_markdown(brief)


def test_the_api_brief_carries_the_forecasts(owner, checkout) -> None:
    data = owner.api_read().get(f"/api/v1/orgs/alpha/products/{checkout.product.pk}/brief").json()
    assert [f["verdict"] for f in data["forecasts"]] == ["off_track", "on_track", "unavailable"]
    assert data["forecasts_total"] == 3 and data["forecasts_omitted"] == 0
    on_track = data["forecasts"][1]
    assert on_track["probability"] >= 0.85 and on_track["date_85"] is not None and on_track["backtest"]
