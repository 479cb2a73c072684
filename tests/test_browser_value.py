"""Real-browser tests of the Value pages: a product's value dashboard with its four Key Value Areas,
and a measure's interactive chart drawn by the vendored Vega under the strict CSP.

Same server and browser as tests/test_browser.py (the demo served by `truenorth serve`, the session's
Chromium: tests/conftest.py); every page is watched for foreign requests and console errors (CSP
violations).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browsing import OWNER, STAKEHOLDER, signed_in, watched

pytestmark = pytest.mark.browser

VALUE_SHOTS = Path("/tmp/truenorth-shots/value")


def _new_product(page: Page) -> str:
    name = f"Ridge {uuid.uuid4().hex[:6]}"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_test_id("product-title")).to_have_text(name)
    return name


def _new_measure(page: Page, name: str, kva: str, *, target: str = "", unit: str = "") -> None:
    form = page.locator("form").filter(has=page.get_by_role("button", name="Create measure"))
    form.get_by_label(re.compile(r"^Name")).fill(name)
    form.get_by_label(re.compile(r"^Key Value Area")).select_option(label=kva)
    if unit:
        form.get_by_label(re.compile(r"^Unit")).fill(unit)
    if target:
        form.get_by_label(re.compile(r"^Target")).fill(target)
    form.get_by_role("button", name="Create measure").click()
    expect(page.get_by_test_id("measure-title")).to_have_text(name)


def _observe(page: Page, value: str, when: str) -> None:
    page.locator("summary", has_text="Record an observation").click()
    page.get_by_label(re.compile(r"^Value")).fill(value)
    page.get_by_label(re.compile(r"^Observed at")).fill(when)
    page.get_by_role("button", name="Record observation").click()
    expect(page.get_by_role("status").filter(has_text="Observation recorded")).to_be_visible()


def test_value_dashboard_and_an_interactive_measure_chart(live_server_url: str, browser: Browser) -> None:
    with watched(browser, live_server_url) as web, watched(browser, live_server_url) as other:
        page = signed_in(web, OWNER)
        _new_product(page)
        page.get_by_test_id("value-dashboard-link").click()
        expect(page.get_by_test_id("dashboard-heading")).to_contain_text("Value of Ridge")
        columns = page.get_by_test_id("kva-column")
        expect(columns).to_have_count(4)
        for label in ("Current Value", "Unrealized Value", "Time-to-Market", "Ability to Innovate"):
            expect(page.get_by_role("heading", name=label, exact=True)).to_be_visible()
        expect(page.get_by_test_id("missing-kvas")).to_be_visible()
        # Four columns side by side on a laptop screen: the same top edge.
        tops = {round(box["y"]) for box in (columns.nth(i).bounding_box() or {"y": -1} for i in range(4))}
        assert len(tops) == 1, f"the KVA columns are not side by side: {tops}"

        page.get_by_role("link", name="Measures", exact=True).last.click()
        _new_measure(page, "Net promoter score", "Current Value", target="60", unit="pts")
        _observe(page, "31", "2026-01-05T09:00")
        _observe(page, "38", "2026-02-05T09:00")
        _observe(page, "44", "2026-03-05T09:00")

        chart = page.get_by_test_id("measure-chart")
        expect(chart.locator("svg, canvas").first).to_be_visible()
        expect(chart).to_have_class(re.compile(r"chart-ready"))
        # Vega labels each point for assistive technology: the three observations are drawn.
        expect(chart.locator('[aria-roledescription="point"]')).to_have_count(3)
        expect(chart).to_contain_text("Target 60 pts")
        VALUE_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(VALUE_SHOTS / "measure-1280x800.png"), full_page=True)
        measure_url = page.url

        # The dashboard now shows the measure with its latest value; the period filter uses htmx.
        page.locator(".breadcrumb").get_by_role("link", name=re.compile(r"^Ridge ")).click()
        page.get_by_test_id("value-dashboard-link").click()
        card = page.get_by_test_id("measure-card").filter(has_text="Net promoter score")
        expect(card).to_contain_text("44")
        page.get_by_role("combobox", name="Period").select_option("custom")
        page.get_by_role("textbox", name="From", exact=True).fill("2026-01-01")
        page.get_by_role("textbox", name="To", exact=True).fill("2026-03-31")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"period=custom"))
        expect(card.locator("svg.sparkline polyline")).to_have_count(1)
        expect(card).to_contain_text("16 to target 60")
        page.screenshot(path=str(VALUE_SHOTS / "dashboard-1280x800.png"), full_page=True)

        # Investment against return: the value measure's line over the money put in, per month.
        page.get_by_role("link", name="Investment and return").click()
        page.get_by_label(re.compile(r"^From")).fill("2026-01-01")
        page.get_by_label(re.compile(r"^To")).fill("2026-03-31")
        page.get_by_label(re.compile(r"^Amount")).fill("90000")
        page.get_by_role("button", name="Record investment").click()
        expect(page.get_by_role("status").filter(has_text="Investment recorded")).to_be_visible()
        page.get_by_role("combobox", name="Value measure").select_option(label="Net promoter score (pts)")
        page.get_by_role("button", name="Save value measure").click()
        expect(page.get_by_test_id("roi-return")).to_contain_text("+13 pts better")
        expect(page.get_by_test_id("roi-chart").locator("svg, canvas").first).to_be_visible()

        # A stakeholder reads the same chart but has no form to write with.
        spage = signed_in(other, STAKEHOLDER)
        spage.goto(measure_url)
        expect(spage.get_by_test_id("measure-chart").locator("svg, canvas").first).to_be_visible()
        expect(spage.get_by_text("Record an observation")).to_have_count(0)
