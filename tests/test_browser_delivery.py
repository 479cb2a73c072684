"""Real-browser tests of Delivery evidence (issue 12): a member adds a delivery source in the UI, uploads a
file in the generic event format and follows its import job to the summary and the bad records; the
product's delivery page shows flow and DORA numbers (checked against the service layer run on the same
database), draws its charts and shows each DORA band; the forecast form answers "how many by a date?"
and "when will N be done?" at 50/85/95 % with its backtest; a stakeholder reads everything but has no
control to write with, and a forged POST is refused.

Its own server *and job worker* (`truenorth demo`, `truenorth serve`, `truenorth worker` through
tests/live_server.py) on a fresh database: a SQLite file, or a new PostgreSQL database when the suite runs
with a PostgreSQL DATABASE_URL. The expected numbers come from `truenorth.delivery.services.metrics` run
in the server's environment (`live_server.run_python`), never typed in. Every page is watched (foreign
requests, console errors and uncaught page errors fail the test: tests/browsing.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests import live_server
from tests.browsing import OWNER, STAKEHOLDER, STARTUP_TIMEOUT, signed_in, watched

pytestmark = pytest.mark.browser

SERVER_STARTUP = max(STARTUP_TIMEOUT, 240.0)  # serve and worker start while other suites load the machine
JOB_TIMEOUT_MS = 90_000  # the worker polls its queue; a loaded CI machine is slow
PAGE_TIMEOUT_MS = 20_000
SHOTS = Path("/tmp/truenorth-shots/delivery")
ORG = "acme"
DEMO_PRODUCT = "Trail App"  # the demo's year of delivery history (truenorth/delivery/demo.py)
CHARTS = ("cycle", "throughput", "cfd", "age", "dora")
HEADER = "kind,id,at,title,type,labels,from_state,to_state,service,environment,succeeded,commits,run_id,resolved_at"

# Runs in the server's environment: the flow and DORA report of one product over [since, until] and,
# for the demo product, both forecasts, as the pages compute them (the same service functions).
SERVICE_VALUES = """
import datetime as dt
import json
import sys

import django

django.setup()
from truenorth.delivery.services import metrics
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Product

email, slug, name, since, until, items, by = sys.argv[1:8]
membership = Membership.objects.select_related("organisation", "user").get(
    user__email=email, organisation__slug=slug
)
product = Product.objects.get(organisation=membership.organisation, name=name)
scope = metrics.Scope(product_id=product.pk)
start, end = metrics.window(dt.date.fromisoformat(since), dt.date.fromisoformat(until))
out = {"report": metrics.report(membership, scope, start=start, end=end)}
if items:
    now = metrics.window(None, None)
    out["when"] = metrics.compute(membership, metrics.Request("forecast", scope, *now, items=int(items)))
    out["by"] = metrics.compute(
        membership, metrics.Request("forecast", scope, *now, by=dt.date.fromisoformat(by))
    )
print(json.dumps(out))
"""


# The goal's forecast as the goal page's panel computes it (with the whole percent the panel shows).
GOAL_FORECAST = """
import json
import sys

import django

django.setup()
from truenorth.delivery.services.goal_forecasts import forecast_goal, goal_forecast_out
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Goal

email, slug, title = sys.argv[1:4]
membership = Membership.objects.get(user__email=email, organisation__slug=slug)
goal = Goal.objects.get(organisation=membership.organisation, title=title)
found = forecast_goal(membership, goal)
print(json.dumps({**goal_forecast_out(found), "percent": found.percent}))
"""

# A process change's before/after comparison as the change page shows it (its windows are in the past,
# so the result does not depend on when it is computed).
CHANGE_COMPARISON = """
import json
import sys

import django

django.setup()
from truenorth.delivery.models import ProcessChange
from truenorth.delivery.services import process
from truenorth.orgs.models import Membership

email, slug, title = sys.argv[1:4]
membership = Membership.objects.get(user__email=email, organisation__slug=slug)
change = ProcessChange.objects.get(organisation=membership.organisation, title=title)
print(json.dumps(process.compute(membership, change)))
"""


@dataclass
class Server:
    base_url: str
    env: dict[str, str]

    def service_values(
        self,
        product: str,
        since: dt.date,
        until: dt.date,
        *,
        items: int | None = None,
        by: dt.date | None = None,
    ) -> dict[str, Any]:
        """What the service layer computes for `product` on the server's database (see SERVICE_VALUES)."""
        return self.run(
            SERVICE_VALUES,
            OWNER,
            ORG,
            product,
            since.isoformat(),
            until.isoformat(),
            str(items or ""),
            by.isoformat() if by else "",
        )

    def run(self, code: str, *args: str) -> dict[str, Any]:
        """`code` (which prints one JSON object last) in the server's environment, with `args`."""
        done = live_server.run_python(code, self.env, *args, timeout=120)
        assert done.returncode == 0, done.stderr
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return out


