"""Real-browser test of data set-up without the API (issue 9 item 3): an admin adds a DuckDB data source
over a file in the organisation's directory, tests it, creates a SQL measure on it, previews its query
and presses "Refresh now", then sees the values.

Its own server *and job worker* (`truenorth demo`, `truenorth serve`, `truenorth worker`), so the preview
and the refresh run as real background jobs whose pages follow them. Same browser set-up and watching
as tests/test_browser.py (foreign requests and console errors fail the test).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import live_server
from tests.browsing import ADMIN, STARTUP_TIMEOUT, signed_in, watched
from tests.test_browser_vision import SHOTS

pytestmark = pytest.mark.browser
JOB_TIMEOUT_MS = 60_000  # the worker polls its queue; a loaded CI machine is slow


@pytest.fixture(scope="module")
def server_with_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo data, then `truenorth serve` and `truenorth worker`; yields the base URL."""
    data_dir = tmp_path_factory.mktemp("truenorth-sources")
    env = live_server.server_env(data_dir, f"sqlite:///{data_dir / 'db.sqlite3'}")
    demo = live_server.run(["demo"], env, timeout=180, cwd=data_dir)
    if demo.returncode != 0:
        pytest.fail(f"`truenorth demo` failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")
    with live_server.serving_with_worker(env, data_dir, timeout=STARTUP_TIMEOUT) as base_url:
        yield base_url


def _write_signups(directory: Path) -> None:
    conn = duckdb.connect(str(directory / "signups.duckdb"))
    try:
        conn.execute(
            "CREATE TABLE signups (day DATE, n INTEGER);"
            "INSERT INTO signups VALUES ('2026-01-01', 10), ('2026-01-02', 12), ('2026-01-03', 15);"
        )
    finally:
        conn.close()  # closed before the server opens it read-only


def add_duckdb_source(page: Page, name: str, database_file: str) -> None:
    """On the data sources page: add a DuckDB source over a file in the organisation's directory, test it."""
    directory = Path(page.get_by_test_id("org-directory").inner_text().strip())
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_label(re.compile(r"^Kind")).select_option("duckdb")
    page.get_by_label(re.compile(r"^DuckDB file")).fill(database_file)
    page.get_by_role("button", name="Add data source").click()
    expect(page.get_by_test_id("source-title")).to_have_text(name)
    page.get_by_test_id("source-test").click()
    expect(page.get_by_test_id("source-test-result")).to_have_text(
        f"Opened DuckDB {directory / database_file} read-only."
    )


def new_sql_measure(page: Page, measures_url: str, name: str, source: str, query: str) -> None:
    """From a product's measures page: a new SQL measure on `source` (its label, e.g. "X (DuckDB)")."""
    page.goto(measures_url)
    page.get_by_test_id("new-sql-measure").click()
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_label(re.compile(r"^Key Value Area")).select_option(label="Current Value")
    page.get_by_label(re.compile(r"^Data source")).select_option(label=source)
    page.get_by_label(re.compile(r"^Query")).fill(query)
    page.get_by_role("button", name="Create SQL measure").click()
    expect(page.get_by_test_id("measure-title")).to_have_text(name)
    expect(page.get_by_test_id("last-refresh")).to_have_text("never")


def test_an_admin_sets_up_a_duckdb_source_and_a_sql_measure_in_the_browser(
    server_with_worker: str, browser: Browser
) -> None:
    with watched(browser, server_with_worker) as web:
        page = signed_in(web, ADMIN)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
        page.get_by_label(re.compile(r"^Name")).fill("Sign-up funnel")
        page.get_by_role("button", name="Create product").click()
        expect(page.get_by_test_id("product-title")).to_have_text("Sign-up funnel")
        page.get_by_role("link", name="Measures", exact=True).last.click()
        measures_url = page.url

        # The data sources page says where the organisation's files go; the file is put there.
        page.get_by_role("link", name="Data sources").click()
        directory = Path(page.get_by_test_id("org-directory").inner_text().strip())
        assert directory.is_dir(), directory
        _write_signups(directory)
        add_duckdb_source(page, "Product analytics", "signups.duckdb")

        # A SQL measure on it: no manual entry, its query and schedule shown.
        new_sql_measure(
            page, measures_url, "Daily sign-ups", "Product analytics (DuckDB)", "SELECT day, n FROM signups"
        )
        expect(page.get_by_test_id("measure-query")).to_have_text("SELECT day, n FROM signups")
        expect(page.get_by_text("Record an observation")).to_have_count(0)

        # Preview: a job on the worker, then its first rows on the measure page (nothing saved).
        page.locator("summary", has_text="Edit the query").click()
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_test_id("job")).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
        page.get_by_test_id("job-result-link").click()
        preview = page.get_by_test_id("query-preview")
        expect(preview).to_contain_text("The query returned 3 rows")
        expect(preview.locator("tbody tr")).to_have_count(3)
        expect(preview.locator("tbody tr").last).to_contain_text("15")
        expect(page.get_by_test_id("latest-value")).to_have_text("No observation yet.")

        # Refresh now: a job with its page, then the values on the measure.
        page.get_by_test_id("refresh-now").click()
        expect(page.get_by_test_id("job")).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
        expect(page.get_by_test_id("job-result")).to_contain_text("3 new observations")
        page.get_by_test_id("job-result-link").click()
        expect(page.get_by_test_id("latest-value")).to_contain_text("15")
        expect(page.get_by_test_id("last-rows")).to_contain_text("3 rows")
        expect(page.get_by_test_id("last-refresh")).to_contain_text("ok")
        expect(page.locator("#observations tbody tr")).to_have_count(3)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "sql-measure-1280x800.png"), full_page=True)
