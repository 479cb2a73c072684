"""Evidence settings with a table/column mapping (issue 9 item 4): Parquet files with other column names
in the organisation's DuckDB directory (written with duckdb COPY), the directory rules of data sources
still applying, errors that say which setting to fix, the form's mapping fields and its Preview."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest
from django.urls import reverse

from truenorth.core.errors import ValidationFailed
from truenorth.evidence import synthetic
from truenorth.hypotheses import results, services
from truenorth.hypotheses.models import Experiment, ResultSnapshot
from truenorth.jobs.models import Job
from truenorth.measures import sources
from truenorth.measures.models import DataSource

DEFINITIONS: list[dict[str, Any]] = [
    {"name": "conversion", "aggregation": "proportion", "events": ["purchase"], "window_days": 7},
]
MAPPING = {
    "assignments": {
        "table": "raw/exposures.parquet",
        "unit": "user_id",
        "variation": "arm",
        "exposed_at": "seen_at",
        "experiment": "test_name",
    },
    "events": {"table": "raw/clicks.parquet", "unit": "uid", "name": "kind", "value": "amount", "at": "ts"},
}


def write_org_parquet(organisation: Any, units: int = 4000) -> None:
    """The synthetic experiment as two Parquet files with non-default column names in
    ``<org directory>/raw/`` (via a scratch DuckDB file and COPY)."""
    directory = sources.organisation_directory(organisation)
    (directory / "raw").mkdir(exist_ok=True)
    scratch = directory / "scratch.duckdb"
    results.write_duckdb(scratch, units, seed=5)
    with duckdb.connect(str(scratch)) as con:
        con.execute(
            "COPY (SELECT unit_id AS user_id, variation AS arm, first_exposure_at AS seen_at, "
            f"experiment AS test_name FROM assignments) TO '{directory / 'raw' / 'exposures.parquet'}' "
            "(FORMAT parquet)"
        )
        con.execute(
            'COPY (SELECT unit_id AS uid, name AS kind, value AS amount, "at" AS ts FROM events) '
            f"TO '{directory / 'raw' / 'clicks.parquet'}' (FORMAT parquet)"
        )
    scratch.unlink()


@pytest.fixture
def experiment(owner, member, make) -> Experiment:
    write_org_parquet(owner.membership.organisation)
    source = sources.create_data_source(
        owner.membership, owner.user, name="Lake", kind="duckdb", config={"path": ""}
    )
    h = make()
    e = services.create_experiment(
        member.membership,
        member.user,
        h.pk,
        name="Checkout button",
        kind="ab",
        variations=[{"name": "control", "allocation": 0.5}, {"name": "treatment", "allocation": 0.5}],
        metrics=[{"role": "primary", "name": "Conversion"}],
    )
    return results.configure_evidence(
        owner.membership,
        owner.user,
        e.pk,
        data_source_id=source.pk,
        evidence_key=synthetic.EXPERIMENT,
        metric_definitions=DEFINITIONS,
        mapping=MAPPING,
    )


def test_results_are_computed_from_parquet_files_with_other_column_names(member, experiment) -> None:
    assert experiment.evidence_mapping["events"]["value"] == "amount"
    made = results.compute_results(member.membership, member.user, experiment.pk)
    row = next(r for r in made.results["rows"] if r["metric"] == "conversion")
    assert row["role"] == "primary" and not row["not_enough_data"]
    assert sum(made.results["srm"]["units"].values()) == 4000
    assert made.inputs["mapping"]["assignments"]["exposed_at"] == "seen_at"
    assert 'READ_PARQUET(' in made.query and '"amount"' in made.query
    assert made.results["freshness"].startswith("2026-")


def test_without_metric_definitions_the_metrics_are_discovered(owner, member, experiment) -> None:
    results.configure_evidence(
        owner.membership,
        owner.user,
        experiment.pk,
        data_source_id=experiment.data_source_id,
        evidence_key=synthetic.EXPERIMENT,
        metric_definitions=[],
    )
    made = results.compute_results(member.membership, member.user, experiment.pk)
    assert {r["metric"] for r in made.results["rows"]} == {
        "page_view_count",
        "page_view_converted",
        "purchase_count",
        "purchase_converted",
    }


def test_a_file_outside_the_organisations_directory_is_refused(owner, outsider, experiment) -> None:
    other = sources.organisation_directory(outsider.membership.organisation)
    (other / "secret.parquet").write_bytes(b"PAR1")
    for spec in (str(other / "secret.parquet"), f"../org-{outsider.membership.organisation_id}/secret.parquet"):
        with pytest.raises(ValidationFailed) as caught:
            results.configure_evidence(
                owner.membership,
                owner.user,
                experiment.pk,
                data_source_id=experiment.data_source_id,
                evidence_key="x",
                metric_definitions=DEFINITIONS,
                mapping={"events": {"table": spec}},
            )
        assert caught.value.field == "events_table" and "outside this organisation" in caught.value.message


def test_a_file_needs_a_duckdb_data_source(owner) -> None:
    warehouse = DataSource(organisation=owner.membership.organisation, name="Warehouse", kind="postgres")
    with pytest.raises(ValidationFailed) as caught:
        results.clean_mapping({"events": {"table": "clicks.parquet"}}, warehouse, owner.membership)
    assert caught.value.field == "events_table" and "choose a DuckDB data source" in caught.value.message


def test_a_missing_table_or_column_says_which_setting_to_fix(owner, member, experiment) -> None:
    cases = [
        ({**MAPPING, "assignments": {**MAPPING["assignments"], "table": "assignments"}}, "assignments_table",
         "no table `assignments` in “Lake” (this organisation's DuckDB directory): set the assignment table in Evidence settings"),
        ({**MAPPING, "events": {**MAPPING["events"], "value": "value"}}, "events_value",
         "no column `value` in the event table `raw/clicks.parquet`"),
        ({**MAPPING, "events": {**MAPPING["events"], "table": "raw/nope.parquet"}}, "events_table",
         "no file `raw/nope.parquet`"),
    ]
    for mapping, field, text in cases:
        fresh = services.get_experiment(owner.membership, experiment.pk)
        results.configure_evidence(
            owner.membership,
            owner.user,
            experiment.pk,
            data_source_id=experiment.data_source_id,
            evidence_key=synthetic.EXPERIMENT,
            metric_definitions=DEFINITIONS,
            mapping=mapping,
            version=fresh.version,
        )
        with pytest.raises(ValidationFailed) as caught:
            results.compute_results(member.membership, member.user, experiment.pk)
        assert caught.value.field == field, caught.value.message
        assert text in caught.value.message and "Did you mean" not in caught.value.message
    assert not ResultSnapshot.objects.filter(experiment=experiment).exists()


def _form(experiment: Experiment, **changes: str) -> dict[str, str]:
    data = {
        "data_source": str(experiment.data_source_id),
        "evidence_key": synthetic.EXPERIMENT,
        "metric_definitions": json.dumps(DEFINITIONS),
        "version": str(experiment.version),
    }
    for section, keys in MAPPING.items():
        for key, value in keys.items():
            data[f"{section}_{key}"] = value
    data.update(changes)
    return data


def _preview(client: Any, experiment: Experiment, **changes: str) -> str:
    """Press Preview: a background job (inline in tests), then its link back to the results page."""
    url = reverse("hypotheses:evidence_settings", args=("alpha", experiment.pk))
    submitted = client.post(url, _form(experiment, action="preview", **changes))
    assert submitted.status_code == 302 and "/jobs/" in submitted["Location"], submitted.content[:300]
    job = Job.objects.get(pk=int(submitted["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert job.status == "succeeded" and job.result["link"].endswith(f"?preview={job.pk}#evidence-settings")
    assert "amount" not in json.dumps(job.result)  # the rows are sealed: only the results page shows them
    return client.get(job.result["link"].split("#")[0]).content.decode()


def test_the_form_saves_the_mapping_and_previews_each_table(owner, member, outsider, experiment) -> None:
    url = reverse("hypotheses:evidence_settings", args=("alpha", experiment.pk))
    page = owner.client.get(reverse("hypotheses:results", args=("alpha", experiment.pk))).content.decode()
    assert 'name="events_value" value="amount"' in page and 'placeholder="first_exposure_at"' in page
    before = experiment.version
    text = _preview(owner.client, experiment, events_value="order")
    assert 'data-testid="mapping-preview"' in text
    assert text.count('data-testid="preview-table"') == 1 and "<th scope=\"col\">seen_at</th>" in text
    assert "no column `order` in the event table `raw/clicks.parquet`" in text
    assert 'name="events_value" value="order"' in text  # what was typed comes back with the rows
    experiment.refresh_from_db()
    assert experiment.version == before and experiment.evidence_mapping["events"]["value"] == "amount"
    preview = _preview(owner.client, experiment)
    assert preview.count('data-testid="preview-table"') == 2
    assert "page_view" in preview and ("<td>control</td>" in preview or "<td>treatment</td>" in preview)
    broken = _preview(owner.client, experiment, events_at="when")
    assert "no column `when` in the event table" in broken and 'data-testid="preview-error"' in broken
    assert member.client.post(url, _form(experiment, action="preview")).status_code == 403
    # A member sees no rows through the link; nor does another organisation (404).
    job = Job.objects.filter(kind="experiment.mapping_preview").latest("pk")
    results_url = reverse("hypotheses:results", args=("alpha", experiment.pk))
    assert 'data-testid="mapping-preview"' not in member.client.get(f"{results_url}?preview={job.pk}").content.decode()
    assert outsider.client.get(f"{results_url}?preview={job.pk}").status_code == 404
    no_source = owner.client.post(url, _form(experiment, action="preview", data_source=""))
    assert no_source.status_code == 422 and "Choose a data source to preview." in no_source.content.decode()
    saved = owner.client.post(url, _form(experiment, events_value="amount", events_at="ts", events_name="kind"))
    assert saved.status_code == 302
    bad = owner.client.post(url, _form(experiment, events_table="x; DROP TABLE y"))
    assert bad.status_code == 422 and "not a table name" in bad.content.decode()
    assert 'name="events_table" value="x; DROP TABLE y" placeholder="events" maxlength="500" aria-invalid="true"' in (
        bad.content.decode()
    )


def test_the_api_sets_and_returns_the_mapping(owner, experiment) -> None:
    path = f"/api/v1/orgs/alpha/experiments/{experiment.pk}/evidence"
    body = {
        "data_source": experiment.data_source_id,
        "experiment_key": "checkout",
        "metric_definitions": [],
        "mapping": {"events": {"table": "raw/clicks.parquet", "value": "amount"}},
        "version": experiment.version,
    }
    ok = owner.api().put(path, json.dumps(body), content_type="application/json")
    assert ok.status_code == 200
    assert ok.json()["mapping"] == {"assignments": {}, "events": {"table": "raw/clicks.parquet", "value": "amount"}}
    body = {**body, "version": ok.json()["version"], "mapping": {"events": {"value": 'v"; DROP TABLE events'}}}
    bad = owner.api().put(path, json.dumps(body), content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "mapping.events.value"
    kept = {**body, "mapping": None}
    assert owner.api().put(path, json.dumps(kept), content_type="application/json").json()["mapping"] == (
        ok.json()["mapping"]
    )


def test_the_typed_experiment_key_comes_back_after_a_preview_and_a_failed_save(owner, experiment) -> None:
    """The form shows what the admin typed, not the saved key, so pressing Save after either keeps it."""
    url = reverse("hypotheses:evidence_settings", args=("alpha", experiment.pk))
    page = _preview(owner.client, experiment, evidence_key="typed-but-not-saved")
    assert 'name="evidence_key" value="typed-but-not-saved"' in page
    failed = owner.client.post(url, _form(experiment, evidence_key="typed-again", metric_definitions="[{"))
    assert failed.status_code == 422
    assert 'name="evidence_key" value="typed-again"' in failed.content.decode()
    experiment.refresh_from_db()
    assert experiment.evidence_key not in {"typed-but-not-saved", "typed-again"}


def test_a_stale_version_is_a_409_that_keeps_what_was_typed(owner, experiment) -> None:
    url = reverse("hypotheses:evidence_settings", args=("alpha", experiment.pk))
    stale = _form(experiment, evidence_key="typed-over-a-newer-edit", version=str(experiment.version - 1))
    response = owner.client.post(url, stale)
    assert response.status_code == 409
    assert 'name="evidence_key" value="typed-over-a-newer-edit"' in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.evidence_key != "typed-over-a-newer-edit"
