"""Real-browser test of the loop between a goal and the Value measure it tracks (issue 9 item 2): a
target linked to a measure on the goal page takes its value and progress from the measure, the
measure's page lists the goal, and "Create a goal from this measure" starts a goal already linked.

Same server and browser as tests/test_browser.py (tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browsing import OWNER, signed_in, watched
from tests.test_browser_value import _new_measure, _new_product, _observe
from tests.test_browser_vision import _new_goal

pytestmark = pytest.mark.browser


def test_a_target_linked_to_a_measure_in_the_ui_and_the_goal_listed_on_the_measure(
    live_server_url: str, browser: Browser
) -> None:
    with watched(browser, live_server_url) as web:
        page = signed_in(web, OWNER)
        product = _new_product(page)
        product_url = page.url
        page.get_by_test_id("value-dashboard-link").click()
        page.wait_for_url(re.compile(r"/products/\d+/value/$"))  # before looking for its links
        page.get_by_role("link", name="Measures", exact=True).last.click()
        page.wait_for_url(re.compile(r"/products/\d+/measures/$"))
        _new_measure(page, "Weekly planners", "Current Value", unit="teams")
        yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        _observe(page, "30", f"{yesterday}T09:00")

        page.goto(product_url)
        page.get_by_role("button", name="New strategic goal").click()
        _new_goal(
            page,
            "Teams plan every week",
            outcome="Teams plan their week in the app instead of on whiteboards.",
            target=("Planners", "10", "50"),
        )
        row = page.locator("#targets").get_by_role("row").filter(has_text="Planners")
        expect(row).to_contain_text("no data yet")

        # Link the target to the measure on the goal page.
        edit = page.locator("details").filter(has=page.locator("summary", has_text="Edit “Planners”"))
        edit.locator("summary").click()
        edit.get_by_label(re.compile(r"^Tracks Value measure")).select_option(
            label=f"Weekly planners ({product})"
        )
        edit.get_by_role("button", name=re.compile(r"^Save")).click()
        expect(page.get_by_role("status").filter(has_text="Target measure saved")).to_be_visible()
        row = page.locator("#targets").get_by_role("row").filter(has_text="Planners")
        expect(row).to_contain_text("Tracks Weekly planners")
        expect(row).to_contain_text("30")  # the measure's latest value
        expect(row).to_contain_text("50 %")  # (30 - 10) / (50 - 10)
        expect(page.locator("table.history")).to_contain_text("tracks measure “Weekly planners”")

        # The measure's page lists the goal that tracks it.
        row.get_by_role("link", name="Weekly planners").click()
        expect(page.get_by_test_id("measure-title")).to_have_text("Weekly planners")
        goals = page.get_by_test_id("tracking-goals")
        expect(goals.get_by_role("link", name="Teams plan every week")).to_be_visible()
        expect(goals).to_contain_text("50 %")

        # And back: a new goal from the measure comes with a target already linked to it.
        goals.get_by_test_id("goal-from-measure").click()
        expect(page.get_by_label(re.compile(r"^Tracks Value measure"))).to_have_value(
            re.compile(r"^\d+$")
        )
        expect(page.get_by_label(re.compile(r"^Target measure"))).to_have_value("Weekly planners")
        page.get_by_label(re.compile(r"^Baseline")).fill("30")
        page.get_by_label(re.compile(r"^Target value")).fill("60")
        _new_goal(page, "Twice the weekly planners")
        expect(
            page.locator("#targets").get_by_role("row").filter(has_text="Weekly planners")
        ).to_contain_text("Tracks Weekly planners")
        page.locator("#targets").get_by_role("link", name="Weekly planners").click()
        expect(page.get_by_test_id("tracking-goals").get_by_role("link")).to_have_count(2)