@pytest.fixture(scope="module")
def delivery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo (with its year of Trail App delivery history), then `truenorth serve` and `truenorth worker`
    on a fresh database; yields the base URL and the server's environment."""
    data_dir = tmp_path_factory.mktemp("truenorth-delivery")
    with live_server.fresh_database_url(data_dir, "delivery") as database_url:
        env = live_server.server_env(data_dir, database_url)
        demo = live_server.run(["demo"], env, timeout=300, cwd=data_dir)
        if demo.returncode != 0:
            pytest.fail(f"`truenorth demo` failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")
        with live_server.serving_with_worker(env, data_dir, timeout=SERVER_STARTUP) as base_url:
            yield Server(base_url, env)


# --- the uploaded file -----------------------------------------------------------------------------------


@dataclass
class EventsFile:
    """A generic-events CSV as a team's own tool would export it: what it holds, for the assertions."""

    text: str
    created: dict[str, int] = field(default_factory=dict)  # new rows by kind, as the import counts them
    bad_lines: list[int] = field(default_factory=list)  # 1-based, the header is line 1


def _sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def _at(day: dt.date, hour: int, minute: int = 0) -> str:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def events_file(today: dt.date) -> EventsFile:
    """Six weeks of a web team's work ending yesterday: ten work items (eight done, one of them reopened
    and done again; one in progress, one waiting in review), production deployments with their commits
    (one pipeline run deploying two services, one failed run with its incident, restored by the next run),
    a staging deployment, and three bad rows among the good ones."""
    start = today - dt.timedelta(days=42)
    rows: list[str] = []
    created = dict.fromkeys(("items", "transitions", "commits", "deployments", "incidents"), 0)
    bad: list[int] = []

    def add(kind: str, ident: str, at: str, **cols: str) -> None:
        names = HEADER.split(",")[3:]
        rows.append(",".join([kind, ident, at, *(cols.get(n, "") for n in names)]))

    titles = [
        "Checkout: remember the delivery address",
        "Payment page loads under a second",
        "Fix rounding of discounts in the basket",
        "Apple Pay on the web",
        "Order history paginates",
        "Basket survives a sign-in",
        "Gift cards at checkout",
        "Clearer card decline messages",
        "Guest checkout without an account",
        "Saved cards can be removed",
    ]
    for i, title in enumerate(titles):
        key = f"WEB-{101 + i}"
        born = start + dt.timedelta(days=3 * i)
        add(
            "item",
            key,
            _at(born, 9),
            title=title,
            type="bug" if i % 4 == 2 else "story",
            labels="checkout|web",
        )
        created["items"] += 1
        moves = [(born + dt.timedelta(days=1), 10, "Backlog", "In Progress")]
        if i < 9:
            review = born + dt.timedelta(days=2 + i % 3)
            moves.append((review, 15, "In Progress", "Review"))
        if i < 8:
            moves.append((review + dt.timedelta(days=1 + i % 2), 11, "Review", "Done"))
        if i == 2:  # reopened: a customer found the bug again, fixed two days later
            done = moves[-1][0]
            moves += [
                (done + dt.timedelta(days=1), 9, "Done", "In Progress"),
                (done + dt.timedelta(days=3), 16, "In Progress", "Done"),
            ]
        for day, hour, old, new in moves:
            add("transition", key, _at(day, hour), from_state=old, to_state=new)
            created["transitions"] += 1

    runs = [(start + dt.timedelta(days=5 + 6 * n), n) for n in range(6)]
    for day, n in runs:
        shas = [_sha("web", n, k) for k in range(2)]
        for k, sha in enumerate(shas):
            add("commit", sha, _at(day - dt.timedelta(days=1 + k), 14))
            created["commits"] += 1
        failed = n == 3
        services = ("checkout", "payments-api") if n == 1 else ("checkout",)
        for service in services:
            add(
                "deployment",
                f"deploy-{300 + n}-{service}",
                _at(day, 17),
                service=service,
                environment="production",
                succeeded="failed" if failed else "success",
                commits=" ".join(shas),
                run_id=f"pipeline-{900 + n}",
            )
            created["deployments"] += 1
        if failed:
            add("incident", "INC-41", _at(day, 17, 25), service="checkout", resolved_at=_at(day, 18, 40))
            created["incidents"] += 1
        if n == 2:
            add(
                "deployment",
                f"deploy-{300 + n}-staging",
                _at(day, 12),
                service="checkout",
                environment="staging",
                commits=shas[0],
                run_id=f"pipeline-{900 + n}-staging",
            )
            created["deployments"] += 1
            # Three bad rows in the middle of the file: a time nobody can read, an unknown kind, a
            # transition to no state.
            for kind, ident, at, cols in (
                (
                    "deployment",
                    "deploy-bad",
                    "yesterday afternoon",
                    {"service": "checkout", "environment": "production"},
                ),
                ("rollout", "RO-1", _at(day, 12), {}),
                ("transition", "WEB-101", _at(day, 13), {"from_state": "Done"}),
            ):
                add(kind, ident, at, **cols)
                bad.append(len(rows) + 1)  # the header is line 1
    return EventsFile("\n".join([HEADER, *rows]) + "\n", created, bad)


