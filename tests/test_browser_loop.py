"""Real-browser test of the whole loop on an EMPTY instance (issue 9, "Done when"): a product manager
signs up and creates the organisation, invites a stakeholder (who accepts in a browser of their own),
writes a goal tree, sets up a DuckDB data source and a SQL measure in the UI, links the tactical goal's
target to it, tests a hypothesis with an A/B experiment mapped to raw Parquet events, concludes it,
accepts the stakeholder's proposal and reads the lint. Every step asserts what a person sees.

Its own server and job worker (`truenorth migrate` only, no demo data; then `truenorth serve` and
`truenorth worker` through tests/live_server.py) on a fresh database: a SQLite file, or a new PostgreSQL
database when the suite runs with a PostgreSQL DATABASE_URL. Same Chromium and page watch (foreign
requests and console errors fail the test) as tests/test_browser.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import live_server
from tests.browsing import STARTUP_TIMEOUT, watched
from tests.test_browser_sources import add_duckdb_source, new_sql_measure
from tests.test_browser_vision import _new_goal

pytestmark = pytest.mark.browser

JOB_TIMEOUT_MS = 90_000  # the worker polls its queue; a loaded machine is slow
SCENARIO_TIMEOUT = 600.0  # the whole loop, on a machine shared with other test runs
SHOTS = Path("/tmp/truenorth-shots/loop")
OWNER_EMAIL = "pat@retailer.example"
STAKEHOLDER_EMAIL = "sam@retailer.example"
PASSWORD = "loop-walk-7391x"
ORG = "Northwind Retail"
PRODUCT = "Checkout"
STRATEGIC = "Shoppers finish what they start"
INTERMEDIATE = "Checkout takes under a minute"
TACTICAL = "More daily sign-ups at checkout"
TACTICAL_RENAMED = "Twice the daily sign-ups at checkout"
TARGET_DATE = "2027-06-30"  # _new_goal's date
EXPERIMENT_KEY = "one-page-checkout"


@pytest.fixture(scope="module")
def empty_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database (no demo), `truenorth serve` and `truenorth worker`; the base URL."""
    data_dir = tmp_path_factory.mktemp("truenorth-loop")
    with live_server.fresh_database_url(data_dir, "loop") as database_url:
        env = live_server.server_env(data_dir, database_url)
        migrate = live_server.run(["migrate"], env, timeout=180, cwd=data_dir)
        if migrate.returncode != 0:
            pytest.fail(f"`truenorth migrate` failed ({migrate.returncode}):\n{migrate.stdout}\n{migrate.stderr}")
        with live_server.serving_with_worker(env, data_dir, timeout=STARTUP_TIMEOUT) as base_url:
            yield base_url


def _write_signups(directory: Path) -> None:
    """A DuckDB file with a daily table: the last three days' sign-ups (10, 12, 15)."""
    today = dt.date.today()
    rows = ", ".join(
        f"('{(today - dt.timedelta(days=ago)).isoformat()}', {n})" for ago, n in ((3, 10), (2, 12), (1, 15))
    )
    conn = duckdb.connect(str(directory / "signups.duckdb"))
    try:
        conn.execute(f"CREATE TABLE daily_signups (day DATE, n INTEGER); INSERT INTO daily_signups VALUES {rows};")
    finally:
        conn.close()  # closed before the server opens it read-only


def _write_events(directory: Path) -> None:
    """Raw events as Parquet with non-default names: 2,000 shoppers split between control and
    treatment; 20 % of the control and 40 % of the treatment purchase (a +100 % relative effect)."""
    lake = directory / "lake"
    lake.mkdir()
    start = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    with duckdb.connect(":memory:") as con:
        con.execute(
            "COPY (SELECT 'shopper-' || i AS shopper, CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END "
            f"AS arm, TIMESTAMP '{start} 09:00:00' + INTERVAL (i % 600) MINUTE AS seen_at, "
            f"'{EXPERIMENT_KEY}' AS test_name FROM range(2000) t(i)) "
            f"TO '{lake / 'exposures.parquet'}' (FORMAT parquet)"
        )
        con.execute(
            "COPY (SELECT 'shopper-' || i AS shopper_id, 'purchase' AS action, 20.0 + i % 7 AS amount, "
            f"TIMESTAMP '{start} 09:00:00' + INTERVAL (i % 600) MINUTE + INTERVAL 2 HOUR AS happened_at "
            "FROM range(2000) t(i) WHERE (i % 2 = 0 AND (i // 2) % 5 = 0) OR (i % 2 = 1 AND (i // 2) % 5 < 2)) "
            f"TO '{lake / 'orders.parquet'}' (FORMAT parquet)"
        )


