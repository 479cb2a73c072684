"""Real-browser test of search: "/" jumps to the navigation's search box, typing and Enter lists ranked
results (a title match above a match in the text), the arrow keys reach the results and Enter opens one.

Same server, browser and watching (foreign requests, console errors, CSP) as tests/test_browser_vision.py.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browsing import OWNER, signed_in, watched
from tests.test_browser_vision import _new_goal, _new_product

pytestmark = pytest.mark.browser


def test_slash_focuses_search_typing_finds_ranked_results_and_enter_opens_one(
    live_server_url: str, browser: Browser
) -> None:
    word = f"zephyr{uuid.uuid4().hex[:6]}"

    with watched(browser, live_server_url) as web:
        page = signed_in(web, OWNER)
        _new_product(page)
        page.get_by_role("button", name="New strategic goal").click()
        _new_goal(page, "Hut bookings open early", outcome=f"Hikers book the {word} hut in spring.")
        goal_url = _new_goal_after(page, f"Cross the {word} glacier safely")

        page.goto(goal_url.rsplit("/o/", 1)[0] + "/")  # any page with the navigation
        page.locator("body").press("/")
        box = page.get_by_test_id("nav-search")
        expect(box).to_be_focused()
        page.keyboard.type(word)
        expect(box).to_have_value(word)  # "/" itself was not typed
        page.keyboard.press("Enter")

        results = page.get_by_test_id("search-results").get_by_role("link")
        expect(page.get_by_test_id("search-count")).to_contain_text("2 results")
        # The title match ranks first, labelled by kind, the word highlighted.
        expect(results.first).to_contain_text(f"Goal Cross the {word} glacier safely")
        expect(results.nth(1)).to_contain_text("Hut bookings open early")
        expect(page.locator("mark", has_text=word).first).to_be_visible()

        page.keyboard.press("/")  # on the results page: the box that holds the query
        expect(page.locator("#search-page-q")).to_be_focused()
        expect(page.locator("#search-page-q")).to_have_value(word)
        page.keyboard.press("ArrowDown")
        expect(results.first).to_be_focused()
        page.keyboard.press("ArrowDown")
        expect(results.nth(1)).to_be_focused()
        page.keyboard.press("ArrowUp")
        expect(results.first).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("goal-title")).to_have_text(f"Cross the {word} glacier safely")
        assert re.search(r"/o/[^/]+/goals/\d+/$", page.url), page.url


def _new_goal_after(page: Page, title: str) -> str:
    """A second strategic goal in the same product (from the product page)."""
    page.locator(".breadcrumb").get_by_role("link", name=re.compile(r"^Trail ")).click()
    page.get_by_role("button", name="New strategic goal").click()
    return _new_goal(page, title)
