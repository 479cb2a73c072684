"""Real-browser tests: Debian's Chromium, driven by Playwright, against the production server.

The server is started exactly as an operator would (`truenorth demo`, then `truenorth serve`, i.e.
gunicorn) on a fresh SQLite database in a temporary data directory, once per test session and shared by
the browser tests that use the demo (`live_server_url` in tests/conftest.py). These tests never touch
Django's test database; they only talk HTTP to that server.

Every page a test opens is watched (tests/browsing.py): a request to anything but the server itself (a
CDN, a font host) or an error in the browser console (which is where Content-Security-Policy violations
appear) fails the test when its page is closed.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.browsing import ADMIN, DEMO_PASSWORD, MEMBER, OWNER, SHOTS, STAKEHOLDER, Session, sign_in

pytestmark = pytest.mark.browser


def api_status(base_url: str, path: str, token: str) -> int:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            json.load(response)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# --- the tests -------------------------------------------------------------------------------------


def test_owner_signs_in_and_switches_organisation(web: Session) -> None:
    page = web.page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    sign_in(web, OWNER)

    title = page.get_by_test_id("dashboard-title")
    expect(title, "a first sign-in lands on the demo's main organisation").to_have_text("Acme Outdoor")
    expect(page).to_have_url(web.url("/o/acme/"))

    switcher = page.get_by_test_id("org-switcher")
    summary = switcher.locator("summary")
    expect(summary).to_have_text(re.compile(r"^Acme Outdoor"))
    # The switcher is a <details> dropdown: click opens it, Escape closes it again (app.js).
    summary.click()
    expect(switcher).to_have_attribute("open", "")
    labs = switcher.get_by_role("link", name=re.compile(r"^Acme Labs"))
    expect(labs).to_be_visible()
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")
    expect(labs).to_be_hidden()

    summary.click()
    labs.click()
    expect(title).to_have_text("Acme Labs")
    expect(page).to_have_url(web.url("/o/acme-labs/"))
    expect(summary).to_have_text(re.compile(r"^Acme Labs"))
    expect(switcher.locator("a[aria-current='true']")).to_have_text(re.compile(r"^Acme Labs"))

    # Home sends you back to the organisation you used last.
    page.goto("/")
    expect(page).to_have_url(web.url("/o/acme-labs/"))
    expect(title).to_have_text("Acme Labs")
    page.reload()
    expect(title).to_have_text("Acme Labs")


def test_wrong_password_stays_on_login_page_with_an_error(web: Session) -> None:
    page = web.page
    sign_in(web, MEMBER, "not-the-password")
    expect(page).to_have_url(web.url("/accounts/login/"))
    error = page.get_by_role("alert")
    expect(error).to_contain_text("E-mail address or password is wrong.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("dashboard-title")).to_have_count(0)
    # The address is kept, the password is not sent back.
    expect(page.get_by_label("E-mail address")).to_have_value(MEMBER)
    expect(page.get_by_label("Password")).to_have_value("")


def test_sign_in_with_the_keyboard_only(web: Session) -> None:
    page = web.page
    page.goto("/accounts/login/")
    email = page.get_by_label("E-mail address")
    expect(email).to_be_focused()  # autofocus
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Acme Outdoor")

    # The first Tab on a page reaches the skip link, which moves focus to the main content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_api_token_is_shown_once_and_can_be_revoked(web: Session) -> None:
    page = web.page
    sign_in(web, OWNER)
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()

    page.goto("/accounts/tokens/")
    name = f"browser {uuid.uuid4().hex[:8]}"
    page.get_by_label("Token name").fill(name)
    page.get_by_label("Scope").select_option(label="Read only")
    page.get_by_role("button", name="Create token").click()

    shown = page.get_by_test_id("new-token")
    expect(shown).to_be_visible()
    secret = shown.inner_text().strip()
    assert secret.startswith("tn_"), secret
    row = page.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("Read only")
    assert api_status(web.base_url, "/api/v1/me", secret) == 200

    # Coming back to the page (a fresh GET, not a re-POST of the form) never shows it again.
    page.goto("/accounts/tokens/")
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    assert secret not in page.content()
    expect(row).to_have_count(1)

    row.get_by_role("button", name=f"Revoke token {name}").click()
    expect(page).to_have_url(web.url("/accounts/tokens/"))
    expect(page.get_by_role("status").filter(has_text="revoked")).to_be_visible()
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name=re.compile("Revoke"))).to_have_count(0)
    assert api_status(web.base_url, "/api/v1/me", secret) == 401


def test_reloading_after_creating_a_token_creates_no_second_token(web: Session) -> None:
    """The page that shows a new secret must not re-create a token when the browser reloads it."""
    page = web.page
    sign_in(web, OWNER)
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()
    page.goto("/accounts/tokens/")
    name = f"reload {uuid.uuid4().hex[:8]}"
    page.get_by_label("Token name").fill(name)
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token")).to_be_visible()

    page.reload()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text=name)).to_have_count(1)


def test_stakeholder_cannot_invite_or_see_other_organisations(web: Session) -> None:
    page = web.page
    sign_in(web, STAKEHOLDER)
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Acme Outdoor")
    expect(page.get_by_text("you are stakeholder")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page).to_have_url(web.url("/o/acme/members/"))
    expect(page.get_by_role("heading", name="Members of Acme Outdoor")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=OWNER)).to_be_visible()
    expect(page.get_by_role("heading", name="Invite someone")).to_have_count(0)
    expect(page.get_by_role("button", name="Send invitation")).to_have_count(0)
    expect(page.get_by_role("combobox")).to_have_count(0)  # no role pickers
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    expect(page.get_by_role("button", name="Leave")).to_have_count(1)

    # Another organisation's pages do not exist for a non-member.
    # Chromium logs every 404 document as a console error; allow it for these pages only.
    web.watch.allow_error(r"status of 404 .*\(" + re.escape(web.url("/o/acme-labs/")))
    response = page.goto("/o/acme-labs/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("Acme Labs")).to_have_count(0)
    response = page.goto("/o/acme-labs/members/")
    assert response is not None
    assert response.status == 404


def test_dashboard_screenshots_desktop_and_mobile(web: Session) -> None:
    """Screenshots for a human to look at; only layout overflow is asserted, never pixels."""
    page = web.page
    sign_in(web, OWNER)
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()
    page.goto("/o/acme/")
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Acme Outdoor")
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.screenshot(path=str(SHOTS / "dashboard-1280x800.png"))
    page.get_by_test_id("org-switcher").locator("summary").click()
    page.screenshot(path=str(SHOTS / "dashboard-1280x800-switcher.png"))
    page.keyboard.press("Escape")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()
    page.screenshot(path=str(SHOTS / "dashboard-390x844.png"))
    page.screenshot(path=str(SHOTS / "dashboard-390x844-full.png"), full_page=True)
    page.get_by_test_id("org-switcher").locator("summary").click()
    page.screenshot(path=str(SHOTS / "dashboard-390x844-switcher.png"))
    page.keyboard.press("Escape")
    page.locator("summary", has_text="account menu").click()
    page.screenshot(path=str(SHOTS / "dashboard-390x844-account.png"))

    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390, f"the mobile dashboard scrolls sideways ({scroll_width}px wide)"
    # The assets really came from the server itself (and the request log works).
    assert any("/static/vendor/pico/" in url for url in web.watch.requests), web.watch.requests


def test_content_security_policy_blocks_other_hosts(web: Session) -> None:
    """A script trying to reach another host is refused by the CSP, and the console shows it."""
    page = web.page
    response = page.goto("/accounts/login/")
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    web.watch.allow_error(r"Content Security Policy.*cdn\.example\.com|cdn\.example\.com.*Content Security")
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text) as message:
        outcome = page.evaluate(
            """() => fetch("https://cdn.example.com/x.js").then(() => "loaded", () => "refused")"""
        )
    assert outcome == "refused"
    assert message.value.type == "error"
    assert "connect-src 'self'" in message.value.text
    assert not any("example.com" in url for url in web.watch.requests), web.watch.requests
