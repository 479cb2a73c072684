"""One consistent set of statistics (issue 9 item 5): both scales on every row, corrections within each
metric role by default and chosen on the page, the page says what was applied, and the CLI and the web
give the same p-value for the same data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.urls import reverse

from truenorth.cli import main
from truenorth.evidence import cli as evidence_cli
from truenorth.evidence import synthetic
from truenorth.hypotheses import results, services
from truenorth.hypotheses.models import Experiment, ResultSnapshot
from truenorth.measures import sources

CONVERSION = {"name": "conversion", "aggregation": "proportion", "events": ["purchase"], "window_days": 7}
SECONDARY = [
    {"name": "page_views", "aggregation": "count", "events": ["page_view"], "window_days": 14},
    {"name": "revenue", "aggregation": "sum", "events": ["purchase"], "window_days": 14},
    {"name": "purchases", "aggregation": "count", "events": ["purchase"], "window_days": 14},
]


def _events(owner: Any, tmp_path: Path, settings: Any) -> tuple[Path, Any]:
    settings.TRUENORTH_DUCKDB_DIRS = [str(tmp_path)]
    path = sources.organisation_directory(owner.membership.organisation) / "events.duckdb"
    results.write_duckdb(path, 20_000, seed=3)
    source = sources.create_data_source(
        owner.membership, owner.user, name="Events", kind="duckdb", config={"path": str(path)}
    )
    return path, source


def _experiment(owner: Any, member: Any, make: Any, source: Any, definitions: list[dict[str, Any]]) -> Experiment:
    e = services.create_experiment(
        member.membership,
        member.user,
        make().pk,
        name="Checkout button",
        kind="ab",
        variations=[{"name": "control", "allocation": 0.5}, {"name": "treatment", "allocation": 0.5}],
        metrics=[
            {"role": "primary", "name": "Conversion"},
            {"role": "secondary", "name": "Page views"},
            {"role": "secondary", "name": "Revenue"},
            {"role": "secondary", "name": "Purchases"},
        ],
    )
    return results.configure_evidence(
        owner.membership,
        owner.user,
        e.pk,
        data_source_id=source.pk,
        evidence_key=synthetic.EXPERIMENT,
        metric_definitions=definitions,
    )


@pytest.fixture
def experiment(owner, member, make, tmp_path, settings) -> Experiment:
    _, source = _events(owner, tmp_path, settings)
    return _experiment(owner, member, make, source, [CONVERSION, *SECONDARY])


def _row(snapshot: ResultSnapshot, metric: str) -> dict[str, Any]:
    return next(r for r in snapshot.results["rows"] if r["metric"] == metric)


def _url(e: Experiment) -> str:
    return reverse("hypotheses:results", args=("alpha", e.pk))


def test_by_default_the_primary_decision_is_not_diluted_by_secondary_metrics(member, experiment) -> None:
    made = results.compute_results(member.membership, member.user, experiment.pk)
    conversion = _row(made, "conversion")
    assert conversion["family"] == "primary" and conversion["family_size"] == 1
    assert conversion["p_value_adjusted"] == conversion["p_value"]  # alone in its family: uncorrected
    secondary = [r for r in made.results["rows"] if r["role"] == "secondary"]
    assert len(secondary) == 3 and all(r["family"] == "secondary" for r in secondary)
    smallest = min(secondary, key=lambda r: r["p_value"])
    assert smallest["p_value_adjusted"] == pytest.approx(min(1.0, 3 * smallest["p_value"]))  # Holm over 3
    assert made.results["correction_applied"] == (
        "Primary uncorrected (one metric); Holm across 3 secondary metrics"
    )
    assert made.inputs["family"] == "role" and made.results["correction"] == "holm"
    # across all metrics (the old default) the primary is corrected with the others
    everything = results.compute_results(
        member.membership, member.user, experiment.pk, correction="holm", family="all"
    )
    assert _row(everything, "conversion")["p_value_adjusted"] > conversion["p_value_adjusted"]
    assert everything.results["correction_applied"] == "Holm across 4 metrics"


def test_every_row_carries_both_scales_each_p_value_with_its_own_interval(member, experiment) -> None:
    made = results.compute_results(member.membership, member.user, experiment.pk)
    for row in made.results["rows"]:
        assert row["scale"] == "relative"
        for scale in ("absolute", "relative"):
            p = row[f"p_value_{scale}_adjusted"]
            low, high = row[f"ci_low_{scale}_adjusted"], row[f"ci_high_{scale}_adjusted"]
            assert p is not None and low is not None and high is not None
            assert (low > 0 or high < 0) == (p < 0.05)
        assert row["p_value"] == row["p_value_relative"]  # the reported p is the relative one
        assert row["p_value_absolute"] != row["p_value_relative"]  # two tests, two p-values
    bayes = results.compute_results(member.membership, member.user, experiment.pk, method="bayesian")
    for row in bayes.results["rows"]:
        for scale in ("absolute", "relative"):
            assert 0 <= row[f"chance_to_win_{scale}"] <= 1
            assert row[f"risk_treatment_{scale}"] is not None
        assert bayes.results["correction_applied"].startswith("No correction")


def test_the_page_offers_the_correction_and_says_what_was_applied(member, stakeholder, experiment) -> None:
    page = member.client.get(_url(experiment)).content.decode()
    assert 'name="correction"' in page
    assert '<option value="holm:role" selected>Holm within each role (default)</option>' in page
    response = member.client.post(_url(experiment), {"method": "frequentist", "correction": "bh:all"})
    assert response.status_code == 302
    made = ResultSnapshot.objects.get(experiment=experiment)
    assert made.inputs["correction"] == "bh" and made.inputs["family"] == "all"
    page = member.client.get(_url(experiment)).content.decode()
    assert "Correction: Benjamini-Hochberg across 4 metrics" in page
    assert '<option value="bh:all" selected>' in page  # the experiment's latest choice sticks
    assert 'data-testid="p-relative"' in page and 'data-testid="p-absolute"' in page
    assert "(relative, corrected; uncorrected" in page
    # none: each p-value on its own; a made-up correction is refused
    member.client.post(_url(experiment), {"method": "frequentist", "correction": "none:role"})
    latest = services.headline_snapshot(member.membership, experiment.pk)
    assert latest is not None and latest.results["correction"] is None
    assert "Correction: No correction: each p-value on its own." in member.client.get(_url(experiment)).content.decode()
    assert member.client.post(_url(experiment), {"correction": "magic:role"}).status_code == 422
    assert stakeholder.client.post(_url(experiment), {"correction": "bh:all"}).status_code == 403
    # Bayesian: both scales' chance to win and risk, never a p-value
    results.compute_results(member.membership, member.user, experiment.pk, method="bayesian")
    page = member.client.get(_url(experiment)).content.decode()
    assert 'data-testid="chance-relative"' in page and 'data-testid="chance-absolute"' in page
    assert 'data-testid="p-relative"' not in page
    assert "Correction: No correction: Bayesian chances to win are not p-values." in page


def test_the_cli_and_the_web_give_the_same_p_value_for_the_same_data(
    owner, member, make, tmp_path, settings, capsys, monkeypatch
) -> None:
    path, source = _events(owner, tmp_path, settings)
    e = _experiment(owner, member, make, source, [CONVERSION])
    web = _row(results.compute_results(member.membership, member.user, e.pk), "conversion")
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(yaml.safe_dump({"control": "control", "metrics": [CONVERSION]}))
    monkeypatch.setattr(evidence_cli.console, "width", 250)
    code = main(["evidence", "run", "--source", str(path), "--experiment", synthetic.EXPERIMENT, "--metrics", str(metrics)])
    out = capsys.readouterr().out
    assert code == 0
    shown = {float(x) for x in re.findall(r"\b0\.\d{4}\b", out)}
    assert round(web["p_value_adjusted"], 4) in shown  # the web's p-value (relative scale) …
    assert round(web["p_value_absolute"], 4) != round(web["p_value_relative"], 4)
    assert round(web["p_value_absolute"], 4) not in shown  # … and not the other scale's


def test_the_results_command_says_what_correction_it_applied(capsys, monkeypatch, member, experiment) -> None:
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)
    who = ["--org", "alpha", "--as", member.user.email]
    assert main(["hypotheses", "results", str(experiment.pk), *who]) == 0
    out, _ = capsys.readouterr()
    assert "Correction: Primary uncorrected (one metric); Holm across 3 secondary metrics" in out
    assert main(["hypotheses", "results", str(experiment.pk), "--family", "all", *who]) == 0
    out, _ = capsys.readouterr()
    assert "Correction: Holm across 4 metrics" in out
    assert main(["hypotheses", "results", str(experiment.pk), "--family", "roles", *who]) == 2


def test_the_page_writes_p_values_and_corrections_as_the_sentences_do(member, experiment) -> None:
    """One formatter for p-values ("p < 0.0001", never "p = < 0.0001"); a metric alone in its role is not
    called corrected in its sentence, since nothing was corrected; the caption ends its sentence."""
    results.compute_results(member.membership, member.user, experiment.pk)
    snapshot = services.headline_snapshot(member.membership, experiment.pk)
    assert snapshot is not None
    primary = [r for r in snapshot.results["rows"] if r["family"] == "primary"]
    assert primary and all("-corrected" not in r["sentence"] for r in primary)
    secondary = [r for r in snapshot.results["rows"] if r["family"] == "secondary"]
    assert any("Holm-corrected" in r["sentence"] for r in secondary)
    page = member.client.get(_url(experiment)).content.decode()
    assert "p = &lt;" not in page and "p = <" not in page
    assert re.search(r'data-testid="p-relative">p (=|&lt;) ', page)
    assert "uncorrected (one metric)." in page or "metrics. Each p-value" in page