# --- helpers ---------------------------------------------------------------------------------------------


def _status(page: Page, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _new_product(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_test_id("product-title")).to_have_text(name)


def _number(text: str) -> float | None:
    cleaned = text.strip().replace(",", "")
    if cleaned in ("—", ""):
        return None
    found = re.match(r"-?\d+(\.\d+)?", cleaned)
    assert found, f"not a number: {text!r}"
    return float(found.group(0))


def _row_numbers(table: Locator, heading: str) -> list[float | None]:
    row = table.get_by_role("row").filter(has=table.page.get_by_role("rowheader", name=heading, exact=True))
    expect(row).to_have_count(1)
    return [_number(t) for t in row.locator("td").all_inner_texts()]


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tolerance)


def _check_charts(page: Page, prefix: str) -> None:
    """Each chart of the section drawn by vega-embed (an SVG), labelled for assistive technology."""
    for key in CHARTS:
        chart = page.get_by_test_id(f"chart-{prefix}-{key}")
        expect(chart).to_have_class(re.compile(r"chart-ready"), timeout=PAGE_TIMEOUT_MS)
        expect(chart.locator("svg, canvas").first).to_be_visible()
        expect(chart).to_have_attribute("aria-label", re.compile(r"\w"))


def _check_section(page: Page, prefix: str, report: dict[str, Any]) -> None:
    """The flow and DORA numbers of a page section equal the service layer's `report` (as rounded on
    the page), and each DORA metric with a value shows its band."""
    flow, dora = report["flow"], report["dora"]
    table = page.get_by_test_id(f"flow-{prefix}").locator("table")
    for heading, key in (("Cycle time (days)", "cycle_time_days"), ("Lead time (days)", "lead_time_days")):
        shown = _row_numbers(table, heading)
        wanted = [flow[key][p] for p in ("50", "85", "95")]
        assert all(_close(s, w, 0.006) for s, w in zip(shown, wanted, strict=True)), (heading, shown, wanted)
    facts = page.get_by_test_id(f"flow-{prefix}")
    expect(facts.get_by_role("listitem").filter(has_text="Items done")).to_contain_text(
        f"Items done: {flow['completed_count']}"
    )
    expect(facts.get_by_role("listitem").filter(has_text="Work in progress")).to_have_text(
        f"Work in progress: {flow['wip']}"
    )
    dora_box = page.get_by_test_id(f"dora-{prefix}")
    expect(dora_box.get_by_role("heading", level=3)).to_have_text(f"DORA ({dora['year']} bands)")
    expect(dora_box).to_contain_text(
        f"{dora['deployments']} production deployments, {dora['failed_deployments']} failed"
    )
    for key, metric in dora["metrics"].items():
        row = dora_box.get_by_test_id(f"dora-{key}")
        value = metric["value"]
        value_shown = _number(row.locator("td").first.inner_text())
        if value is None:
            assert value_shown is None, (key, value_shown)
        else:
            expected = value * 100 if key.endswith("_rate") else value
            assert value_shown is not None and abs(value_shown - expected) <= 0.051, (
                key,
                value_shown,
                expected,
            )
        band = row.locator(".badge")
        if metric["band"]:
            expect(band).to_be_visible()
            expect(band).to_have_text(metric["band"])
        else:
            expect(band).to_have_count(0)


def _wait_for_job(page: Page) -> None:
    """A job page polls with htmx until its job is done."""
    expect(page.get_by_test_id("job")).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)


def _upload(page: Page, path: Path) -> None:
    importer = page.get_by_label(re.compile(r"^Importer"))
    expect(importer).to_have_value("events")  # the source's kind chooses it
    page.get_by_label(re.compile(r"^File")).set_input_files(path)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))


# --- the tests -------------------------------------------------------------------------------------------


