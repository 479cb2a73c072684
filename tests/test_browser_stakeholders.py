"""Real-browser test of the stakeholder map on the demo (tests/conftest.py: the demo served by
`truenorth serve`, the session's Chromium, a watched context that fails on CSP violations and console
errors): the page loads, vega-embed draws the map as SVG with the four quadrant names, and a stakeholder
with an engagement gap is drawn in the gap colour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browsing import STAKEHOLDER, Session, signed_in
from truenorth.engagement.charts import GAP_COLOUR, ON_TARGET_COLOUR

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/truenorth-shots/engagement")


def test_stakeholder_map_draws_quadrants_and_highlights_a_gap(web: Session) -> None:
    page = signed_in(web, STAKEHOLDER)  # the stakeholder role reads the map too
    page.goto("/o/acme/engagement/stakeholders/")
    expect(page.get_by_role("heading", name="Stakeholders", exact=True)).to_be_visible()
    chart = page.get_by_test_id("stakeholder-map")
    expect(chart).to_have_class(re.compile(r"chart-ready"))
    svg = chart.locator("svg").first
    expect(svg).to_be_visible()
    for name in ("Manage closely", "Keep satisfied", "Keep informed", "Monitor"):
        expect(svg.locator("text", has_text=name).first).to_be_visible()
    # Marcus Webb (security) is resistant and should be supportive: a gap of two steps.
    marcus = chart.locator('[aria-roledescription="point"][aria-label*="Marcus Webb"]')
    expect(marcus).to_have_count(1)
    expect(marcus).to_have_attribute("aria-label", re.compile(r"resistant → supportive, gap of 2 steps"))
    assert marcus.get_attribute("fill") == GAP_COLOUR
    # Tom Becker (support) is where we need him: no gap, the calm colour.
    tom = chart.locator('[aria-roledescription="point"][aria-label*="Tom Becker"]')
    assert tom.get_attribute("fill") == ON_TARGET_COLOUR
    # The accessible table says the same.
    row = page.get_by_test_id("stakeholder-table").get_by_role("row").filter(has_text="Marcus Webb")
    expect(row).to_contain_text("Resistant → Supportive")
    expect(row).to_contain_text("2 steps")
    expect(page.get_by_test_id("overdue-table")).to_contain_text("Marcus Webb")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "stakeholders-1280x800.png"), full_page=True)
