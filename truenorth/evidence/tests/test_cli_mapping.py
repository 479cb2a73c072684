"""`truenorth evidence run` with a mapping (flags or a YAML `mapping:`), --json, --method, --correction
and --weights; `truenorth analyze` with column flags."""

from __future__ import annotations

import json

import pytest
import yaml

from truenorth.cli import main
from truenorth.evidence import cli as evidence_cli

from .test_mapping import RENAMED, write_renamed

FLAGS = [
    "--assignments",
    "exposures.parquet",
    "--unit-column",
    "user_id",
    "--variation-column",
    "Arm",
    "--exposure-column",
    "seen_at",
    "--experiment-column",
    "select",
    "--events",
    "clicks.parquet",
    "--event-unit-column",
    "uid",
    "--event-name-column",
    "kind",
    "--value-column",
    "order",
    "--timestamp-column",
    "ts",
]
METRICS = {
    "metrics": [
        {"name": "conversion", "aggregation": "proportion", "events": "purchase"},
        {"name": "revenue", "aggregation": "sum", "events": "purchase"},
    ]
}


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(evidence_cli.console, "width", 200)


@pytest.fixture(scope="module")
def renamed(small_parquet, tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli_renamed")
    write_renamed(small_parquet, directory)
    return directory


def _json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_json_output_parses_and_mapping_flags_give_the_default_names_numbers(
    renamed, small_parquet, tmp_path, capsys
):
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(yaml.safe_dump(METRICS))
    base = ["evidence", "run", "--experiment", "checkout", "--metrics", str(metrics), "--json"]
    mapped = _json(capsys, [*base, "--source", str(renamed), *FLAGS])
    default = _json(capsys, [*base, "--source", str(small_parquet)])
    assert mapped["units"] == default["units"] and set(mapped["units"]) == {"control", "treatment"}
    assert mapped["mapping"]["events"]["value"] == "order" and mapped["mapping"]["assignments"]["variation"] == "Arm"
    assert [r["p_value"] for r in mapped["results"]] == pytest.approx([r["p_value"] for r in default["results"]])
    assert {r["metric"] for r in mapped["results"]} == {"conversion", "revenue"}
    assert mapped["method"] == "frequentist" and mapped["correction"] == "holm"


def test_method_correction_and_weights_are_honoured(small_parquet, capsys):
    base = ["evidence", "run", "--source", str(small_parquet), "--experiment", "checkout", "--json"]
    plain = _json(capsys, [*base, "--correction", "none"])
    holm = _json(capsys, base)  # the default, as on the results page
    assert holm["correction"] == "holm"
    assert any(r["p_value_adjusted"] > r["p_value"] for r in holm["results"] if r["p_value"])
    assert all(r["p_value_adjusted"] == r["p_value"] for r in plain["results"] if r["p_value"])
    bayes = _json(capsys, [*base, "--method", "bayesian"])
    assert all(r["chance_to_win"] is not None for r in bayes["results"] if not r["not_enough_data"])
    equal = _json(capsys, [*base, "--weights", "0.5,0.5"])
    lopsided = _json(capsys, [*base, "--weights", "control=0.9,treatment=0.1"])
    assert equal["srm"]["mismatch"] is False and equal["srm"]["planned"] == {"control": 0.5, "treatment": 0.5}
    assert lopsided["srm"]["mismatch"] is True and lopsided["srm"]["p_value"] < 0.001
    assert main([*base, "--weights", "0.5"]) == 2
    assert "--weights: give 2 weights" in capsys.readouterr().err
    assert main([*base, "--method", "magic"]) == 2
    assert capsys.readouterr().err.startswith("error: --method: unknown method 'magic'")
    assert main([*base, "--correction", "bonferroni"]) == 2
    assert "--correction" in capsys.readouterr().err


def test_the_table_output_names_the_method(small_parquet, capsys):
    argv = ["evidence", "run", "--source", str(small_parquet), "--experiment", "checkout", "--method", "bayesian"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "bayesian" in out and "Chance to win" in out


def test_a_yaml_holding_only_the_mapping_discovers_the_metrics(renamed, tmp_path, capsys):
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({"mapping": RENAMED}))
    out = _json(
        capsys,
        ["evidence", "run", "--source", str(renamed), "--experiment", "checkout", "--metrics", str(path), "--json"],
    )
    names = [m["name"] for m in out["metrics"]]
    assert names == ["page_view_count", "page_view_converted", "purchase_count", "purchase_converted"]
    assert out["units"]["control"] > 0


def test_a_wrong_column_flag_says_which_flag_to_fix(renamed, capsys):
    argv = ["evidence", "run", "--source", str(renamed), "--experiment", "checkout", "--json", *FLAGS]
    argv[argv.index("order")] = "amount"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --value-column: no column `amount` in the event table `clicks.parquet`")
    assert "Did you mean" not in err and "Candidate" not in err
    bad = list(FLAGS)
    bad[bad.index("kind")] = "kind; DROP TABLE x"
    assert main(["evidence", "run", "--source", str(renamed), "--experiment", "checkout", *bad]) == 2
    assert capsys.readouterr().err.startswith("error: --event-name-column: event name column:")


def test_analyze_reads_raw_events_with_other_column_names(tmp_path, capsys):
    import duckdb

    rows = "SELECT i % 400 AS u, CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END AS v, " \
        "'revenue' AS m, (i % 7)::DOUBLE AS x FROM range(2000) t(i)"
    with duckdb.connect(":memory:") as con:
        con.execute(f"COPY (SELECT u AS unit, v AS variation, m AS metric, x AS value FROM ({rows})) "
                    f"TO '{tmp_path / 'plain.parquet'}' (FORMAT parquet)")
        con.execute(f'COPY (SELECT u AS user_id, v AS "Arm", m AS kind, x AS amount, 1 AS unit FROM ({rows})) '
                    f"TO '{tmp_path / 'renamed.parquet'}' (FORMAT parquet)")
    plain = _json(capsys, ["analyze", str(tmp_path / "plain.parquet"), "--json"])
    flags = ["--unit-column", "user_id", "--variation-column", "Arm", "--event-name-column", "kind",
             "--value-column", "amount"]
    renamed = _json(capsys, ["analyze", str(tmp_path / "renamed.parquet"), "--json", *flags])
    assert renamed["kind"] == "raw" and renamed["results"] == plain["results"]
    assert main(["analyze", str(tmp_path / "renamed.parquet"), "--json", *flags[:-1], "revenue"]) == 2
    assert capsys.readouterr().err.startswith("error: --value-column: no column `revenue` in renamed.parquet")
