"""Results computed from raw events in a real DuckDB file: snapshot with SQL and inputs, planted effects
recovered, SRM on a planted mismatch, a failing query stores nothing, the page, the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from truenorth.core.errors import ValidationFailed
from truenorth.evidence import synthetic
from truenorth.hypotheses import results, services
from truenorth.hypotheses.models import AppendOnlyError, Experiment, ResultSnapshot
from truenorth.measures import sources

BASE = "/api/v1/orgs/alpha"
DEFINITIONS: list[dict[str, Any]] = [
    {"name": "conversion", "aggregation": "proportion", "events": ["purchase"], "window_days": 7},
    {
        "name": "page_views",
        "aggregation": "count",
        "events": ["page_view"],
        "window_days": 14,
        "covariate_days": 14,
    },
]


def _experiment(
    owner: Any, member: Any, make: Any, tmp_path: Path, settings: Any, *, planted: Any = None
) -> Experiment:
    settings.TRUENORTH_DUCKDB_DIRS = [str(tmp_path)]
    path = sources.organisation_directory(owner.membership.organisation) / "events.duckdb"
    results.write_duckdb(path, 20_000, seed=3, planted=planted)
    source = sources.create_data_source(
        owner.membership, owner.user, name="Events", kind="duckdb", config={"path": str(path)}
    )
    h = make()
    e = services.create_experiment(
        member.membership,
        member.user,
        h.pk,
        name="Checkout button",
        kind="ab",
        variations=[{"name": "control", "allocation": 0.5}, {"name": "treatment", "allocation": 0.5}],
        metrics=[{"role": "primary", "name": "Conversion"}, {"role": "guardrail", "name": "Page views"}],
    )
    return results.configure_evidence(
        owner.membership,
        owner.user,
        e.pk,
        data_source_id=source.pk,
        evidence_key=synthetic.EXPERIMENT,
        metric_definitions=DEFINITIONS,
    )


@pytest.fixture
def experiment(owner, member, make, tmp_path, settings) -> Experiment:
    return _experiment(owner, member, make, tmp_path, settings)


def _row(snapshot: ResultSnapshot, metric: str) -> dict[str, Any]:
    return next(r for r in snapshot.results["rows"] if r["metric"] == metric)


def test_compute_stores_a_snapshot_with_sql_inputs_and_the_planted_effect(member, experiment) -> None:
    made = results.compute_results(member.membership, member.user, experiment.pk)
    assert "SELECT" in made.query.upper()
    assert {r["metric"] for r in made.inputs["summary"]} == {"conversion", "page_views"}
    assert made.inputs["method"] == "frequentist" and made.results["alpha"] == 0.05
    assert made.results["freshness"].startswith("2026-")
    conversion = _row(made, "conversion")
    assert conversion["role"] == "primary"
    lift = synthetic.Planted().conversion_lift
    assert conversion["ci_low_adjusted"] < lift < conversion["ci_high_adjusted"]
    assert "conversion" in conversion["sentence"] and "CI" in conversion["sentence"]
    assert _row(made, "page_views")["guardrail"] in ("ok", "breached")
    assert _row(made, "page_views")["kind"] == "mean (CUPED)"
    assert made.results["srm"]["mismatch"] is False


def test_bayesian_results_give_a_chance_to_win_not_a_p_value(member, experiment) -> None:
    made = results.compute_results(member.membership, member.user, experiment.pk, method="bayesian")
    row = _row(made, "conversion")
    assert row["p_value"] is None and 0 <= row["chance_to_win"] <= 1
    assert "not a p-value" in row["sentence"]


def test_srm_fires_on_a_planted_mismatch(owner, member, make, tmp_path, settings) -> None:
    e = _experiment(owner, member, make, tmp_path, settings, planted=synthetic.Planted(treatment_share=0.45))
    made = results.compute_results(member.membership, member.user, e.pk)
    assert made.results["srm"]["mismatch"] is True
    assert "sample ratio mismatch" in _row(made, "conversion")["sentence"]


def test_a_failing_query_stores_nothing(member, experiment) -> None:
    first = results.compute_results(member.membership, member.user, experiment.pk)
    assert experiment.data_source is not None
    Path(sources.decrypt_config(experiment.data_source)["path"]).unlink()
    with pytest.raises(ValidationFailed) as caught:
        results.compute_results(member.membership, member.user, experiment.pk)
    assert caught.value.field == "query" and "does not exist" in caught.value.message
    assert list(ResultSnapshot.objects.filter(experiment=experiment)) == [first]


def test_a_broken_metric_definition_is_refused_on_save(owner, experiment) -> None:
    with pytest.raises(ValidationFailed) as caught:
        results.configure_evidence(
            owner.membership,
            owner.user,
            experiment.pk,
            data_source_id=experiment.data_source_id,
            evidence_key="checkout",
            metric_definitions=[{"name": "x", "aggregation": "median", "events": ["a"]}],
        )
    assert caught.value.field == "metric_definitions" and "median" in caught.value.message
    with pytest.raises(ValidationFailed) as caught:
        results.configure_evidence(
            owner.membership,
            owner.user,
            experiment.pk,
            data_source_id=None,
            evidence_key="",
            metric_definitions=DEFINITIONS,
        )
    assert caught.value.field == "evidence_key"


def test_snapshots_are_immutable(member, experiment) -> None:
    made = results.compute_results(member.membership, member.user, experiment.pk)
    with pytest.raises(AppendOnlyError):
        made.save()
    with pytest.raises(AppendOnlyError):
        ResultSnapshot.objects.filter(pk=made.pk).update(method="x")
    with pytest.raises(AppendOnlyError):
        made.delete()


def _url(experiment: Experiment, snapshot: ResultSnapshot | None = None) -> str:
    if snapshot is None:
        return reverse("hypotheses:results", args=("alpha", experiment.pk))
    return reverse("hypotheses:result_snapshot", args=("alpha", experiment.pk, snapshot.pk))


def test_the_page_shows_results_to_owner_and_stakeholder(owner, member, stakeholder, experiment) -> None:
    made = results.compute_results(member.membership, member.user, experiment.pk)
    for persona in (owner, stakeholder):
        page = persona.client.get(_url(experiment))
        assert page.status_code == 200
        text = page.content.decode()
        assert (
            "results-chart-spec" in text
            and "p-value" in text
            and _row(made, "conversion")["sentence"][:30] in text
        )
        assert persona.client.get(_url(experiment, made)).status_code == 200
    assert "Compute results now" in owner.client.get(_url(experiment)).content.decode()
    assert "Compute results now" not in stakeholder.client.get(_url(experiment)).content.decode()
    hypothesis_page = owner.client.get(
        reverse("hypotheses:hypothesis", args=("alpha", experiment.hypothesis_id))
    )
    assert _url(experiment) in hypothesis_page.content.decode()


def test_the_chart_spec_renders_to_svg(member, experiment) -> None:
    from truenorth.measures.charts import chart_svg

    made = results.compute_results(member.membership, member.user, experiment.pk)
    spec = results.effect_chart(made)
    assert spec is not None and len(spec["data"]["values"]) == 2
    assert "<svg" in chart_svg(spec)


def test_compute_from_the_page_and_stakeholder_post_is_403(member, stakeholder, experiment) -> None:
    assert stakeholder.client.post(_url(experiment), {"method": "frequentist"}).status_code == 403
    response = member.client.post(_url(experiment), {"method": "sequential"})
    assert response.status_code == 302  # to the job's page, which links to the new snapshot
    made = ResultSnapshot.objects.get(experiment=experiment)
    assert made.method.startswith("sequential")
    job_page = member.client.get(response["Location"]).content.decode()
    assert 'data-status="succeeded"' in job_page
    assert reverse("hypotheses:result_snapshot", args=("alpha", experiment.pk, made.pk)) in job_page
    assert member.client.post(_url(experiment), {"method": "magic"}).status_code == 422


def test_results_page_query_count_is_fixed(member, experiment) -> None:
    results.compute_results(member.membership, member.user, experiment.pk)
    member.client.get(_url(experiment))  # the session's first request does extra work
    with CaptureQueriesContext(connection) as one:
        assert member.client.get(_url(experiment)).status_code == 200
    for method in ("bayesian", "sequential"):
        results.compute_results(member.membership, member.user, experiment.pk, method=method)
    with CaptureQueriesContext(connection) as three:
        assert member.client.get(_url(experiment)).status_code == 200
    assert len(three) == len(one)


def test_api_computes_and_lists_and_refuses_a_bad_method(member, stakeholder, experiment) -> None:
    path = f"{BASE}/experiments/{experiment.pk}/results"
    bad = member.api().post(path, json.dumps({"method": "magic"}), content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "method"
    made = member.api().post(path, json.dumps({"method": "bayesian"}), content_type="application/json")
    assert made.status_code == 202, made.content  # a background job (it ran inline here)
    job = made.json()
    assert made["Location"] == job["url"] and job["status"] == "succeeded", job
    refused = stakeholder.api().post(path, json.dumps({}), content_type="application/json")
    assert refused.status_code == 403
    listed = stakeholder.api_read().get(path).json()
    assert listed["latest"]["id"] == job["result"]["snapshot"] and len(listed["snapshots"]) == 1
    assert listed["latest"]["query"]


def test_api_sets_evidence_settings(owner, experiment) -> None:
    path = f"{BASE}/experiments/{experiment.pk}/evidence"
    ok = owner.api().put(
        path,
        json.dumps(
            {"experiment_key": "checkout", "metric_definitions": DEFINITIONS[:1], "version": experiment.version}
        ),
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["data_source"] is None
    bad = owner.api().put(
        path,
        json.dumps(
            {
                "experiment_key": "checkout",
                "metric_definitions": [{"name": "x", "events": []}],
                "version": experiment.version + 1,
            }
        ),
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "metric_definitions"


def test_cli_prints_the_rows_and_refuses_a_bad_method(capsys, monkeypatch, member, experiment) -> None:
    from truenorth import cli

    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)
    who = ["--org", "alpha", "--as", member.user.email]
    code = cli.main(["hypotheses", "results", str(experiment.pk), "--method", "bayesian", *who])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "conversion (primary)" in out and "not a p-value" in out and "[guardrail " in out
    code = cli.main(["hypotheses", "results", str(experiment.pk), "--method", "magic", *who])
    _, err = capsys.readouterr()
    assert code == 2 and "magic" in err
    assert ResultSnapshot.objects.filter(experiment=experiment).count() == 1


def test_the_demo_ab_test_has_raw_events_and_a_snapshot(db, tmp_path, settings) -> None:
    from truenorth.demo import load_demo
    from truenorth.hypotheses.demo import DEMO_FILE

    settings.TRUENORTH_DUCKDB_DIRS = [str(tmp_path)]
    load_demo()
    load_demo()  # idempotent
    e = Experiment.objects.get(name="Trip screen download button")
    demo_org = e.hypothesis.organisation
    assert (sources.organisation_directory(demo_org) / DEMO_FILE).is_file()  # the demo organisation's own
    assert not (tmp_path / DEMO_FILE).exists()
    snapshot = ResultSnapshot.objects.get(experiment=e)
    assert e.data_source is not None and snapshot.query
    roles = {r["metric"]: r["role"] for r in snapshot.results["rows"]}
    assert roles == {
        "region_download_rate": "primary",
        "regions_downloaded_per_hiker": "secondary",
        "map_views_per_hiker": "guardrail",
    }


def test_the_evidence_settings_form(owner, member, stakeholder, experiment) -> None:
    url = reverse("hypotheses:evidence_settings", args=("alpha", experiment.pk))
    data = {
        "data_source": str(experiment.data_source_id),
        "evidence_key": "checkout",
        "metric_definitions": json.dumps(DEFINITIONS[:1]),
        "version": str(experiment.version),
    }
    assert stakeholder.client.post(url, data).status_code == 403
    assert member.client.post(url, data).status_code == 403  # evidence settings are SQL: admins only
    bad = owner.client.post(url, {**data, "metric_definitions": "[{"})
    assert bad.status_code == 422 and "Not valid JSON" in bad.content.decode()
    assert owner.client.post(url, data).status_code == 302
    experiment.refresh_from_db()
    assert experiment.metric_definitions == DEFINITIONS[:1]
    assert 'data-testid="evidence-settings"' in owner.client.get(_url(experiment)).content.decode()
    # A member may compute results but is not offered a form that would only answer 403.
    assert 'data-testid="evidence-settings"' not in member.client.get(_url(experiment)).content.decode()
