"""Evidence queries at scale: every metric's summary statistics and results from 10M (and 100M) events.

Generates the synthetic experiment (`truenorth.evidence.synthetic`: planted effects, Parquet, chunked)
into a temporary directory (or ``--data DIR``, reused when already there), then, each in a fresh child
process so the peak memory is that step's own:

* DuckDB: compile all metrics into one query, run it on the Parquet files, build the statistics and
  compute the frequentist results (Welch / proportion / ratio / CUPED from `truenorth.stats`);
* pandas (10M only): read the same Parquet files and compute the same per-unit and per-variation sums
  (`truenorth.evidence.reference`), then the same results.

It prints wall time and peak resident memory (``getrusage``, the child's own maximum RSS, which
includes DuckDB's native memory) of each, the Python-side peak (``tracemalloc``, in a second run, since
tracing slows allocation-heavy code), the DuckDB/pandas ratio, and the recovered vs planted effects. It never asserts on time.

    .venv/bin/python benchmarks/evidence_queries.py                       # 10,000,000 events
    .venv/bin/python benchmarks/evidence_queries.py --full                # and 100,000,000
    .venv/bin/python benchmarks/evidence_queries.py --events 1000000 --data /tmp/ev
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _results(evidence: Any) -> dict[str, list[float]]:
    from truenorth.evidence.run import compare_to_control

    out = {}
    for name, per in compare_to_control(evidence, "control").items():
        c = per["treatment"]
        out[name] = [
            float(c.effect_relative),
            float(c.ci_low_relative),
            float(c.ci_high_relative),
            float(c.p_value),
        ]
    return out


def child(engine: str, directory: Path, trace: bool) -> dict[str, Any]:
    # Import everything first: the figures are the work, not the interpreter loading libraries.
    import duckdb  # noqa: F401
    import pandas as pd
    import pyarrow.parquet  # noqa: F401

    from truenorth.evidence import reference
    from truenorth.evidence.compile import compile_experiment
    from truenorth.evidence.run import DuckDBEngine, Evidence, run_experiment, stats_from_row
    from truenorth.evidence.synthetic import EXPERIMENT, standard_metrics
    from truenorth.stats import frequentist  # noqa: F401

    metrics = standard_metrics()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    if engine == "duckdb":
        evidence = run_experiment(DuckDBEngine(directory), EXPERIMENT, metrics)
        load = 0.0
    else:
        assignments = pd.read_parquet(directory / "assignments.parquet")
        events = pd.read_parquet(directory / "events.parquet")
        load = time.perf_counter() - started
        rows = reference.summarise(assignments, events, EXPERIMENT, metrics)
        evidence = Evidence(
            experiment=EXPERIMENT,
            units={v: int(r["units"]) for v, r in rows.items()},
            metrics={m.name: {v: stats_from_row(m, r) for v, r in rows.items()} for m in metrics},
            query=compile_experiment(metrics, EXPERIMENT),  # the SQL pandas stands in for
        )
    results = _results(evidence)
    elapsed = time.perf_counter() - started
    _, python_peak = tracemalloc.get_traced_memory() if trace else (0, 0)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "engine": engine,
        "seconds": elapsed,
        "load_seconds": load,
        "peak_rss_mb": rss_kb / 1024,
        "python_peak_mb": python_peak / 2**20,
        "units": evidence.units,
        "results": results,
    }


def _run_child(engine: str, directory: Path, trace: bool = False) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own script with our own arguments
        [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--data",
            str(directory),
            *(["--trace"] if trace else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _ensure_data(directory: Path, events: int) -> tuple[int, float]:
    import pyarrow.parquet as pq

    from truenorth.evidence.synthetic import write_parquet

    marker = directory / "events.parquet"
    if marker.exists():
        rows = pq.ParquetFile(marker).metadata.num_rows
        if abs(rows - events) < 0.02 * events:
            return rows, 0.0
    started = time.perf_counter()
    _, rows = write_parquet(directory, events)
    return rows, time.perf_counter() - started


def bench(events: int, directory: Path, with_pandas: bool) -> None:
    from truenorth.evidence.synthetic import Planted

    rows, generated = _ensure_data(directory, events)
    size = sum(p.stat().st_size for p in directory.glob("*.parquet")) / 2**20
    print(f"\n== {rows:,} events ({size:,.0f} MB Parquet; generated in {generated:.1f} s) ==")
    # Timed runs without tracemalloc (it slows allocation-heavy code); separate runs trace the Python peak.
    duck = _run_child("duckdb", directory)
    duck["python_peak_mb"] = _run_child("duckdb", directory, trace=True)["python_peak_mb"]
    units = sum(duck["units"].values())
    print(f"units: {units:,} ({', '.join(f'{k} {v:,}' for k, v in sorted(duck['units'].items()))})")
    header = f"{'engine':<8} {'time (s)':>9} {'peak RSS (MB)':>14} {'Python peak (MB)':>17}"
    print(header)
    print(
        f"{'DuckDB':<8} {duck['seconds']:>9.2f} {duck['peak_rss_mb']:>14.0f} {duck['python_peak_mb']:>17.1f}"
    )
    if with_pandas:
        pand = _run_child("pandas", directory)
        pand["python_peak_mb"] = _run_child("pandas", directory, trace=True)["python_peak_mb"]
        print(
            f"{'pandas':<8} {pand['seconds']:>9.2f} {pand['peak_rss_mb']:>14.0f} {pand['python_peak_mb']:>17.1f}"
            f"   (of which reading Parquet {pand['load_seconds']:.2f} s)"
        )
        print(
            f"DuckDB is {pand['seconds'] / duck['seconds']:.1f}x faster than pandas "
            f"({(pand['seconds'] - pand['load_seconds']) / duck['seconds']:.1f}x excluding pandas' Parquet read), "
            f"using {pand['peak_rss_mb'] / duck['peak_rss_mb']:.1f}x less peak memory"
        )
        worst = max(
            abs(a - b) / max(abs(b), 1e-12)
            for name in duck["results"]
            for a, b in zip(duck["results"][name][:3], pand["results"][name][:3], strict=True)
        )
        print(f"largest relative difference between DuckDB and pandas results: {worst:.1e}")
    truth = Planted().true_lifts()
    print(f"{'metric':<24} {'planted':>8} {'estimate':>9} {'95% CI':>22} {'p':>9}")
    for name, (lift, low, high, p) in duck["results"].items():
        planted = f"{100 * truth[name]:+.2f}%" if name in truth else "—"
        print(
            f"{name:<24} {planted:>8} {100 * lift:>+8.2f}% {f'{100 * low:+.2f}% to {100 * high:+.2f}%':>22} {p:>9.2g}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=10_000_000, help="events in the largest set (default 10M)"
    )
    parser.add_argument("--full", action="store_true", help="also 100,000,000 events (several minutes)")
    parser.add_argument(
        "--data", type=Path, help="directory for the generated Parquet (kept; default temporary)"
    )
    parser.add_argument("--child", choices=["duckdb", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.trace)))
        return 0
    sizes = [args.events] + ([100_000_000] if args.full and args.events != 100_000_000 else [])
    with tempfile.TemporaryDirectory(prefix="truenorth-evidence-") as tmp:
        for events in sizes:
            base = args.data or Path(tmp)
            directory = base / f"events_{events}"
            directory.mkdir(parents=True, exist_ok=True)
            bench(events, directory, with_pandas=events <= 10_000_000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
