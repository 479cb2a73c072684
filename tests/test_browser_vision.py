"""Real-browser tests of the Vision pages: a goal written by its owner, improved by a stakeholder's
proposal, accepted by the owner; the goal tree opened with the mouse and the keyboard.

Same server and browser as tests/test_browser.py (the demo served by `truenorth serve`, the session's
Chromium, a fresh context per person: tests/conftest.py); every page is watched for foreign requests and
console errors (CSP violations).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browsing import OWNER, STAKEHOLDER, signed_in, watched

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/truenorth-shots/vision")


def _new_product(page: Page) -> str:
    name = f"Trail {uuid.uuid4().hex[:6]}"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
    expect(page.get_by_role("heading", name="Products", exact=True)).to_be_visible()
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_label(re.compile(r"^Vision")).fill("Every hiker home safe.")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_test_id("product-title")).to_have_text(name)
    return name


def _new_goal(
    page: Page, title: str, *, outcome: str = "", target: tuple[str, str, str] | None = None
) -> str:
    page.get_by_label(re.compile(r"^Title")).fill(title)
    if outcome:
        page.get_by_label(re.compile(r"^Outcome")).fill(outcome)
    page.get_by_label(re.compile(r"^Target date")).fill("2027-06-30")
    if target:
        page.get_by_label(re.compile(r"^Target measure")).fill(target[0])
        page.get_by_label(re.compile(r"^Baseline")).fill(target[1])
        page.get_by_label(re.compile(r"^Target value")).fill(target[2])
    page.get_by_role("button", name="Create goal").click()
    expect(page.get_by_test_id("goal-title")).to_have_text(title)
    return page.url


def test_owner_writes_a_goal_stakeholder_proposes_owner_accepts(
    live_server_url: str, browser: Browser
) -> None:
    with watched(browser, live_server_url) as web, watched(browser, live_server_url) as other:
        page = signed_in(web, OWNER)
        _new_product(page)
        page.get_by_role("button", name="New strategic goal").click()
        goal_url = _new_goal(
            page,
            "Hikers trust our routes",
            outcome="Hikers plan trips with us because our routes are right.",
            target=("Route accuracy", "80", "95"),
        )
        expect(
            page.locator("#targets").get_by_role("row").filter(has_text="Route accuracy")
        ).to_contain_text("80 → 95")
        expect(page.get_by_role("status").filter(has_text="created")).to_be_visible()

        # The stakeholder, in their own browser context, proposes better wording.
        spage = signed_in(other, STAKEHOLDER)
        spage.goto(goal_url)
        expect(spage.get_by_text("Edit goal")).to_have_count(0)
        expect(spage.get_by_role("button", name="Check in")).to_have_count(0)
        proposals = spage.locator("#proposals")
        proposals.locator("summary", has_text="Propose a change").click()
        proposals.get_by_label(re.compile(r"^Title")).fill("Hikers trust every route we publish")
        proposals.get_by_label(re.compile(r"^New target for Route accuracy")).fill("98")
        proposals.get_by_label(re.compile(r"^Why")).fill("Say what hikers feel; aim higher.")
        proposals.get_by_role("button", name="Propose change").click()
        expect(spage.get_by_role("status").filter(has_text="Change proposed")).to_be_visible()
        expect(spage.get_by_test_id("open-proposal")).to_contain_text(
            "Hikers trust every route we publish"
        )
        expect(spage.get_by_test_id("open-proposal").get_by_role("button", name="Accept")).to_have_count(
            0
        )

        # The owner sees it (and a notification) and accepts it.
        page.goto(goal_url)
        expect(page.get_by_test_id("nav-notifications")).to_contain_text(re.compile(r"\d+\s*unread"))
        proposal = page.get_by_test_id("open-proposal")
        expect(proposal).to_contain_text("Target of Route accuracy → 98")
        expect(proposal).not_to_contain_text("Target date")  # only what the stakeholder changed
        proposal.get_by_role("button", name="Accept").click()
        expect(page.get_by_role("status").filter(has_text="Proposal accepted")).to_be_visible()
        expect(page.get_by_test_id("goal-title")).to_have_text("Hikers trust every route we publish")
        expect(
            page.locator("#targets").get_by_role("row").filter(has_text="Route accuracy")
        ).to_contain_text("80 → 98")
        decided = page.get_by_test_id("decided-proposals")
        expect(decided).to_contain_text("Accepted")
        expect(decided).to_contain_text("Title → Hikers trust every route we publish")
        expect(page.get_by_test_id("open-proposal")).to_have_count(0)
        expect(page.locator("table.history")).to_contain_text("Hikers trust every route we publish")
        expect(page.locator("time[datetime='2027-06-30']")).to_be_visible()  # the date survived


def test_goal_tree_opens_lazily_with_mouse_and_keyboard(live_server_url: str, browser: Browser) -> None:
    with watched(browser, live_server_url) as web:
        page = signed_in(web, OWNER)
        _new_product(page)
        page.get_by_role("button", name="New strategic goal").click()
        _new_goal(page, "Reach every summit")
        page.get_by_role("button", name="Add sub-goal").click()
        _new_goal(page, "Map the northern ridge")
        page.get_by_role("button", name="Add sub-goal").click()
        _new_goal(page, "Survey ridge trail 7")
        page.locator(".breadcrumb").get_by_role("link", name=re.compile(r"^Trail ")).click()

        tree = page.locator("#tree [data-goal-tree]")
        toggle = tree.get_by_role("button", name="Sub-goals of Reach every summit")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(tree.get_by_role("link", name="Map the northern ridge")).to_be_hidden()
        toggle.click()  # htmx loads the children
        expect(toggle).to_have_attribute("aria-expanded", "true")
        child = tree.get_by_role("link", name="Map the northern ridge")
        expect(child).to_be_visible()
        toggle.click()
        expect(child).to_be_hidden()

        # Keyboard: → opens, ↓ moves to the first child, → opens it (loading its children), ← goes back.
        root = tree.get_by_role("link", name="Reach every summit")
        root.focus()
        page.keyboard.press("ArrowRight")
        expect(child).to_be_visible()
        page.keyboard.press("ArrowDown")
        expect(child).to_be_focused()
        page.keyboard.press("ArrowRight")
        grandchild = tree.get_by_role("link", name="Survey ridge trail 7")
        expect(grandchild).to_be_visible()
        page.keyboard.press("ArrowDown")
        expect(grandchild).to_be_focused()
        page.keyboard.press("ArrowLeft")  # a leaf: to its parent
        expect(child).to_be_focused()
        page.keyboard.press("ArrowLeft")  # open: close it
        expect(grandchild).to_be_hidden()
        page.keyboard.press("ArrowUp")
        expect(root).to_be_focused()

        # Screenshots for a human to look at; only sideways overflow on a phone is asserted.
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.keyboard.press("ArrowRight")
        page.screenshot(path=str(SHOTS / "product-1280x800.png"), full_page=True)
        child.click()
        expect(page.get_by_test_id("goal-title")).to_have_text("Map the northern ridge")
        page.screenshot(path=str(SHOTS / "goal-1280x800.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        for path in (page.url, web.url("/o/acme/products/"), web.url("/o/acme/alignment/")):
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} scrolls sideways on a phone ({width}px wide)"
        page.goto(web.url("/o/acme/"))
        page.screenshot(path=str(SHOTS / "dashboard-390x844.png"), full_page=True)


def test_editing_only_a_goals_outcome_keeps_its_target_date(live_server_url: str, browser: Browser) -> None:
    """The edit form used to render the date as 30/06/2027, which a date input shows empty: saving
    erased it."""

    with watched(browser, live_server_url) as web:
        page = signed_in(web, OWNER)
        _new_product(page)
        page.get_by_role("button", name="New strategic goal").click()
        _new_goal(page, "Hikers find water", outcome="Every route lists its springs.")
        page.get_by_role("button", name="Edit goal").click()
        date = page.get_by_label(re.compile(r"^Target date"))
        expect(date).to_have_value("2027-06-30")
        page.get_by_label(re.compile(r"^Outcome")).fill("Every route lists its springs, and when they run dry.")
        page.get_by_role("button", name="Save goal").click()
        expect(page.get_by_role("status").filter(has_text="Goal saved")).to_be_visible()
        expect(page.locator("time[datetime='2027-06-30']")).to_be_visible()
        page.get_by_role("button", name="Edit goal").click()
        expect(page.get_by_label(re.compile(r"^Outcome"))).to_have_value(
            "Every route lists its springs, and when they run dry."
        )
        expect(date).to_have_value("2027-06-30")