def test_a_member_imports_generic_events_and_reads_the_products_flow_and_dora_metrics(
    delivery_server: Server, browser: Browser, tmp_path: Path
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    upload = events_file(today)
    csv_path = tmp_path / "checkout-web-events.csv"
    csv_path.write_text(upload.text, encoding="utf-8")
    product, source = "Checkout web", "Checkout web pipeline"

    with watched(browser, delivery_server.base_url) as web:
        page = signed_in(web, OWNER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)
        _new_product(page, product)

        # A source of kind "events" for the product, its workflow states mapped in the form; the sources
        # list is reached from the Delivery page.
        page.goto(f"/o/{ORG}/delivery/")
        page.get_by_test_id("delivery-sources-link").click()
        page.wait_for_url(f"**/o/{ORG}/delivery/sources/")
        expect(page.get_by_role("heading", name="Delivery sources", exact=True)).to_be_visible()
        form = page.locator("form").filter(has=page.get_by_role("button", name="Add source"))
        form.get_by_label(re.compile(r"^Name")).fill(source)
        form.get_by_label(re.compile(r"^Kind")).select_option(label="Generic events (CSV/JSON)")
        form.get_by_role("combobox", name=re.compile(r"^Product")).select_option(label=product)
        form.get_by_label(re.compile(r"^Started")).fill("In Progress")
        form.get_by_label(re.compile(r"^Waiting")).fill("Review")
        form.get_by_label(re.compile(r"^Done")).fill("Done")
        expect(form.get_by_label(re.compile(r"^Production environment"))).to_have_value("production")
        form.get_by_role("button", name="Add source").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(source)
        _status(page, f"Delivery source “{source}” added")
        details = page.get_by_test_id("delivery-source")
        expect(details).to_contain_text(product)
        expect(details).to_contain_text("Review")
        expect(page.get_by_text("No import yet.")).to_be_visible()
        source_url = page.url

        # The upload: a background job whose page follows it (htmx polling) to its summary.
        _upload(page, csv_path)
        _wait_for_job(page)
        result = page.get_by_test_id("job-result")
        expect(result).to_contain_text(f"{source}: ")
        for kind, count in upload.created.items():
            expect(result).to_contain_text(f"{count} {kind if count != 1 else kind.removesuffix('s')}")
        expect(result).to_contain_text(f"{len(upload.bad_lines)} bad records")
        page.get_by_test_id("job-result-link").click()
        expect(page).to_have_url(source_url)

        # The source's page lists the import with its counts and each bad record with its line.
        runs = page.get_by_test_id("delivery-imports").locator("tbody tr")
        expect(runs).to_have_count(1)
        expect(runs.first).to_contain_text(csv_path.name)
        expect(runs.first).to_contain_text("Succeeded")
        expect(runs.first).to_contain_text(f"{upload.created['items']} items")
        page.locator("summary", has_text=f"Bad records ({len(upload.bad_lines)})").click()
        locations = runs.first.locator("li code")
        expect(locations).to_have_text([f"line {n}" for n in upload.bad_lines])
        expect(runs.first.locator("li").nth(1)).to_contain_text("rollout")
        _shot(page, "source-after-import-1280x800.png")

        # The same file again: nothing new (imports are idempotent), the same bad records reported.
        _upload(page, csv_path)
        _wait_for_job(page)
        expect(page.get_by_test_id("job-result")).to_contain_text("nothing new")
        page.get_by_test_id("job-result-link").click()
        expect(runs).to_have_count(2)
        expect(runs.first).to_contain_text("nothing new")

        # Delivery overview → the product's page, over the last six weeks.
        page.get_by_test_id("nav-delivery").click()
        expect(page.get_by_role("heading", name="Delivery", exact=True)).to_be_visible()
        page.get_by_test_id("delivery-product-link").filter(has_text=product).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Delivery: {product}")
        since, until = today - dt.timedelta(days=45), today
        window = page.get_by_test_id("delivery-window")
        window.get_by_label("From").fill(since.isoformat())
        window.get_by_label("To").fill(until.isoformat())
        window.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(rf"since={since.isoformat()}"))
        expect(page.get_by_text(f"Window: {since.isoformat()} to {until.isoformat()}")).to_be_visible()
        expect(page.locator("[data-testid=delivery-section-all]")).to_contain_text(f"Sources: {source}.")

        report = delivery_server.service_values(product, since, until)["report"]
        assert report["flow"]["completed_count"] == 8  # what the file holds: the numbers are not all empty
        assert report["dora"]["failed_deployments"] == 1
        _check_section(page, "all", report)
        expect(page.get_by_test_id("flow-all")).to_contain_text("Flow efficiency:")
        expect(page.get_by_test_id("flow-all")).not_to_contain_text("Flow efficiency: —")
        _check_charts(page, "all")
        _shot(page, "product-delivery-1280x800.png")


