"""What every browser test shares: the Chromium it drives, the demo's people, a watched page, signing in.

The fixtures that start things (the one Chromium, the demo server, a test's fresh context) are in
tests/conftest.py; this module is what tests import by name.

Every page a test opens is watched: a request to anything but the server itself (a CDN, a font host)
or an error in the browser console (which is where Content-Security-Policy violations appear) fails the
test when its page is closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

CHROMIUM = "/usr/bin/chromium"  # Debian's
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_PASSWORD = "north-star-demo"
OWNER = "owner@demo.truenorth.local"
ADMIN = "admin@demo.truenorth.local"
MEMBER = "member@demo.truenorth.local"
STAKEHOLDER = "stakeholder@demo.truenorth.local"
SHOTS = Path("/tmp/truenorth-shots")  # screenshots for a human to look at (never compared)
STARTUP_TIMEOUT = 90.0  # migrate, collectstatic and the demo (four pillars) on a busy 2-core machine


@dataclass
class Watch:
    """What the browser did: every request and every console error, checked when the page closes."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    allowed_errors: list[re.Pattern[str]] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Exception) -> None:
        self.console_errors.append(f"uncaught: {error}")

    def allow_error(self, pattern: str) -> None:
        """Expect a console error matching `pattern` (e.g. Chromium's note about a 404 page)."""
        self.allowed_errors.append(re.compile(pattern))

    def problems(self) -> list[str]:
        own = self.base_url + "/"
        foreign = [
            f"request to a non-loopback or foreign host: {url}"
            for url in self.requests
            if not (url.startswith(own) or url.startswith(("data:", "about:")))
        ]
        errors = [
            f"console error: {text}"
            for text in self.console_errors
            if not any(p.search(text) for p in self.allowed_errors)
        ]
        return foreign + errors


@dataclass
class Session:
    page: Page
    watch: Watch
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def watched(browser: Browser, base_url: str) -> Iterator[Session]:
    """A fresh browser context (no cookies) on `base_url` with one watched page, 1280x800; closed
    afterwards, then the test fails if the page saw foreign requests or console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base_url)
    context.set_default_timeout(10_000)
    watch = Watch(base_url)
    context.on("request", watch.on_request)
    context.on("console", watch.on_console)
    page = context.new_page()
    page.on("pageerror", watch.on_page_error)
    try:
        yield Session(page, watch, base_url)
    finally:
        context.close()
    problems = watch.problems()
    if problems:
        pytest.fail("the browser saw problems:\n" + "\n".join(problems))


def sign_in(web: Session, email: str, password: str = DEMO_PASSWORD) -> None:
    page = web.page
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in(web: Session, email: str) -> Page:
    """Sign in as `email` (a demo person) and wait for the dashboard."""
    sign_in(web, email)
    expect(web.page.get_by_test_id("dashboard-title")).to_be_visible()
    return web.page
