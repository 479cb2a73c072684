"""Real-browser test of two-factor sign-in on the demo server: a new person sets up an authenticator
(the key read from the page, codes computed with pyotp as an app would), signs out, signs in with the
password and a code, then with a recovery code; an admin requires it for an organisation and a member
without it is sent to set it up. Each test makes its own people and organisation (the server is shared)."""

from __future__ import annotations

import re
import time
import uuid

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browsing import Session, watched

pytestmark = pytest.mark.browser

PASSWORD = "Tw0-factor-north-star"


def _sign_up(page: Page, email: str, organisation: str = "", next_path: str = "") -> None:
    page.goto("/accounts/signup/" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Your name").fill(email.split("@")[0])
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if organisation:
        page.get_by_label("Organisation name").fill(organisation)
    page.get_by_role("button", name="Sign up").click()


def _sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _sign_out(page: Page) -> None:
    page.locator("summary", has_text="account menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _set_up(page: Page) -> tuple[pyotp.TOTP, list[str]]:
    """On the set-up page: scan (read the key), enter the current code, read the recovery codes."""
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.get_by_test_id("two-factor-secret").inner_text().replace(" ", "")
    app = pyotp.TOTP(secret)
    page.get_by_label("Code").fill(app.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    # all_inner_texts() does not wait: read the codes once the next page shows them.
    expect(page.get_by_test_id("recovery-codes").locator("code")).to_have_count(10)
    codes = page.get_by_test_id("recovery-codes").locator("code").all_inner_texts()
    assert len(set(codes)) == 10
    return app, codes


def test_set_up_then_sign_in_with_a_code_and_with_a_recovery_code(web: Session) -> None:
    page = web.page
    tag = uuid.uuid4().hex[:8]
    email = f"otp-{tag}@example.com"
    _sign_up(page, email, organisation=f"Second Factor {tag}")
    expect(page.get_by_test_id("dashboard-title")).to_have_text(f"Second Factor {tag}")

    page.locator("summary", has_text="account menu").click()
    page.get_by_role("link", name="Two-factor sign-in").click()
    app, codes = _set_up(page)
    page.get_by_role("link", name="Back to two-factor sign-in").click()
    expect(page.get_by_test_id("two-factor-on")).to_contain_text("10 unused recovery codes")
    _sign_out(page)

    _sign_in(page, email)
    expect(page.get_by_role("heading", name="Sign in: second step")).to_be_visible()
    page.get_by_label("Code").fill(app.at(time.time() + 30))  # the next step: the set-up used this one
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_test_id("dashboard-title")).to_have_text(f"Second Factor {tag}")
    _sign_out(page)

    _sign_in(page, email)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_test_id("dashboard-title")).to_be_visible()
    expect(page.get_by_text("You signed in with a recovery code; 9 left.")).to_be_visible()


def test_an_admin_requires_it_and_a_member_is_sent_to_set_it_up(
    web: Session, browser: Browser, live_server_url: str
) -> None:
    owner = web.page
    tag = uuid.uuid4().hex[:8]
    org_name = f"Strict Org {tag}"
    _sign_up(owner, f"strict-owner-{tag}@example.com", organisation=org_name)
    expect(owner.get_by_test_id("dashboard-title")).to_have_text(org_name)
    slug = owner.url.rstrip("/").rsplit("/", 1)[-1]

    member_email = f"strict-member-{tag}@example.com"
    owner.goto(f"/o/{slug}/members/")
    owner.get_by_label("E-mail address").fill(member_email)
    owner.get_by_role("button", name="Send invitation").click()
    invite_path = "/" + owner.get_by_test_id("invite-link").inner_text().split("/", 3)[3]

    with watched(browser, live_server_url) as other:
        member = other.page
        _sign_up(member, member_email, next_path=invite_path)
        member.get_by_role("button", name="Accept and join").click()
        expect(member.get_by_test_id("dashboard-title")).to_have_text(org_name)

        owner.goto(f"/o/{slug}/settings/")
        owner.get_by_label("Require two-factor sign-in").check()
        owner.get_by_role("button", name="Save").click()
        # The owner has no authenticator either: the next page of the organisation is the set-up page.
        expect(owner).to_have_url(re.compile(r"/accounts/two-factor/\?org="))
        _set_up(owner)
        owner.goto(f"/o/{slug}/settings/")
        expect(owner.get_by_label("Require two-factor sign-in")).to_be_checked()

        member.goto(f"/o/{slug}/")
        expect(member).to_have_url(re.compile(r"/accounts/two-factor/\?org="))
        expect(member.get_by_test_id("two-factor-required")).to_contain_text(slug)
        expect(member.get_by_text("This organisation requires two-factor sign-in")).to_be_visible()
        _set_up(member)
        member.goto(f"/o/{slug}/")
        expect(member.get_by_test_id("dashboard-title")).to_have_text(org_name)
