"""Fixtures of the end-to-end tests: one Chromium per test session, a fresh browser context per test,
and the demo served by the real `truenorth serve`.

One Chromium per session (per pytest-xdist worker): Debian's, launched by Playwright's sync API in the
main thread when the first browser test asks for it. Every test gets a context of its own (no cookies,
no storage shared with another test) from `watched` (tests/browsing.py) or the `web` fixture.

Playwright's sync API marks its event loop as running in this thread between its calls, so Django would
refuse database access (SynchronousOnlyOperation) and asyncio.run() would refuse to start in whatever
test runs next in the process. `browser` marks it for the duration of one test only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests import live_server
from tests.browsing import CHROMIUM, CHROMIUM_ARGS, STARTUP_TIMEOUT, Session, watched


@pytest.fixture(scope="session")
def _chromium() -> Iterator[tuple[Browser, asyncio.AbstractEventLoop]]:
    """Chromium and the event loop of the Playwright that drives it; the loop is left unmarked."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        loop = asyncio.events._get_running_loop()
        assert loop is not None, "Playwright's sync API marks its loop as running between calls"
        asyncio.events._set_running_loop(None)
        try:
            yield browser, loop
        finally:
            asyncio.events._set_running_loop(loop)
            browser.close()


@pytest.fixture
def browser(_chromium: tuple[Browser, asyncio.AbstractEventLoop]) -> Iterator[Browser]:
    """The session's Chromium, for one test: open contexts with `watched(browser, base_url)`."""
    chromium, loop = _chromium
    asyncio.events._set_running_loop(loop)
    try:
        yield chromium
    finally:
        asyncio.events._set_running_loop(None)


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`truenorth demo` then `truenorth serve` on a free loopback port, once per session (per xdist
    worker that runs a test needing it), on a fresh SQLite database in a temporary data directory; yields
    the base URL. Tests share it, so each creates what it changes under a name of its own."""
    data_dir = tmp_path_factory.mktemp("truenorth-browser")
    env = live_server.server_env(data_dir, f"sqlite:///{data_dir / 'db.sqlite3'}")

    demo = live_server.run(["demo"], env, timeout=120, cwd=data_dir)
    if demo.returncode != 0:
        pytest.fail(f"`truenorth demo` failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")

    port = live_server.free_port()
    base_url = f"http://{live_server.HOST}:{port}"
    log_path = data_dir / "server.log"
    proc = live_server.start_server(port, 1, env, data_dir, log_path)
    try:
        live_server.wait_until_healthy(base_url, [proc], STARTUP_TIMEOUT, log_path.read_text)
        yield base_url
    finally:
        live_server.stop(proc)


@pytest.fixture
def web(browser: Browser, live_server_url: str) -> Iterator[Session]:
    """A fresh, watched browser context on the demo server (`watched`)."""
    with watched(browser, live_server_url) as session:
        yield session
