"""Delivery metrics API: flow, DORA (with ?year=) and forecasts; 422 naming the field; 404 elsewhere."""

from __future__ import annotations

import datetime as dt

import pytest

from truenorth.delivery import dora
from truenorth.delivery.services import metrics
from truenorth.delivery.tests.metrics_data import build, expected_flow

pytestmark = pytest.mark.django_db

BASE = "/api/v1/orgs/alpha/delivery"
WINDOW = {"since": "2026-03-02", "until": "2026-03-15"}


def field_of(response) -> str:
    return response.json()["errors"][0]["field"]


def test_flow(owner, outsider) -> None:
    delivery = build(owner.membership.organisation)
    response = owner.api_read().get(f"{BASE}/flow", {**WINDOW, "product_id": delivery.product.pk})
    assert response.status_code == 200, response.content
    data = response.json()
    want = expected_flow()
    assert data["flow"]["cycle_time_days"]["85"] == pytest.approx(want.cycle_time_days[85], abs=0.01)
    assert data["flow"]["wip"] == 1 and data["flow"]["completed_count"] == 3
    assert "dora" not in data
    assert outsider.api().get(f"{BASE}/flow").status_code == 404
    assert (
        outsider.api()
        .get("/api/v1/orgs/bravo-secret/delivery/flow", {"product_id": delivery.product.pk})
        .status_code
        == 404
    )
    bad = owner.api().get(f"{BASE}/flow", {"since": "2026-03-20", "until": "2026-03-01"})
    assert bad.status_code == 422 and field_of(bad) == "since"
    assert field_of(owner.api().get(f"{BASE}/flow", {"since": "yesterday"})) == "since"


def test_dora_and_year(owner) -> None:
    build(owner.membership.organisation)
    years = dora.available_years()
    data = owner.api().get(f"{BASE}/dora", {**WINDOW, "year": years[0]}).json()
    assert data["dora"]["year"] == years[0] and data["dora"]["years"] == years
    assert data["dora"]["metrics"]["change_failure_rate"]["value"] == 0.5
    assert data["dora"]["deployments"] == 2 and "flow" not in data
    bad = owner.api().get(f"{BASE}/dora", {"year": 1999})
    assert bad.status_code == 422 and field_of(bad) == "year"


def test_forecast(owner, monkeypatch) -> None:
    build(owner.membership.organisation)
    monkeypatch.setattr(metrics, "_history", lambda membership, scope, days: [2] * 50)
    data = owner.api().get(f"{BASE}/forecast", {"items": 10}).json()
    assert data["forecast"]["question"] == "when" and data["forecast"]["percentiles"]["85"] == 5.0
    by = (metrics._today() + dt.timedelta(days=7)).isoformat()
    data = owner.api().get(f"{BASE}/forecast", {"by": by}).json()
    assert data["forecast"]["percentiles"] == {"50": 14.0, "85": 14.0, "95": 14.0}
    assert data["forecast"]["backtest"]["held_85"] == data["forecast"]["backtest"]["forecasts"]
    for params, field in (
        ({}, "items"),
        ({"items": 3, "by": by}, "items"),
        ({"items": 0}, "items"),
        ({"by": "2020-01-01"}, "by"),
        ({"items": "many"}, "items"),
    ):
        response = owner.api().get(f"{BASE}/forecast", params)
        assert response.status_code == 422 and field_of(response) == field, params


def test_big_scope_answers_with_a_job(owner, settings) -> None:
    delivery = build(owner.membership.organisation)
    settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS = 5
    response = owner.api().get(f"{BASE}/flow", {**WINDOW, "product_id": delivery.product.pk})
    assert response.status_code == 202 and response["Location"].endswith(f"/jobs/{response.json()['id']}")
    assert response.json()["result"]["flow"]["wip"] == 1