def _status(page: Page, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def _wait_for_job(page: Page) -> None:
    """A job page polls with htmx until its job is done; then it links to the result."""
    expect(page.get_by_test_id("job")).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)


def _shot(page: Page, name: str) -> None:
    """A screenshot for a human to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _card_button(page: Page, state: str, title: str, label: str) -> None:
    card = page.get_by_test_id(f"column-{state}").locator(".hyp-card").filter(has_text=title)
    card.get_by_role("button", name=re.compile(label)).click()


def test_a_product_manager_runs_the_whole_loop_on_an_empty_instance(
    empty_instance: str, browser: Browser
) -> None:
    with watched(browser, empty_instance) as web, watched(browser, empty_instance) as other:
        page = web.page
        page.context.set_default_timeout(20_000)
        other.page.context.set_default_timeout(20_000)
        nav = page.get_by_role("navigation", name="Main")

        # 1. Sign up on the open sign-up page, creating the organisation.
        page.goto("/accounts/signup/")
        expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
        page.get_by_label(re.compile(r"^Your name")).fill("Pat Owner")
        page.get_by_label(re.compile(r"^E-mail address")).fill(OWNER_EMAIL)
        page.get_by_label(re.compile(r"^Password")).fill(PASSWORD)
        page.get_by_label(re.compile(r"^Organisation name")).fill(ORG)
        page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_test_id("dashboard-title")).to_have_text(ORG)
        _status(page, "Welcome to TrueNorth")
        dashboard_url = page.url

        # 2. Invite a stakeholder; they accept in their own browser and set their password.
        nav.get_by_role("link", name="Members").click()
        expect(page.get_by_role("heading", name=f"Members of {ORG}")).to_be_visible()
        invite = page.locator("form").filter(has=page.get_by_role("button", name="Send invitation"))
        invite.get_by_label(re.compile(r"^E-mail address")).fill(STAKEHOLDER_EMAIL)
        invite.get_by_label(re.compile(r"^Role")).select_option("stakeholder")
        invite.get_by_role("button", name="Send invitation").click()
        _status(page, f"Invitation sent to {STAKEHOLDER_EMAIL}")
        link = page.get_by_test_id("invite-link").inner_text().strip()
        expect(page.get_by_role("listitem").filter(has_text=STAKEHOLDER_EMAIL)).to_contain_text("stakeholder")
        spage = other.page
        spage.goto(urlsplit(link).path)
        expect(spage.get_by_role("heading", name=f"Join {ORG}")).to_be_visible()
        expect(spage.get_by_text(f"Pat Owner invited {STAKEHOLDER_EMAIL} to join as stakeholder")).to_be_visible()
        spage.get_by_role("button", name="Create an account").click()
        spage.get_by_label(re.compile(r"^Your name")).fill("Sam Stakeholder")
        spage.get_by_label(re.compile(r"^E-mail address")).fill(STAKEHOLDER_EMAIL)
        spage.get_by_label(re.compile(r"^Password")).fill(PASSWORD + "-sam")
        spage.get_by_role("button", name="Sign up").click()
        spage.get_by_role("button", name="Accept and join").click()
        _status(spage, f"You joined {ORG} as stakeholder")
        expect(spage.get_by_test_id("dashboard-title")).to_have_text(ORG)
        page.reload()
        expect(page.get_by_role("row").filter(has_text=STAKEHOLDER_EMAIL)).to_contain_text("Sam Stakeholder")

        # 3. The goal tree: a product, a strategic, an intermediate and a tactical goal.
        nav.get_by_role("link", name="Products").click()
        page.get_by_label(re.compile(r"^Name")).fill(PRODUCT)
        page.get_by_label(re.compile(r"^Vision")).fill("Every shopper who starts a checkout finishes it.")
        page.get_by_role("button", name="Create product").click()
        expect(page.get_by_test_id("product-title")).to_have_text(PRODUCT)
        product_url = page.url
        page.get_by_role("button", name="New strategic goal").click()
        _new_goal(page, STRATEGIC, outcome="Shoppers buy what they came for, without friction.")
        expect(page.locator("hgroup")).to_contain_text("Strategic goal")
        page.get_by_role("button", name="Add sub-goal").click()
        _new_goal(page, INTERMEDIATE, outcome="A checkout is quick enough to finish on a phone.")
        expect(page.locator("hgroup")).to_contain_text("Intermediate goal")
        page.get_by_role("button", name="Add sub-goal").click()
        tactical_url = _new_goal(
            page,
            TACTICAL,
            outcome="Shoppers sign up while checking out, so they come back.",
            target=("Sign-ups per day", "10", "20"),
        )
        expect(page.locator("hgroup")).to_contain_text("Immediate tactical goal")
        breadcrumb = page.locator(".breadcrumb")
        expect(breadcrumb).to_contain_text(STRATEGIC)
        expect(breadcrumb).to_contain_text(INTERMEDIATE)
        target_row = page.locator("#targets").get_by_role("row").filter(has_text="Sign-ups per day")
        expect(target_row).to_contain_text("10 → 20")
        tactical_id = re.search(r"/goals/(\d+)/", tactical_url)
        assert tactical_id, tactical_url

        # 4. A DuckDB data source in the UI over a file in the organisation's directory; a SQL
        #    measure on it; Refresh now (a job) and its values on the measure page.
        page.goto(product_url)
        page.get_by_role("link", name="Measures", exact=True).last.click()
        measures_url = page.url
        page.get_by_role("link", name="Data sources").click()
        directory = Path(page.get_by_test_id("org-directory").inner_text().strip())
        assert directory.is_dir(), directory
        _write_signups(directory)
        _write_events(directory)
        add_duckdb_source(page, "Shop warehouse", "signups.duckdb")
        new_sql_measure(
            page, measures_url, "Daily sign-ups", "Shop warehouse (DuckDB)", "SELECT day, n FROM daily_signups"
        )
        measure_url = page.url
        page.get_by_test_id("refresh-now").click()
        _wait_for_job(page)
        expect(page.get_by_test_id("job-result")).to_contain_text("3 new observations")
        page.get_by_test_id("job-result-link").click()
        expect(page.get_by_test_id("measure-title")).to_have_text("Daily sign-ups")
        expect(page.get_by_test_id("latest-value")).to_contain_text("15")
        expect(page.get_by_test_id("last-refresh")).to_contain_text("ok")
        expect(page.locator("#observations tbody tr")).to_have_count(3)

        # 5. The tactical goal's target tracks the measure; the measure lists the goal.
        page.goto(tactical_url)
        edit = page.locator("details").filter(has=page.locator("summary", has_text="Edit “Sign-ups per day”"))
        edit.locator("summary").click()
        edit.get_by_label(re.compile(r"^Tracks Value measure")).select_option(
            label=f"Daily sign-ups ({PRODUCT})"
        )
        edit.get_by_role("button", name=re.compile(r"^Save")).click()
        _status(page, "Target measure saved")
        target_row = page.locator("#targets").get_by_role("row").filter(has_text="Sign-ups per day")
        expect(target_row).to_contain_text("Tracks Daily sign-ups")
        expect(target_row).to_contain_text("15")  # the measure's latest value
        expect(target_row).to_contain_text("50 %")  # (15 - 10) / (20 - 10)
        page.goto(measure_url)
        tracking = page.get_by_test_id("tracking-goals")
        expect(tracking.get_by_role("link", name=TACTICAL)).to_be_visible()
        expect(tracking).to_contain_text("50 %")

        # 6. A hypothesis for the goal, made ready; an A/B experiment; its evidence mapped in the
        #    UI to Parquet events with non-default names; results computed (a job) and shown.
        page.goto(product_url)
        page.get_by_test_id("hypotheses-link").click()
        expect(page.get_by_test_id("board-title")).to_have_text(f"Hypotheses of {PRODUCT}")
        page.get_by_role("button", name="New hypothesis").click()
        hypothesis = "A one-page checkout with an optional sign-up"
        page.get_by_label(re.compile(r"^Title")).fill(hypothesis)
        page.get_by_label(re.compile(r"^Goal")).select_option(label=f"#{tactical_id.group(1)} {TACTICAL}")
        page.get_by_label(re.compile(r"^We believe that")).fill("a one-page checkout")
        page.get_by_label(re.compile(r"^For \(who\)")).fill("first-time shoppers")
        page.get_by_label(re.compile(r"^Will result in")).fill("more finished purchases")
        page.get_by_label(re.compile(r"^Or a metric by name")).fill("purchase_converted")
        page.get_by_label(re.compile(r"^Moves from")).fill("0.2")
        page.get_by_label(re.compile(r"^To \(target\)")).fill("0.3")
        page.get_by_role("button", name="Save hypothesis").click()
        expect(page.get_by_test_id("hypothesis-title")).to_have_text(hypothesis)
        expect(page.get_by_test_id("hypothesis-state")).to_have_text("Draft")
        expect(page.locator("hgroup").get_by_role("link", name=TACTICAL)).to_be_visible()  # line of sight
        hypothesis_url = page.url
        page.locator(".breadcrumb").get_by_role("link", name="Hypotheses", exact=True).click()
        _card_button(page, "draft", hypothesis, r"→ ready")
        expect(page.get_by_test_id("column-ready").locator(".hyp-card").filter(has_text=hypothesis)).to_be_visible()
        page.goto(hypothesis_url)
        expect(page.get_by_test_id("hypothesis-state")).to_have_text("Ready")

        page.get_by_role("button", name="Design an experiment").click()
        page.get_by_label(re.compile(r"^Name")).fill("One-page checkout A/B")
        page.get_by_label(re.compile(r"^Kind")).select_option("ab")
        page.get_by_label(re.compile(r"^State")).select_option("running")
        page.get_by_label(re.compile(r"^Variations")).fill("control: 0.5\ntreatment: 0.5")
        page.get_by_label(re.compile(r"^Primary metric(?!')")).fill("purchase_converted")
        page.get_by_role("button", name="Save experiment").click()
        expect(page.get_by_test_id("hypothesis-title")).to_have_text(hypothesis)
        experiments = page.locator("#experiments")
        expect(experiments).to_contain_text("One-page checkout A/B")
        expect(experiments).to_contain_text("control (50 %), treatment (50 %)")
        page.locator(".breadcrumb").get_by_role("link", name="Hypotheses", exact=True).click()
        _card_button(page, "ready", hypothesis, r"→ testing")
        expect(page.get_by_test_id("column-testing").locator(".hyp-card").filter(has_text=hypothesis)).to_be_visible()

        page.goto(hypothesis_url)
        page.get_by_role("link", name="Results", exact=True).click()
        expect(page.get_by_role("heading", name="Results: One-page checkout A/B")).to_be_visible()
        expect(page.get_by_text("No results computed yet.")).to_be_visible()
        settings = page.get_by_test_id("evidence-settings")
        if settings.get_attribute("open") is None:
            settings.locator("summary").click()
        page.locator("#ev-source").select_option(label="Shop warehouse")
        page.locator("#ev-key").fill(EXPERIMENT_KEY)
        mapping = {
            "assignments_table": "lake/exposures.parquet",
            "assignments_unit": "shopper",
            "assignments_variation": "arm",
            "assignments_exposed_at": "seen_at",
            "assignments_experiment": "test_name",
            "events_table": "lake/orders.parquet",
            "events_unit": "shopper_id",
            "events_name": "action",
            "events_value": "amount",
            "events_at": "happened_at",
        }
        for name, value in mapping.items():
            page.locator(f"#ev-{name}").fill(value)
        page.locator("#ev-defs").fill("[]")  # discover a count and a conversion metric per event name
        page.get_by_role("button", name="Preview").click()
        rows_link = page.get_by_role("link", name="See the rows in Evidence settings")
        expect(rows_link).to_be_visible(timeout=JOB_TIMEOUT_MS)
        rows_link.click()
        tables = page.get_by_test_id("mapping-preview").get_by_test_id("preview-table")
        expect(tables).to_have_count(2)
        expect(tables.nth(0).locator("thead")).to_contain_text("seen_at")
        expect(tables.nth(1)).to_contain_text("purchase")
        expect(page.locator("#ev-source")).to_have_value(re.compile(r"^\d+$"))  # what was typed is kept
        expect(page.locator("#ev-events_at")).to_have_value("happened_at")
        expect(page.locator("#ev-key")).to_have_value(EXPERIMENT_KEY)
        page.get_by_role("button", name="Save evidence settings").click()
        expect(page.get_by_text("Evidence settings saved.")).to_be_visible()

        page.get_by_role("button", name="Compute results now").click()
        see_results = page.get_by_role("link", name="See the results")
        expect(see_results).to_be_visible(timeout=JOB_TIMEOUT_MS)
        see_results.click()
        expect(page.get_by_test_id("snapshot")).to_be_visible()
        primary = page.get_by_test_id("result-row").filter(has_text="purchase_converted")
        expect(primary).to_contain_text("primary")
        expect(primary).to_contain_text("treatment")
        expect(primary).to_contain_text("Relative: +100.0%")  # 40 % against 20 %
        expect(primary.get_by_test_id("p-relative")).to_contain_text("p < 0.0001")
        _shot(page, "results-1280.png")

        # 7. Conclude with a decision and a learning; the goal page shows the decision.
        page.goto(hypothesis_url)
        conclude = page.locator("#conclude")
        conclude.get_by_label(re.compile(r"^Outcome")).select_option("validated")
        conclude.get_by_label(re.compile(r"^Decision")).select_option("persevere")
        conclude.get_by_label(re.compile(r"^We observed")).fill("Twice as many shoppers bought.")
        conclude.get_by_label(re.compile(r"^We learned")).fill("Fewer steps bring more purchases.")
        conclude.get_by_label(re.compile(r"^Therefore we will")).fill("Ship the one-page checkout.")
        conclude.get_by_role("button", name="Record the decision").click()
        expect(page.get_by_test_id("hypothesis-state")).to_have_text("Concluded")
        card = page.get_by_test_id("learning-card")
        expect(card).to_contain_text("Validated")
        expect(card).to_contain_text("Persevere")
        expect(card).to_contain_text("Fewer steps bring more purchases.")
        page.goto(tactical_url)
        decisions = page.get_by_test_id("goal-decisions")
        expect(decisions.get_by_role("link", name=hypothesis)).to_be_visible()
        expect(decisions).to_contain_text("Validated, persevere — Fewer steps bring more purchases.")

        # 8. The stakeholder proposes a new title only; the owner accepts; the date is kept.
        spage.goto(tactical_url)
        expect(spage.get_by_test_id("goal-title")).to_have_text(TACTICAL)
        expect(spage.get_by_text("Edit goal")).to_have_count(0)
        proposals = spage.locator("#proposals")
        proposals.locator("summary", has_text="Propose a change").click()
        proposals.get_by_label(re.compile(r"^Title")).fill(TACTICAL_RENAMED)
        proposals.get_by_role("button", name="Propose change").click()
        _status(spage, "Change proposed")
        page.goto(tactical_url)
        proposal = page.get_by_test_id("open-proposal")
        expect(proposal).to_contain_text(f"Title → {TACTICAL_RENAMED}")
        expect(proposal).not_to_contain_text("Target date")  # only what the stakeholder changed
        proposal.get_by_role("button", name="Accept").click()
        _status(page, "Proposal accepted")
        expect(page.get_by_test_id("goal-title")).to_have_text(TACTICAL_RENAMED)
        expect(page.get_by_test_id("decided-proposals")).to_contain_text("Accepted")
        expect(page.locator(f"hgroup time[datetime='{TARGET_DATE}']")).to_be_visible()
        spage.reload()
        expect(spage.get_by_test_id("goal-title")).to_have_text(TACTICAL_RENAMED)

        # 9. The product's goal lint shows its findings (or says there are none), without error.
        page.goto(product_url)
        lint = page.locator("#lint")
        expect(lint.get_by_role("heading", name="Goal lint")).to_be_visible()
        expect(lint).to_contain_text(re.compile(r"\d+ findings? \(\d+ errors?\)|No findings"))
        _shot(page, "product-1280.png")
        page.goto(dashboard_url)
        expect(page.get_by_test_id("dashboard-title")).to_have_text(ORG)