def test_the_demo_products_metrics_charts_bands_and_forecasts(
    delivery_server: Server, browser: Browser
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    since, until = today - dt.timedelta(days=89), today
    items, by = 40, today + dt.timedelta(days=42)
    with watched(browser, delivery_server.base_url) as web:
        page = signed_in(web, OWNER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)
        page.get_by_test_id("nav-delivery").click()
        section = page.locator("section").filter(
            has=page.get_by_role("heading", name=DEMO_PRODUCT, level=2, exact=True)
        )
        expect(section.get_by_test_id(re.compile(r"^dora-p\d+$"))).to_be_visible()
        expect(section.locator(".badge[data-band]").first).to_be_visible()
        page.get_by_test_id("delivery-product-link").filter(has_text=DEMO_PRODUCT).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Delivery: {DEMO_PRODUCT}")

        window = page.get_by_test_id("delivery-window")
        window.get_by_label("From").fill(since.isoformat())
        window.get_by_label("To").fill(until.isoformat())
        window.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(rf"until={until.isoformat()}"))

        values = delivery_server.service_values(DEMO_PRODUCT, since, until, items=items, by=by)
        report = values["report"]
        assert report["dora"]["deployments"] > 0 and report["flow"]["completed_count"] > 0
        _check_section(page, "all", report)
        _check_charts(page, "all")
        bands = page.get_by_test_id("dora-all").locator(".badge[data-band]")
        expect(bands.first).to_be_visible()
        assert bands.count() >= 3, "a year of history gives most DORA metrics a band"

        # "When will 40 items be done?"
        forecast = page.get_by_test_id("forecast-form")
        forecast.get_by_label(re.compile(r"^When will")).fill(str(items))
        forecast.get_by_role("button", name="Forecast").click()
        expect(page).to_have_url(re.compile(rf"items={items}"))
        _check_forecast(page, values["when"]["forecast"], f"Days until {items} items are done")
        _shot(page, "forecast-when-1280x800.png")

        # "How many items by this date?" (the other field left empty)
        forecast.get_by_label(re.compile(r"^When will")).fill("")
        forecast.get_by_label(re.compile(r"^How many items by")).fill(by.isoformat())
        forecast.get_by_role("button", name="Forecast").click()
        expect(page).to_have_url(re.compile(rf"by={by.isoformat()}"))
        _check_forecast(page, values["by"]["forecast"], f"Items done by {by.isoformat()}")

        # Both questions at once: the form says which one to ask, the page still answers.
        forecast.get_by_label(re.compile(r"^When will")).fill(str(items))
        forecast.get_by_role("button", name="Forecast").click()
        expect(page.get_by_test_id("forecast-errors")).to_contain_text("not both")
        expect(page.get_by_test_id("forecast-result")).to_have_count(0)


def _check_forecast(page: Page, expected: dict[str, Any], heading: str) -> None:
    """The 50/85/95 table equals the service layer's forecast, the backtest line and the chart show."""
    box = page.get_by_test_id("forecast-result")
    expect(box).to_contain_text(heading)
    for p in ("50", "85", "95"):
        expect(box.get_by_test_id(f"forecast-p{p}")).to_have_text(f"{float(expected['percentiles'][p]):.0f}")
    for name in ("50 %", "85 %", "95 %"):
        expect(box.get_by_role("columnheader", name=name)).to_be_visible()
    backtest = expected["backtest"]
    assert backtest is not None, "a year of history is enough to backtest"
    expect(box.get_by_test_id("forecast-backtest")).to_contain_text(
        f"Backtest: the 85% figure held in {backtest['held_85']} of {backtest['forecasts']} past forecasts"
    )
    chart = box.get_by_test_id("forecast-chart")
    expect(chart).to_have_class(re.compile(r"chart-ready"))
    expect(chart.locator("svg").first).to_be_visible()


