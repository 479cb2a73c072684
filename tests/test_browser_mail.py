"""Real-browser test of the mail pages on the demo server: a member changes their e-mail settings from
the account menu and previews their digest; an admin sees the demo's reminder and digest in the outbox."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browsing import ADMIN, MEMBER, Session, signed_in, watched

pytestmark = pytest.mark.browser


def test_member_settings_and_admin_outbox(web: Session, browser: Browser, live_server_url: str) -> None:
    page = signed_in(web, MEMBER)
    page.locator("summary", has_text="account menu").click()
    page.get_by_role("link", name="E-mail notifications").click()
    expect(page.get_by_role("heading", name=re.compile("^E-mail notifications"))).to_be_visible()
    page.get_by_label("Digest day").select_option(label="Thursday")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Notification settings saved.")).to_be_visible()
    expect(page.get_by_label("Digest day")).to_have_value("3")
    page.get_by_role("link", name="Preview your digest now").click()
    expect(page.get_by_role("heading", name=re.compile("^Your digest"))).to_be_visible()

    with watched(browser, live_server_url) as other:
        admin = signed_in(other, ADMIN)
        admin.goto("/o/acme/engagement/outbox/")
        table = admin.locator("table.outbox")
        expect(table.get_by_text("Check-in reminder").first).to_be_visible()
        expect(table.get_by_text("Weekly digest").first).to_be_visible()
        admin.goto("/o/acme/engagement/outbox/?status=failed")
        expect(admin.get_by_text("No e-mail with this status.")).to_be_visible()
