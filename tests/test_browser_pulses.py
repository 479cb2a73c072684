"""Real-browser test of an alignment pulse answered through its one-time link, without an account.

Its own server (`truenorth demo`, then `truenorth pulse send --pulse ID` opens a new round of the demo's
Trail App pulse and queues its invitations, then `truenorth serve`): the link is read from an invitation
e-mail as the outbox recorded it. The person opens the link in a fresh browser (no sign-in), answers,
sees the thank-you page; the same link then says it was used, and a made-up link does not work. The
owner then sees the demo's two completed rounds: the index, the trend chart and a hidden group.
Same watching as tests/test_browser.py (foreign requests and console errors fail the test).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests import live_server
from tests.browsing import OWNER, STARTUP_TIMEOUT, signed_in, watched

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/truenorth-shots/engagement")
LINK = re.compile(r"https?://[^\s]+/pulse/([A-Za-z0-9_-]+)/")


@pytest.fixture(scope="module")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo with a freshly opened pulse round; yields (base URL, one invitation's link path)."""
    data_dir = tmp_path_factory.mktemp("truenorth-pulses")
    database = data_dir / "db.sqlite3"
    env = live_server.server_env(data_dir, f"sqlite:///{database}")
    demo = live_server.run(["demo"], env, timeout=180, cwd=data_dir)
    if demo.returncode != 0:
        pytest.fail(f"`truenorth demo` failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")
    with sqlite3.connect(database) as db:
        (pulse_id,) = db.execute("SELECT id FROM engagement_pulse ORDER BY id LIMIT 1").fetchone()
    sent = live_server.run(
        ["pulse", "send", "--pulse", str(pulse_id), "--json", "--org", "acme", "--as", OWNER],
        env,
        timeout=60,
        cwd=data_dir,
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)[0]["round"] == 3
    with sqlite3.connect(database) as db:
        (text,) = db.execute(
            "SELECT text FROM engagement_outgoingemail WHERE kind = 'pulse' ORDER BY id LIMIT 1"
        ).fetchone()
    match = LINK.search(text)
    assert match, text
    port = live_server.free_port()
    base_url = f"http://{live_server.HOST}:{port}"
    log_path = data_dir / "server.log"
    proc = live_server.start_server(port, 1, env, data_dir, log_path)
    try:
        live_server.wait_until_healthy(base_url, [proc], 3 * STARTUP_TIMEOUT, log_path.read_text)
        yield base_url, f"/pulse/{match.group(1)}/"
    finally:
        live_server.stop(proc)


def test_a_pulse_answered_through_its_link(pulse_server: tuple[str, str], browser: Browser) -> None:
    base_url, link = pulse_server
    with watched(browser, base_url) as web:
        page = web.page
        page.goto(link)
        expect(page.get_by_role("heading", name="Trail App alignment pulse")).to_be_visible()
        form = page.get_by_test_id("answer-form")
        # Sent without a clarity score: the form says so and the link still works.
        form.get_by_label(re.compile(r"^In your own words")).fill(
            "Double the hikers who plan weekend trips in the app"
        )
        form.get_by_role("button", name="Send my answer").click()
        expect(page.get_by_text("This field is required.").first).to_be_visible()
        form = page.get_by_test_id("answer-form")
        form.get_by_role("group", name=re.compile(r"^How clear")).get_by_label("4").check()
        form.get_by_role("group", name=re.compile(r"^How committed")).get_by_label("5").check()
        form.get_by_label(re.compile(r"^How does your work contribute")).fill("I plan the routes we publish.")
        form.get_by_label(re.compile(r"^Your team or department")).select_option("Trail Team")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "pulse-answer-1280x800.png"), full_page=True)
        form.get_by_role("button", name="Send my answer").click()
        expect(page.get_by_test_id("pulse-thanks")).to_have_text("Thank you")

        # The same link again: used. A made-up link: does not work (the same page for any unknown link).
        web.watch.allow_error(r"status of 4(04|10)")
        page.goto(link)
        expect(page.get_by_test_id("pulse-link-problem")).to_have_text("This link can no longer be used")
        expect(page.get_by_text("already been used")).to_be_visible()
        expect(page.get_by_test_id("answer-form")).to_have_count(0)
        page.goto("/pulse/not-a-real-link-at-all/")
        expect(page.get_by_test_id("pulse-link-problem")).to_have_text("This link does not work")

    with watched(browser, base_url) as web:
        page = signed_in(web, OWNER)
        page.goto("/o/acme/engagement/pulses/")
        page.get_by_role("link", name="Trail App alignment pulse").click()
        rounds = page.get_by_test_id("rounds")
        expect(rounds.get_by_role("row").filter(has_text="#3")).to_contain_text("1")  # the answer just given
        page.get_by_role("link", name="#2").click()
        expect(page.get_by_test_id("alignment-index")).to_contain_text("Alignment index")
        expect(page.get_by_test_id("groups")).to_contain_text("hidden: fewer than 5 answers")
        expect(page.get_by_test_id("divergent")).to_contain_text("Ship the redesign of the map screen.")
        expect(
            page.locator("[data-testid=pulse-trend] svg, [data-testid=pulse-trend] canvas").first
        ).to_be_visible()
        page.screenshot(path=str(SHOTS / "pulse-results-1280x800.png"), full_page=True)
