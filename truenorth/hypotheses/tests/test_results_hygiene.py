"""Exposure and assignment hygiene through the results page and API: multi-assigned units are counted
and shown, windows and quantile metrics are accepted as definitions (errors name the field) and computed."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest

from truenorth.core.errors import ValidationFailed
from truenorth.evidence import synthetic
from truenorth.hypotheses import results
from truenorth.hypotheses.tests.test_results import BASE, _experiment, _url
from truenorth.measures import sources

DEFINITIONS: list[dict[str, Any]] = [
    {"name": "conversion", "aggregation": "proportion", "events": ["purchase"], "window_days": 7},
    {
        "name": "page_views",
        "aggregation": "count",
        "events": ["page_view"],
        "window_days": 14,
        "delay_hours": 1,
        "exposure_start": "2026-01-02",
        "exposure_end": "2026-01-13T00:00:00Z",
    },
    {"name": "order_p90", "aggregation": "quantile", "quantile": 0.9, "events": ["purchase"]},
    # Page views carry no value: no values, so "not enough data" rather than an error.
    {"name": "view_p50", "aggregation": "quantile", "quantile": 0.5, "events": ["page_view"]},
]


def _configure(owner: Any, experiment: Any, definitions: Any) -> Any:
    return results.configure_evidence(
        owner.membership,
        owner.user,
        experiment.pk,
        data_source_id=experiment.data_source_id,
        evidence_key=synthetic.EXPERIMENT,
        metric_definitions=definitions,
    )


def _add_multi_assigned(experiment: Any, units: int) -> None:
    path = sources.decrypt_config(experiment.data_source)["path"]
    with duckdb.connect(path) as con:
        con.execute(
            "INSERT INTO assignments SELECT unit_id, experiment, "
            "CASE WHEN variation = 'control' THEN 'treatment' ELSE 'control' END, first_exposure_at "
            f"FROM assignments ORDER BY unit_id LIMIT {int(units)}"
        )


def test_windows_quantiles_and_excluded_units_end_to_end(owner, member, make, tmp_path, settings) -> None:
    experiment = _experiment(owner, member, make, tmp_path, settings)
    experiment = _configure(owner, experiment, DEFINITIONS)
    _add_multi_assigned(experiment, 12)
    made = results.compute_results(member.membership, member.user, experiment.pk)
    assert made.results["srm"]["excluded_units"] == 12
    p90 = next(r for r in made.inputs["summary"] if r["metric"] == "order_p90")
    assert p90["type"] == "quantile" and p90["quantile_level"] == 0.9
    assert p90["quantile_lower"] <= p90["quantile"] <= p90["quantile_upper"]
    row = next(r for r in made.results["rows"] if r["metric"] == "order_p90")
    assert row["not_enough_data"] is False and row["p_value"] is not None
    assert "-- quantiles" in made.query
    empty = next(r for r in made.results["rows"] if r["metric"] == "view_p50")
    assert empty["not_enough_data"] is True
    page = member.client.get(_url(experiment))
    assert page.status_code == 200
    assert b'data-testid="excluded-units"' in page.content and b"12 units assigned" in page.content
    api = member.api().get(f"{BASE}/experiments/{experiment.pk}/results")
    assert api.status_code == 200
    assert api.json()["latest"]["results"]["srm"]["excluded_units"] == 12


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"name": "q", "aggregation": "quantile", "events": ["purchase"]}, "q.quantile"),
        ({"name": "w", "events": ["purchase"], "delay_hours": 200, "window_days": 7}, "w.delay_hours"),
        ({"name": "w", "events": ["purchase"], "exposure_start": "next week"}, "w.exposure_start"),
    ],
)
def test_bad_new_fields_are_refused_naming_them(
    owner, member, make, tmp_path, settings, definition, field
) -> None:
    experiment = _experiment(owner, member, make, tmp_path, settings)
    with pytest.raises(ValidationFailed) as caught:
        _configure(owner, experiment, [definition])
    assert caught.value.field == "metric_definitions" and caught.value.message.startswith(f"{field}:")
    bad = owner.api().put(
        f"{BASE}/experiments/{experiment.pk}/evidence",
        json.dumps(
            {"experiment_key": "checkout", "metric_definitions": [definition], "version": experiment.version}
        ),
        content_type="application/json",
    )
    assert bad.status_code == 422
    error = bad.json()["errors"][0]
    assert error["field"] == "metric_definitions" and field in error["message"]


def test_the_api_accepts_windows_and_quantiles(owner, member, make, tmp_path, settings) -> None:
    experiment = _experiment(owner, member, make, tmp_path, settings)
    ok = owner.api().put(
        f"{BASE}/experiments/{experiment.pk}/evidence",
        json.dumps(
            {"experiment_key": "checkout", "metric_definitions": DEFINITIONS, "version": experiment.version}
        ),
        content_type="application/json",
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["metric_definitions"] == DEFINITIONS