def test_a_stakeholder_reads_delivery_pages_without_controls_and_cannot_write(
    delivery_server: Server, browser: Browser
) -> None:
    with watched(browser, delivery_server.base_url) as web:
        web.watch.allow_error(r"status of 403")  # Chromium's console note about the refused POSTs
        page = signed_in(web, STAKEHOLDER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)

        page.goto(f"/o/{ORG}/delivery/sources/")
        sources = page.get_by_test_id("delivery-sources")
        expect(sources).to_be_visible()
        expect(page.get_by_role("heading", name="Add a delivery source")).to_have_count(0)
        expect(page.get_by_role("button", name="Add source")).to_have_count(0)
        sources.get_by_role("link", name="Trail App delivery").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Trail App delivery")
        expect(page.get_by_test_id("delivery-imports").locator("tbody tr").first).to_be_visible()
        source_url = page.url
        for control in ("Import", "Archive"):
            expect(page.get_by_role("button", name=control, exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Edit")).to_have_count(0)
        expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
        expect(page.locator("input[type=file]")).to_have_count(0)

        page.get_by_test_id("nav-delivery").click()
        page.get_by_test_id("delivery-product-link").filter(has_text=DEMO_PRODUCT).click()
        expect(page.get_by_test_id("dora-all")).to_be_visible()
        _check_charts(page, "all")
        expect(page.get_by_test_id("forecast-form")).to_be_visible()  # reading a forecast writes nothing

        # Forged writes with a valid CSRF token: refused, and nothing changed.
        token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        headers = {"X-CSRFToken": token, "Referer": delivery_server.base_url + source_url}
        created = page.request.post(
            f"/o/{ORG}/delivery/sources/",
            form={"name": "Shadow pipeline", "kind": "events", "production_environment": "production"},
            headers=headers,
        )
        assert created.status == 403, created.status
        imported = page.request.post(
            source_url + "import/",
            multipart={
                "importer": "events",
                "file": {"name": "x.csv", "mimeType": "text/csv", "buffer": (HEADER + "\n").encode()},
            },
            headers=headers,
        )
        assert imported.status == 403, imported.status
        edited = page.request.post(
            source_url + "edit/",
            form={
                "name": "Renamed",
                "kind": "events",
                "production_environment": "production",
                "version": "1",
            },
            headers=headers,
        )
        assert edited.status == 403, edited.status
        archived = page.request.post(source_url + "archive/", form={"version": "1"}, headers=headers)
        assert archived.status == 403, archived.status
        page.goto(f"/o/{ORG}/delivery/sources/")
        expect(page.get_by_test_id("delivery-sources")).not_to_contain_text("Shadow pipeline")
        page.goto(source_url)
        expect(page.get_by_role("heading", level=1)).to_have_text("Trail App delivery")


def test_delivery_forms_label_every_field(delivery_server: Server, browser: Browser) -> None:
    """Every visible field of the source, upload, window and forecast forms has a label, and the
    source form can be filled and sent with the keyboard alone."""
    with watched(browser, delivery_server.base_url) as web:
        web.watch.allow_error(r"status of 422")  # the form answers 422 with its field errors
        page = signed_in(web, OWNER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(f"/o/{ORG}/delivery/sources/")
        _assert_labelled(page)
        page.get_by_test_id("delivery-sources").get_by_role("link", name="Trail App delivery").click()
        _assert_labelled(page)
        page.get_by_test_id("nav-delivery").click()
        _assert_labelled(page)
        page.get_by_test_id("delivery-product-link").filter(has_text=DEMO_PRODUCT).click()
        _assert_labelled(page)

        # Keyboard only: an empty name is refused with the error on the field.
        page.goto(f"/o/{ORG}/delivery/sources/")
        form = page.locator("form").filter(has=page.get_by_role("button", name="Add source"))
        form.get_by_label(re.compile(r"^Name")).focus()
        page.keyboard.press("Tab")
        expect(form.get_by_label(re.compile(r"^Kind"))).to_be_focused()
        form.get_by_role("button", name="Add source").focus()
        page.keyboard.press("Enter")
        name = (
            page.locator("form")
            .filter(has=page.get_by_role("button", name="Add source"))
            .get_by_label(re.compile(r"^Name"))
        )
        expect(name.locator("xpath=..").locator(".field-error")).to_be_visible()


def _assert_labelled(page: Page) -> None:
    expect(page.locator("main")).to_be_visible()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('main input, main select, main textarea')]
            .filter(el => el.type !== 'hidden' && !(el.labels && el.labels.length)
                    && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
            .map(el => el.name || el.id || el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == [], f"fields without a label on {page.url}: {unlabelled}"


def test_a_goal_with_a_target_date_shows_its_delivery_forecast(
    delivery_server: Server, browser: Browser
) -> None:
    """Three work items linked to a new goal of the demo product due in three days: the goal page's panel
    gives the chance to finish them by the target date, the 85% date, the backtest and the outcome chart,
    as the service computes them; its link asks the product page when those three will be done."""
    today = dt.datetime.now(dt.UTC).date()
    target = today + dt.timedelta(days=3)  # close enough that finishing all three is not certain
    title = "Hikers share a route with one tap"
    work = [
        ("HIKE-1", "Share sheet on the route page"),
        ("HIKE-2", "Deep link opens the route"),
        ("HIKE-3", "Shared routes work offline"),
    ]
    with watched(browser, delivery_server.base_url) as web:
        page = signed_in(web, OWNER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
        page.get_by_role("link", name=DEMO_PRODUCT, exact=True).first.click()
        expect(page.get_by_test_id("product-title")).to_have_text(DEMO_PRODUCT)
        product_url = page.url
        for key, name in work:
            add = page.locator("#work details").filter(
                has=page.locator("summary", has_text="Add a work item")
            )
            if add.get_attribute("open") is None:
                add.locator("summary").click()
            add.get_by_label(re.compile(r"^Work item")).fill(name)
            add.get_by_label(re.compile(r"^Key")).fill(key)
            add.get_by_role("button", name="Add work item").click()
            _status(page, "Work item added")
            expect(page.locator("#work")).to_contain_text(f"{key} {name}")

        page.get_by_role("button", name="New strategic goal").click()
        page.get_by_label(re.compile(r"^Title")).fill(title)
        page.get_by_label(re.compile(r"^Target date")).fill(target.isoformat())
        page.get_by_role("button", name="Create goal").click()
        expect(page.get_by_test_id("goal-title")).to_have_text(title)
        panel = page.get_by_test_id("goal-forecast")
        expect(panel).to_be_visible()
        for key, name in work:
            page.get_by_label(re.compile(r"^Unlinked work item")).select_option(label=f"{key} {name}")
            page.get_by_role("button", name="Link work item").click()
            expect(page.locator("#work ul").first).to_contain_text(f"{key} {name}")

        expected = delivery_server.run(GOAL_FORECAST, OWNER, ORG, title)
        assert expected["remaining"] == len(work), expected
        assert expected["probability"] is not None, expected.get("reason")
        expect(panel).to_have_attribute("data-verdict", expected["verdict"])
        expect(panel.get_by_test_id("goal-forecast-verdict")).to_have_text(expected["verdict_label"])
        expect(panel).to_contain_text(
            f"{expected['percent']} % chance to finish the 3 remaining work items (of 3) "
            f"by the target date {target.isoformat()}"
        )
        date_85 = expected["dates"]["85"]
        expect(panel.get_by_test_id("goal-forecast-85")).to_contain_text(
            date_85 or "more than three years away"
        )
        backtest = expected["backtest"]
        assert backtest is not None, "a year of history is enough to backtest"
        expect(panel.get_by_test_id("goal-forecast-backtest")).to_have_text(
            f"On this team's history, {backtest['text']}."
        )
        chart = panel.locator("figure svg[role=img]")
        expect(chart).to_have_attribute("aria-label", re.compile(r"^Simulated items done by the target date"))
        assert chart.locator("rect").count() > 1
        _shot(page, "goal-forecast-1280x800.png")

        panel.get_by_role("link", name="Delivery metrics and forecast of the product").click()
        expect(page).to_have_url(re.compile(r"items=3"))
        expect(page.get_by_test_id("forecast-result")).to_contain_text("Days until 3 items are done")

        # The product brief lists the goal's forecast too.
        page.goto(product_url.rstrip("/") + "/brief/")
        row = page.get_by_test_id("brief-forecasts").get_by_role("row").filter(has_text=title)
        expect(row).to_have_attribute("data-verdict", expected["verdict"])
        expect(row.locator("td")).to_have_text(
            [
                title,
                target.isoformat(),
                "3 of 3",
                f"{expected['percent']} %",
                re.compile(r"\S"),
                re.compile(r"\S"),
            ]
        )
        expect(row.locator("td").last).to_contain_text(expected["verdict_label"])
        if date_85:
            expect(row.locator("td").nth(4)).to_have_text(date_85)


def test_a_team_marks_a_process_change_compares_before_and_after_and_decides(
    delivery_server: Server, browser: Browser
) -> None:
    """Mark a change to the way of working on the demo product (recorded as a hypothesis), compare flow and
    DORA before and after (the table as the service computes it), then record the decision."""
    today = dt.datetime.now(dt.UTC).date()
    changed_on = today - dt.timedelta(days=75)
    title = "WIP limit lowered from 5 to 3"
    with watched(browser, delivery_server.base_url) as web:
        page = signed_in(web, OWNER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)
        page.get_by_test_id("nav-delivery").click()
        page.get_by_test_id("delivery-changes-link").click()
        expect(page.get_by_role("heading", name="Process changes", exact=True)).to_be_visible()
        page.get_by_test_id("change-new").click()
        page.get_by_label(re.compile(r"^Title")).fill(title)
        page.get_by_label(re.compile(r"^Description")).fill(
            "The board allows three items in progress per pair."
        )
        page.get_by_role("combobox", name=re.compile(r"^Product")).select_option(label=DEMO_PRODUCT)
        page.get_by_label(re.compile(r"^Changed on")).fill(changed_on.isoformat())
        page.get_by_label(re.compile(r"^Days before")).fill("30")
        page.get_by_label(re.compile(r"^Days after")).fill("30")
        page.get_by_role("button", name="Mark the change").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        _status(page, "marked and recorded as a hypothesis")
        expect(page.get_by_test_id("change-not-compared")).to_be_visible()
        expect(page.get_by_test_id("change-hypothesis")).to_be_visible()
        change_url = page.url

        # Compare: inline for a small scope, else a background job whose page links back.
        page.get_by_test_id("change-compare").click()
        table = page.get_by_test_id("change-comparison")
        expect(table.or_(page.get_by_test_id("job"))).to_be_visible()
        if page.get_by_test_id("job").count():
            _wait_for_job(page)
            page.get_by_test_id("job-result-link").click()
        expect(page).to_have_url(change_url)
        expected = delivery_server.run(CHANGE_COMPARISON, OWNER, ORG, title)
        effects = expected["effects"]
        assert effects, expected
        expect(table.locator("tbody tr")).to_have_count(len(effects))
        for effect in effects:
            row = table.locator(f'tr[data-metric="{effect["key"]}"]')
            expect(row.locator("th")).to_contain_text(effect["label"])
            expect(row.locator("td[data-verdict]")).to_have_attribute("data-verdict", effect["verdict"])
            expect(row.locator("td").last).to_have_text(f"{effect['n_before']} / {effect['n_after']}")
        expect(page.get_by_test_id("change-outcome")).to_have_text(expected["outcome"])
        if any(e["effect_kind"] == "ratio" and e["low"] is not None for e in effects):
            chart = page.get_by_test_id("change-chart")
            expect(chart).to_have_class(re.compile(r"chart-ready"))
            expect(chart.locator("svg").first).to_be_visible()
        _shot(page, "process-change-1280x800.png")

        # The decision concludes the change's hypothesis.
        decide = page.locator("form").filter(has=page.get_by_role("button", name="Record the decision"))
        decide.get_by_label(re.compile(r"^Decision")).select_option(label="Persevere")
        decide.get_by_label(re.compile(r"^We learned")).fill("Fewer items in progress, shorter cycle times.")
        decide.get_by_label(re.compile(r"^Therefore we will")).fill(
            "Keep the limit at 3 for another quarter."
        )
        decide.get_by_role("button", name="Record the decision").click()
        _status(page, "Decision recorded on the hypothesis")
        expect(page.get_by_test_id("change-decision")).to_contain_text("Persevere")
        expect(page.get_by_test_id("change-decision")).to_contain_text(f"({expected['outcome']})")
        expect(page.get_by_role("button", name="Record the decision")).to_have_count(0)
        page.get_by_test_id("change-hypothesis").click()
        expect(page.get_by_test_id("hypothesis-state")).to_have_text("Concluded")

        page.goto(f"/o/{ORG}/delivery/changes/")
        row = page.get_by_test_id("process-changes").get_by_role("row").filter(has_text=title)
        expect(row).to_contain_text(changed_on.isoformat())
        expect(row).to_contain_text("Concluded")


def test_a_github_source_is_connected_with_a_token_that_is_never_shown_again(
    delivery_server: Server, browser: Browser
) -> None:
    """A GitHub source's API connection: the token is required the first time, stored and never sent back
    to the browser (not even in the form), kept on a save with the field blank, forgotten on disconnect;
    a repository that is not owner/name is refused on its field. No fetch: the test machine is offline."""
    token = "github_pat_11AQ7XK2Y0vEXAMPLEonly_k3Fq9rT2mW8zL5nB1cD4eG7hJ0pS6uV9xY2aC5fH8"
    with watched(browser, delivery_server.base_url) as web:
        web.watch.allow_error(r"status of 422")  # the form answers 422 with its field errors
        page = signed_in(web, OWNER)
        page.context.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(f"/o/{ORG}/delivery/sources/")
        form = page.locator("form").filter(has=page.get_by_role("button", name="Add source"))
        form.get_by_label(re.compile(r"^Name")).fill("Payments on GitHub")
        form.get_by_label(re.compile(r"^Kind")).select_option("github")
        form.get_by_role("button", name="Add source").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Payments on GitHub")
        page.get_by_role("button", name="GitHub API").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("GitHub API · Payments on GitHub")
        connection = page.get_by_test_id("github-connection")
        expect(connection).to_contain_text("not connected")

        # No token the first time: refused on the token field; a bad repository on its own field.
        page.get_by_label(re.compile(r"^Repository")).fill("octo-org/payments")
        page.get_by_role("button", name="Connect").click()
        expect(
            page.get_by_label(re.compile(r"^Token")).locator("xpath=..").locator(".field-error")
        ).to_be_visible()
        page.get_by_label(re.compile(r"^Repository")).fill("just a name")
        page.get_by_label(re.compile(r"^Token")).fill(token)
        page.get_by_role("button", name="Connect").click()
        expect(
            page.get_by_label(re.compile(r"^Repository")).locator("xpath=..").locator(".field-error")
        ).to_be_visible()
        expect(page.get_by_label(re.compile(r"^Token"))).to_have_value(
            ""
        )  # never sent back, even on an error
        assert token not in page.content()

        page.get_by_label(re.compile(r"^Repository")).fill("octo-org/payments")
        page.get_by_label(re.compile(r"^Token")).fill(token)
        page.get_by_role("button", name="Connect").click()
        _status(page, "is connected to GitHub")
        expect(connection).to_contain_text("octo-org/payments")
        expect(connection).to_contain_text("stored (encrypted; never shown)")
        expect(page.get_by_role("button", name="Fetch now")).to_be_visible()
        expect(page.get_by_label(re.compile(r"^Token"))).to_have_value("")
        expect(page.get_by_text("Leave blank to keep the stored token.")).to_be_visible()
        assert token not in page.content()

        # Saved again with the token blank: the token stays.
        page.get_by_role("button", name="Save", exact=True).click()
        _status(page, "is connected to GitHub")
        expect(connection).to_contain_text("stored (encrypted; never shown)")

        page.get_by_role("button", name=re.compile(r"^Disconnect")).click()
        _status(page, "no longer connected to GitHub")
        expect(connection).to_contain_text("not connected")
        expect(page.get_by_role("button", name="Fetch now")).to_have_count(0)
        assert token not in page.content()
