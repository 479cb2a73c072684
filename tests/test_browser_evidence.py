"""Real-browser test of the evidence mapping (issue 9 item 4): an admin maps the demo A/B test to raw
Parquet events with non-default table and column names in the Evidence settings, previews the mapped
tables (a background job; a wrong column is named as the setting to fix), saves, computes the results (a background job
run by a real `truenorth worker`) and sees them.

Its own server (`truenorth demo`, `truenorth serve` and `truenorth worker` on a fresh SQLite database),
because it needs the data directory (to write the Parquet files into the demo organisation's own DuckDB
directory, with duckdb COPY) and a worker; the session's Chromium and the page watch
(tests/browsing.py).
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

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/truenorth-shots/evidence")
HYPOTHESIS = "One-tap region download on the trip screen"  # demo: the A/B test's hypothesis
MAPPING = {
    "assignments_table": "lake/exposures.parquet",
    "assignments_unit": "hiker",
    "assignments_variation": "arm",
    "assignments_exposed_at": "seen_at",
    "assignments_experiment": "test_name",
    "events_table": "lake/actions.parquet",
    "events_unit": "hiker_id",
    "events_name": "action",
    "events_value": "amount",
    "events_at": "happened_at",
}


@pytest.fixture(scope="module")
def evidence_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo served with a job worker; the demo's raw events copied as renamed Parquet files into
    `lake/` of the demo organisation's DuckDB directory. Yields the base URL."""
    data_dir = tmp_path_factory.mktemp("truenorth-evidence")
    env = live_server.server_env(data_dir, f"sqlite:///{data_dir / 'db.sqlite3'}")
    demo = live_server.run(["demo"], env, timeout=120, cwd=data_dir)
    if demo.returncode != 0:
        pytest.fail(f"`truenorth demo` failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")
    [events_file] = (data_dir / "duckdb").glob("org-*/demo-trail-app-events.duckdb")
    lake = events_file.parent / "lake"
    lake.mkdir()
    with duckdb.connect(":memory:") as con:
        con.execute(f"ATTACH '{events_file}' AS demo (READ_ONLY)")
        con.execute(
            "COPY (SELECT unit_id AS hiker, variation AS arm, first_exposure_at AS seen_at, experiment AS "
            f"test_name FROM demo.assignments) TO '{lake / 'exposures.parquet'}' (FORMAT parquet)"
        )
        con.execute(
            'COPY (SELECT unit_id AS hiker_id, name AS action, value AS amount, "at" AS happened_at '
            f"FROM demo.events) TO '{lake / 'actions.parquet'}' (FORMAT parquet)"
        )
    with live_server.serving_with_worker(env, data_dir, timeout=STARTUP_TIMEOUT) as base_url:
        yield base_url


def _open_results(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
    page.get_by_role("link", name="Trail App", exact=True).first.click()
    page.get_by_test_id("hypotheses-link").click()
    page.get_by_role("link", name=HYPOTHESIS).first.click()
    page.get_by_role("link", name="Results", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Results: "))).to_be_visible()


def _fill_mapping(page: Page, values: dict[str, str]) -> None:
    settings = page.get_by_test_id("evidence-settings")
    if settings.get_attribute("open") is None:
        settings.locator("summary").click()
    for name, value in values.items():
        page.locator(f"#ev-{name}").fill(value)


def _press_preview(page: Page) -> None:
    """Preview runs as a background job: its page links back to the rows in the Evidence settings."""
    page.get_by_role("button", name="Preview").click()
    link = page.get_by_role("link", name="See the rows in Evidence settings")
    expect(link).to_be_visible(timeout=30_000)
    link.click()
    expect(page.get_by_test_id("mapping-preview")).to_be_visible()


def test_an_admin_maps_an_experiment_to_parquet_events_previews_and_sees_the_results(
    evidence_server: str, browser: Browser
) -> None:
    with watched(browser, evidence_server) as web:
        page = signed_in(web, ADMIN)
        _open_results(page)
        expect(page.locator("section[aria-labelledby=snapshots-heading] li")).to_have_count(1)

        # A wrong column: the preview names the setting to fix, not the engine's guess.
        _fill_mapping(page, {**MAPPING, "events_value": "value"})
        _press_preview(page)
        preview = page.get_by_test_id("mapping-preview")
        expect(preview.get_by_test_id("preview-error")).to_have_text(
            re.compile(r"no column `value` in the event table `lake/actions\.parquet`.*set the event value "
                       r"column in Evidence settings")
        )
        expect(preview).not_to_contain_text("Did you mean")
        expect(preview.get_by_test_id("preview-table")).to_have_count(1)  # the assignment table is fine
        # What was typed is kept.
        expect(page.locator("#ev-events_table")).to_have_value("lake/actions.parquet")

        # The right column: both tables preview their mapped columns with a few rows.
        page.locator("#ev-events_value").fill("amount")
        _press_preview(page)
        tables = page.get_by_test_id("mapping-preview").get_by_test_id("preview-table")
        expect(tables).to_have_count(2)
        expect(tables.nth(0).locator("thead")).to_contain_text("seen_at")
        expect(tables.nth(0).locator("tbody tr")).to_have_count(5)
        expect(tables.nth(1).locator("thead")).to_contain_text("happened_at")
        expect(tables.nth(1)).to_contain_text(re.compile(r"page_view|purchase"))
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "mapping-preview-1280.png"), full_page=True)

        page.get_by_role("button", name="Save evidence settings").click()
        expect(page.get_by_text("Evidence settings saved.")).to_be_visible()
        page.get_by_test_id("evidence-settings").locator("summary").click()
        expect(page.locator("#ev-events_at")).to_have_value("happened_at")

        # Compute: a background job; its page links to the new results.
        page.get_by_role("button", name="Compute results now").click()
        expect(page.get_by_role("link", name="See the results")).to_be_visible(timeout=30_000)
        page.get_by_role("link", name="See the results").click()
        snapshot = page.get_by_test_id("snapshot")
        # A second snapshot, shown (its query reads the Parquet files; the demo's read the DuckDB file).
        expect(page.locator("section[aria-labelledby=snapshots-heading] li")).to_have_count(2)
        expect(page.get_by_test_id("result-row").first).to_contain_text("region_download_rate")
        expect(page.get_by_test_id("result-row")).to_have_count(3)
        snapshot.get_by_text("Query and inputs").click()
        expect(snapshot.locator("pre")).to_contain_text("actions.parquet")
        expect(snapshot.locator("pre")).to_contain_text('"amount"')
        page.screenshot(path=str(SHOTS / "mapped-results-1280.png"), full_page=True)
