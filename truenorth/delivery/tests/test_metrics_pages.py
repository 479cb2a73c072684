"""Delivery pages: the overview per product with DORA bands and charts, the product page with its
forecast and backtest, the background job above the row threshold; 404 for another organisation."""

from __future__ import annotations

import datetime as dt

import pytest

from truenorth.delivery.services import metrics
from truenorth.delivery.tests.metrics_data import build
from truenorth.jobs.models import Job

pytestmark = pytest.mark.django_db

WINDOW = {"since": "2026-03-02", "until": "2026-03-15"}


def test_overview_shows_each_product_with_bands_and_charts(owner, outsider) -> None:
    delivery = build(owner.membership.organisation)
    response = owner.client.get("/o/alpha/delivery/", WINDOW)
    assert response.status_code == 200
    page = response.content.decode()
    prefix = f"p{delivery.product.pk}"
    assert f'data-testid="delivery-section-{prefix}"' in page and "Payments" in page
    assert 'data-testid="dora-change_failure_rate"' in page and "50.0 %" in page
    for chart in ("cycle", "throughput", "cfd", "age", "dora"):
        assert f'data-testid="chart-{prefix}-{chart}"' in page
    assert 'data-testid="nav-delivery"' in page
    assert outsider.client.get("/o/alpha/delivery/").status_code == 404


def test_year_selector_changes_the_band_table(owner) -> None:
    build(owner.membership.organisation)
    from truenorth.delivery import dora

    for year in dora.available_years():
        page = owner.client.get("/o/alpha/delivery/", {**WINDOW, "year": year}).content.decode()
        assert f"DORA ({year} bands)" in page
    bad = owner.client.get("/o/alpha/delivery/", {**WINDOW, "year": 1999})
    assert bad.status_code == 200  # the form says what is wrong; the page shows the latest year


def test_empty_organisation(owner) -> None:
    page = owner.client.get("/o/alpha/delivery/").content.decode()
    assert 'data-testid="delivery-empty"' in page


def test_product_page_and_forecast(owner, outsider, monkeypatch) -> None:
    delivery = build(owner.membership.organisation)
    url = f"/o/alpha/products/{delivery.product.pk}/delivery/"
    page = owner.client.get(url, WINDOW).content.decode()
    assert 'data-testid="delivery-section-all"' in page and 'data-testid="forecast-form"' in page
    monkeypatch.setattr(metrics, "_history", lambda membership, scope, days: [1, 2] * 40)
    by = (metrics._today() + dt.timedelta(days=14)).isoformat()
    page = owner.client.get(url, {"by": by}).content.decode()
    assert 'data-testid="forecast-result"' in page and 'data-testid="forecast-p85"' in page
    assert "the 85% figure held in" in page
    page = owner.client.get(url, {"items": 10}).content.decode()
    assert "Days until 10 items are done" in page
    both = owner.client.get(url, {"items": 10, "by": by}).content.decode()
    assert 'data-testid="forecast-errors"' in both and 'data-testid="forecast-result"' not in both
    assert outsider.client.get(url).status_code == 404
    assert owner.client.get("/o/alpha/products/999999/delivery/").status_code == 404


def test_above_the_threshold_the_page_offers_a_job(owner, outsider, settings) -> None:
    delivery = build(owner.membership.organisation)
    settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS = 5
    url = f"/o/alpha/products/{delivery.product.pk}/delivery/"
    page = owner.client.get(url, WINDOW).content.decode()
    assert 'data-testid="delivery-compute"' in page and 'data-testid="flow-all"' not in page
    response = owner.client.post("/o/alpha/delivery/compute/", {"product_id": delivery.product.pk, **WINDOW})
    job = Job.objects.get(kind=metrics.METRICS_KIND)
    assert response.status_code == 302 and response["Location"].endswith(f"/jobs/{job.pk}/")
    assert job.status == "succeeded", job.error
    assert job.result["link"] == f"{url}?job={job.pk}"
    shown = owner.client.get(url, {"job": job.pk}).content.decode()
    assert 'data-testid="flow-all"' in shown
    assert outsider.client.get(url, {"job": job.pk}).status_code == 404
    assert outsider.client.post("/o/alpha/delivery/compute/", {}).status_code == 404


def test_overview_queries_do_not_grow_with_products(owner) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org = owner.membership.organisation
    build(org)
    owner.client.get("/o/alpha/delivery/", WINDOW)  # the first visit also remembers the organisation
    with CaptureQueriesContext(connection) as one:
        owner.client.get("/o/alpha/delivery/", WINDOW)
    build(org, name="Search")
    build(org, name="Maps")
    with CaptureQueriesContext(connection) as three:
        page = owner.client.get("/o/alpha/delivery/", WINDOW).content.decode()
    assert "Maps" in page and "Search" in page
    assert len(three.captured_queries) == len(one.captured_queries)
