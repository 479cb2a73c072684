"""`truenorth evidence run` prints summaries per metric and variation; bad input is one line, exit 2."""

from __future__ import annotations

import pytest
import yaml

from truenorth.cli import main
from truenorth.evidence import cli as evidence_cli


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(evidence_cli.console, "width", 200)


METRICS_YAML = {
    "control": "control",
    "metrics": [
        {
            "name": "conversion",
            "aggregation": "proportion",
            "events": "purchase",
            "window_days": 7,
            "covariate_days": 14,
        },
        {"name": "revenue", "aggregation": "sum", "events": ["purchase"], "covariate_days": 14},
        {
            "name": "revenue_per_page_view",
            "aggregation": "ratio",
            "events": "purchase",
            "denominator": {"aggregation": "count", "events": "page_view"},
        },
    ],
}


def test_it_prints_each_metric_per_variation(small_parquet, tmp_path, capsys):
    path = tmp_path / "metrics.yaml"
    path.write_text(yaml.safe_dump(METRICS_YAML))
    code = main(
        [
            "evidence",
            "run",
            "--source",
            str(small_parquet),
            "--experiment",
            "checkout",
            "--metrics",
            str(path),
            "--show-sql",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for text in (
        "conversion",
        "revenue",
        "treatment",
        "control",
        "CUPED",
        "ratio",
        "SRM p =",
        "WITH exposures AS",
    ):
        assert text in out


def test_without_a_metrics_file_it_summarises_every_event(small_parquet, capsys):
    assert main(["evidence", "run", "--source", str(small_parquet), "--experiment", "checkout"]) == 0
    out = capsys.readouterr().out
    assert "page_view_count" in out and "purchase_converted" in out


def test_a_hostile_metrics_file_is_one_line_and_exit_2(small_parquet, tmp_path, capsys):
    path = tmp_path / "metrics.yaml"
    path.write_text(
        yaml.safe_dump({"metrics": [{"name": "x", "events": "purchase", "where": "1=1; DROP TABLE events"}]})
    )
    code = main(
        [
            "evidence",
            "run",
            "--source",
            str(small_parquet),
            "--experiment",
            "checkout",
            "--metrics",
            str(path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: x.where: the predicate must be a single expression")


def test_a_missing_source_or_table_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["evidence", "run", "--source", str(tmp_path / "nope"), "--experiment", "checkout"]) == 2
    assert "no such DuckDB file or directory" in capsys.readouterr().err
    assert main(["evidence", "run", "--source", str(tmp_path), "--experiment", "checkout"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --events: no table `events` in ")
    assert "set the event table with --events" in err and "Did you mean" not in err
