"""Real-browser test of the webhook pages on the demo (tests/conftest.py: the demo served by
`truenorth serve`, the session's Chromium, a watched context that fails on CSP violations and console
errors): the admin sees the demo's Slack webhook with its delivery log (one delivered, one that failed
with HTTP 503 and was delivered on the retry), opens the delivery's attempts, and a webhook to a private
address is refused on the form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browsing import ADMIN, MEMBER, Session, signed_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/truenorth-shots/engagement")


def test_webhook_log_shows_a_retried_failure_and_private_addresses_are_refused(web: Session) -> None:
    page = signed_in(web, ADMIN)
    page.goto("/o/acme/engagement/webhooks/")
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    expect(page.get_by_test_id("webhook-list")).to_contain_text("Slack #product-updates")
    log = page.get_by_test_id("delivery-log")
    expect(log.get_by_role("row").filter(has_text="proposal.accepted")).to_contain_text("Delivered")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "webhooks-1280x800.png"), full_page=True)
    log.get_by_role("row").filter(has_text="proposal.accepted").get_by_role("link").first.click()
    attempts = page.get_by_test_id("attempts")
    expect(attempts.get_by_role("row")).to_have_count(3)  # the header and two attempts
    expect(attempts).to_contain_text("HTTP 503")
    expect(attempts).to_contain_text("HTTP 200")
    page.screenshot(path=str(SHOTS / "webhook-delivery-1280x800.png"), full_page=True)

    page.goto("/o/acme/engagement/webhooks/")
    web.watch.allow_error(r"status of 422")  # the refused form answers 422
    page.get_by_label(re.compile(r"^Name")).fill("Internal")
    page.get_by_label(re.compile(r"^URL")).fill("http://10.0.0.5/hook")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_text(re.compile(r"10\.0\.0\.5, a private address"))).to_be_visible()


def test_members_see_no_webhook_url(web: Session) -> None:
    page = signed_in(web, MEMBER)
    page.goto("/o/acme/engagement/webhooks/")
    expect(page.get_by_test_id("webhook-list")).to_contain_text("https://hooks.example.com/…")
    expect(page.get_by_test_id("webhook-list")).not_to_contain_text("demo-not-a-real-token")
    expect(page.get_by_role("button", name="Add webhook")).to_have_count(0)
