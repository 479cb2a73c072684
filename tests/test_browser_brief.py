"""Real-browser test of the product brief: its charts drawn by the vendored Vega under the strict CSP,
and a share link opened without signing in that shows the brief and nothing else.

Same server and browser as tests/test_browser.py (the demo served by `truenorth serve`); every page is
watched for foreign requests and console errors (CSP violations)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Browser, expect

from tests.browsing import OWNER, signed_in, watched

pytestmark = pytest.mark.browser


def test_the_brief_draws_its_charts_and_a_share_link_shows_only_it(
    live_server_url: str, browser: Browser
) -> None:
    with watched(browser, live_server_url) as web:
        page = signed_in(web, OWNER)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
        page.get_by_role("link", name="Trail App", exact=True).click()
        page.goto(page.url.rstrip("/") + "/brief/")
        expect(page.get_by_test_id("brief")).to_contain_text("Trail App")
        charts = page.get_by_test_id("brief-chart").locator(".measure-chart")
        expect(charts).to_have_count(4)
        for i in range(4):
            expect(charts.nth(i)).to_have_class(re.compile(r"chart-ready"))
            expect(charts.nth(i).locator("svg").first).to_be_visible()
        label = f"Board {uuid.uuid4().hex[:6]}"
        form = page.get_by_test_id("share-create")
        form.get_by_label(re.compile(r"^Label")).fill(label)
        form.get_by_role("button", name="Create a share link").click()
        url = page.get_by_test_id("share-url").input_value()
        assert "/share/" in url

    with watched(browser, live_server_url) as outside:
        shared = outside.page
        shared.goto(url)
        expect(shared.get_by_test_id("shared-brief")).to_contain_text("Trail App")
        chart = shared.get_by_test_id("brief-chart").locator(".measure-chart").first
        expect(chart).to_have_class(re.compile(r"chart-ready"))
        expect(shared.get_by_role("navigation")).to_have_count(0)
        hrefs = shared.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert all(h.startswith("/share/") for h in hrefs), hrefs
