"""`truenorth analyze`: summary and raw-event files, CSV and Parquet, and one-line errors."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from truenorth.stats import engine

SUMMARY: list[dict[str, Any]] = [
    {"metric": "checkout conversion", "variation": "control", "n": 10000, "sum": 1000, "sum_squares": 1000},
    {"metric": "checkout conversion", "variation": "B", "n": 10050, "sum": 1120, "sum_squares": 1120},
    {"metric": "revenue", "variation": "control", "n": 10000, "sum": 52000, "sum_squares": 900000},
    {"metric": "revenue", "variation": "B", "n": 10050, "sum": 53500, "sum_squares": 930000},
]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def to_parquet(csv_path: Path, parquet_path: Path) -> Path:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv_auto('{csv_path}')) TO '{parquet_path}' (FORMAT PARQUET)")
    con.close()
    return parquet_path


def events(seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(600):
        v = "control" if i % 2 else "treatment"
        rows.append({"unit": f"u{i}", "variation": v, "metric": "", "value": ""})  # assignment
        for _ in range(rng.poisson(2)):
            rows.append({"unit": f"u{i}", "variation": v, "metric": "purchases", "value": 1})
        if rng.random() < 0.5:
            rows.append(
                {"unit": f"u{i}", "variation": v, "metric": "revenue", "value": round(rng.gamma(2, 10), 2)}
            )
    return rows


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    # Imported by name so `mypy --strict truenorth/stats` does not type-check the whole CLI package.
    main = importlib.import_module("truenorth.cli").main
    code = int(main(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_summary_file(tmp_path, capsys, fmt):
    path = write_csv(tmp_path / "s.csv", SUMMARY)
    if fmt == "parquet":
        path = to_parquet(path, tmp_path / "s.parquet")
    code, out, err = run(["analyze", str(path)], capsys)
    assert code == 0, err
    assert "Variant B increased checkout conversion by 11.4% (95% CI" in " ".join(out.split())
    assert "Sample ratio check" in out
    code, out, err = run(["analyze", str(path), "--json", "--method", "bayesian"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "summary" and len(data["results"]) == 2
    first = data["results"][0]
    assert first["p_value"] is None and 0.5 < first["chance_to_win"] <= 1
    expected = engine.analyze(SUMMARY, method="bayesian")[0]
    assert first["effect_relative"] == pytest.approx(expected.effect_relative)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_raw_event_file(tmp_path, capsys, fmt):
    rows = events()
    path = write_csv(tmp_path / "e.csv", rows)
    if fmt == "parquet":
        path = to_parquet(path, tmp_path / "e.parquet")
    code, out, err = run(["analyze", str(path), "--json", "--correction", "bh", "--alpha", "0.1"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "raw"
    results = {r["metric"]: r for r in data["results"]}
    assert set(results) == {"purchases", "revenue"}
    # brute force: per-unit totals, zeros for units without events
    units = {r["unit"]: r["variation"] for r in rows}
    for metric in ("purchases", "revenue"):
        totals = dict.fromkeys(units, 0.0)
        for r in rows:
            if r["metric"] == metric:
                totals[r["unit"]] += float(r["value"])
        by_v = {
            v: np.array([t for u, t in totals.items() if units[u] == v]) for v in ("control", "treatment")
        }
        assert results[metric]["n_control"] == 300
        assert results[metric]["control_mean"] == pytest.approx(by_v["control"].mean())
        assert results[metric]["treatment_mean"] == pytest.approx(by_v["treatment"].mean())
        assert results[metric]["correction"] == "bh" and results[metric]["alpha"] == 0.1


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"metric": "m", "variation": "a", "n": 3, "sum": 1}],
            "error: sum_squares: required column is missing",
        ),
        ([{"unit": "u", "variation": "a", "metric": "m"}], "error: value: required column is missing"),
        ([{"metric": "m", "variation": "a", "n": "lots", "sum": 1, "sum_squares": 1}], "error: n: row 1"),
        (
            [
                {"unit": "u1", "variation": "a", "metric": "m", "value": "x"},
                {"unit": "u2", "variation": "b", "metric": "m", "value": 1},
            ],
            "error: value: 1 row(s) with not a number",
        ),
        (
            [
                {"unit": "u1", "variation": "a", "metric": "m", "value": 1},
                {"unit": "u1", "variation": "b", "metric": "m", "value": 1},
            ],
            "error: variation: unit 'u1' appears in more than one variation",
        ),
    ],
)
def test_bad_files_give_one_error_line(tmp_path, capsys, rows, message):
    path = write_csv(tmp_path / "bad.csv", rows)
    code, _, err = run(["analyze", str(path)], capsys)
    assert code == 2
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1


def test_bad_paths_and_options(tmp_path, capsys):
    code, _, err = run(["analyze", str(tmp_path / "missing.csv")], capsys)
    assert code == 2 and err.startswith("error: FILE: no such file")
    other = tmp_path / "x.xlsx"
    other.write_text("nope")
    code, _, err = run(["analyze", str(other)], capsys)
    assert code == 2 and "unsupported file type" in err
    path = write_csv(tmp_path / "s.csv", SUMMARY)
    code, _, err = run(["analyze", str(path), "--method", "magic"], capsys)
    assert code == 2 and err.startswith("error: --method")
    code, _, err = run(["analyze", str(path), "--alpha", "2"], capsys)
    assert code == 2 and err.startswith("error: --alpha")
    code, _, err = run(["analyze", str(path), "--correction", "bonferroni"], capsys)
    assert code == 2 and err.startswith("error: --correction")


def test_quantile_summary_file(tmp_path, capsys):
    rows = [
        {
            "metric": "p90 latency",
            "variation": "control",
            "n": 5000,
            "sum": "",
            "sum_squares": "",
            "quantile_level": 0.9,
            "quantile": 230.0,
            "quantile_lower": 225.0,
            "quantile_upper": 236.0,
        },
        {
            "metric": "p90 latency",
            "variation": "fast",
            "n": 5100,
            "sum": "",
            "sum_squares": "",
            "quantile_level": 0.9,
            "quantile": 210.0,
            "quantile_lower": 204.0,
            "quantile_upper": 215.0,
        },
    ]
    path = write_csv(tmp_path / "q.csv", rows)
    code, out, err = run(["analyze", str(path), "--json"], capsys)
    assert code == 0, err
    (r,) = json.loads(out)["results"]
    assert r["kind"] == "quantile" and r["effect"] == pytest.approx(-20.0)
    assert r["significant"] is True
    assert "fast decreased p90 latency by 8.7%" in r["sentence"]
