"""Evidence on every engine at scale: DuckDB, Spark (local mode) and chDB on 10M and 100M events.

Writes the synthetic experiment (`truenorth.evidence.synthetic`: planted effects, generated with numpy in
chunks of 250,000 units, so 100M events never sit in memory at once) once as Parquet under ``--data``
(default ``var/bench/evidence_engines``; reused when already there), then for each engine, through its
connector (`truenorth.engines.registry.connect`, as a data source runs it), times three queries, each in
a fresh child process so its peak memory is its own:

* ``evidence``: the one compiled query for `standard_metrics` (`compile_experiment`, the engine's dialect);
* ``scan``: a bare scan that reads every events column the evidence query reads (sums/counts of them) —
  the floor the evidence query is compared with;
* ``count(*)``: a bare ``SELECT count(*) FROM events`` (on Parquet every engine answers it from the files'
  metadata, so it measures the engine's fixed cost rather than a scan).

It prints wall time and CPU time (the query only; CPU of the child's threads and its descendants, i.e.
Spark's JVM — on a shared machine the CPU time is the steadier figure; connecting — for Spark, starting the JVM — is printed apart), peak
memory of the engine (DuckDB and chDB run inside the child: its maximum RSS from ``getrusage``; Spark's
driver is the JVM the child launches: its ``VmHWM`` from ``/proc``; the child's own ``VmHWM``
rather than ``getrusage``, whose ``ru_maxrss`` Linux carries over ``exec`` from the parent), rows scanned per second (events +
assignments rows / wall time), the evidence/scan ratio (aim: within 2x), and checks that every engine
returned the same units and sums as DuckDB. It never asserts.

    .venv/bin/python benchmarks/evidence_engines.py                    # 10,000,000 and 100,000,000 events
    .venv/bin/python benchmarks/evidence_engines.py --events 10000000  # one size
    .venv/bin/python benchmarks/evidence_engines.py --quick            # 1,000,000 events
    .venv/bin/python benchmarks/evidence_engines.py --engines duckdb,chdb --runs 3 --timeout 600
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENGINES = ("duckdb", "spark", "chdb")
QUERIES = ("evidence", "scan", "count")
LABELS = {"duckdb": "DuckDB", "spark": "Spark local", "chdb": "chDB", "evidence": "evidence", "scan": "scan"}
LABELS["count"] = "count(*)"
#: Reads every events column the evidence query reads, with the least work per row.
SCAN_SQL = (
    'SELECT COUNT(*), SUM(unit_id), MAX("at"), SUM(value), '
    "COUNT(CASE WHEN name IN ('page_view', 'purchase') THEN 1 END) FROM events"
)
COUNT_SQL = "SELECT COUNT(*) FROM events"


# -- the child: one engine, one query ------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc; the JVM pyspark launches is a grandchild)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _status_kb(pid: int | str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process's threads and of its descendants (Spark's JVM)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in ["self", *map(str, _descendants(os.getpid()))]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _jvm_peak_mb() -> float:
    """The largest VmHWM among this process's java descendants (Spark's driver JVM), in MB."""
    peaks = [
        _status_kb(pid, "VmHWM")
        for pid in _descendants(os.getpid())
        if Path(f"/proc/{pid}/comm").exists() and Path(f"/proc/{pid}/comm").read_text().strip() == "java"
    ]
    return max(peaks, default=0) / 1024


def _config(engine: str, directory: Path, memory_mb: int) -> dict[str, Any]:
    tables = {
        "assignments": str(directory / "assignments.parquet"),
        "events": str(directory / "events.parquet"),
    }
    cores = os.cpu_count() or 2
    if engine == "spark":
        # The driver's heap is fixed when the JVM starts (the connector reads this variable).
        os.environ["TRUENORTH_SPARK_DRIVER_MEMORY"] = f"{memory_mb}m"
        return {"master": f"local[{cores}]", "tables": tables}
    if engine == "duckdb":
        return {"path": "", "tables": tables, "memory_limit_mb": memory_mb, "threads": cores}
    return {"tables": tables, "max_memory_bytes": memory_mb * 1024**2}


def child(
    engine: str, query: str, directory: Path, runs: int, timeout: float, memory_mb: int
) -> dict[str, Any]:
    # Import everything first: the figures are the engine's work, not the interpreter loading libraries.
    import sqlglot

    from truenorth.engines.base import Limits
    from truenorth.engines.registry import connect
    from truenorth.evidence.compile import compile_experiment
    from truenorth.evidence.synthetic import EXPERIMENT, standard_metrics

    metrics = standard_metrics()
    started = time.perf_counter()
    connector = connect(engine, _config(engine, directory, memory_mb), Limits(timeout_seconds=timeout))
    connector.connect()
    connect_seconds = time.perf_counter() - started
    base_rss_mb = _status_kb("self", "VmRSS") / 1024
    if query == "evidence":
        compiled = compile_experiment(metrics, EXPERIMENT, dialect=connector.dialect)
        sql, columns = compiled.sql, ("variation", "units", *compiled.columns)
    else:
        text = SCAN_SQL if query == "scan" else COUNT_SQL
        sql, columns = sqlglot.transpile(text, read="duckdb", write=connector.dialect)[0], ()
    seconds, cpu = [], []
    rows: list[tuple[Any, ...]] = []
    try:
        for _ in range(runs):
            t0, c0 = time.perf_counter(), _cpu_seconds()
            rows = connector.fetch(sql)
            seconds.append(time.perf_counter() - t0)
            cpu.append(_cpu_seconds() - c0)
        jvm_mb = _jvm_peak_mb() if engine == "spark" else 0.0
    finally:
        connector.close()
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec from the parent's peak.
    rss_mb = _status_kb("self", "VmHWM") / 1024
    summary = (
        {
            str(r[0]): {c: None if v is None else float(v) for c, v in zip(columns[1:], r[1:], strict=True)}
            for r in rows
        }
        if query == "evidence"
        else {"row": [str(v) for v in rows[0]]}
    )
    return {
        "engine": engine,
        "query": query,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "connect_seconds": connect_seconds,
        "base_rss_mb": base_rss_mb,
        "peak_rss_mb": rss_mb,
        "jvm_peak_mb": jvm_mb,
        "summary": summary,
    }


# -- the parent -----------------------------------------------------------------------------------------


def _ensure_data(directory: Path, events: int) -> tuple[int, int, float]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from truenorth.evidence.synthetic import write_parquet

    files = directory / "assignments.parquet", directory / "events.parquet"
    if all(f.exists() for f in files):
        units, rows = (pq.ParquetFile(f).metadata.num_rows for f in files)
        if abs(rows - events) < 0.02 * events:
            return units, rows, 0.0
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    units, rows = write_parquet(directory, events)
    return units, rows, time.perf_counter() - started


def _run_child(
    engine: str, query: str, directory: Path, runs: int, timeout: float, memory_mb: int
) -> dict[str, Any] | str:
    """The child's figures, or why there are none (timeout, error)."""
    command = [sys.executable, __file__, "--child", engine, "--query", query, "--data", str(directory)]
    command += ["--runs", str(runs), "--timeout", str(timeout), "--memory-mb", str(memory_mb)]
    process = subprocess.Popen(  # noqa: S603 - our own script with our own arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=timeout + 120)  # + connecting (the JVM's start)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the child and the JVM it launched
        process.communicate()
        return f"timed out after {timeout + 120:.0f} s"
    if process.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        return f"failed: {lines[-1][:200] if lines else process.returncode}"
    return dict(json.loads(out.strip().splitlines()[-1]))


def _mb(figures: dict[str, Any]) -> str:
    own = f"{figures['peak_rss_mb']:,.0f} (at start {figures['base_rss_mb']:,.0f})"
    if figures["engine"] == "spark":
        return f"JVM {figures['jvm_peak_mb']:,.0f} + {own}"
    return own


def _same_numbers(results: dict[str, dict[str, Any]]) -> str:
    """Units and sums of every engine against DuckDB's: exact counts, largest relative difference."""
    base = results.get("duckdb")
    if not base:
        return "no DuckDB result to compare with"
    parts = []
    for engine, figures in results.items():
        if engine == "duckdb":
            continue
        worst, counts_equal = 0.0, True
        for variation, row in base["summary"].items():
            other = figures["summary"].get(variation)
            if other is None:
                return f"{LABELS[engine]}: variation {variation} missing"
            counts_equal &= other["units"] == row["units"]
            for column, value in row.items():
                if value and other.get(column) is not None:
                    worst = max(worst, abs(other[column] / value - 1))
        parts.append(
            f"{LABELS[engine]}: units {'equal' if counts_equal else 'DIFFER'}, largest relative difference {worst:.1e}"
        )
    return "; ".join(parts) or "only DuckDB ran"


def bench(
    events: int,
    directory: Path,
    engines: list[str],
    runs: int,
    timeout: float,
    stop_at: float,
    memory_mb: int,
) -> None:
    units, rows, generated = _ensure_data(directory, events)
    size = sum(p.stat().st_size for p in directory.glob("*.parquet")) / 2**20
    made = f"generated in {generated:.0f} s" if generated else "reused"
    print(
        f"\n== {rows:,} events, {units:,} units ({size:,.0f} MB Parquet, {made}; {directory}) ==", flush=True
    )
    header = (
        f"{'engine':<12} {'query':<9} {'wall (s)':>9} {'CPU (s)':>8} {'connect (s)':>12} {'peak memory (MB)':>32} "
        f"{'M rows/s':>9}"
    )
    print(header)
    print("-" * len(header), flush=True)
    evidence: dict[str, dict[str, Any]] = {}
    for engine in engines:
        figures: dict[str, dict[str, Any]] = {}
        for query in QUERIES:
            left = stop_at - time.time()
            if left < 60:
                print(f"{LABELS[engine]:<12} {LABELS[query]:<9} skipped: --stop-at reached", flush=True)
                continue
            result = _run_child(engine, query, directory, runs, min(timeout, left - 30), memory_mb)
            if isinstance(result, str):
                print(f"{LABELS[engine]:<12} {LABELS[query]:<9} {result}", flush=True)
                continue
            figures[query] = result
            best = min(result["seconds"])
            best_cpu = result["cpu_seconds"][result["seconds"].index(best)]
            print(
                f"{LABELS[engine]:<12} {LABELS[query]:<9} {best:>9.2f} {best_cpu:>8.2f} {result['connect_seconds']:>12.1f} "
                f"{_mb(result):>32} {(rows + units) / best / 1e6:>9.1f}",
                flush=True,
            )
        if "evidence" in figures:
            evidence[engine] = figures["evidence"]
            wall = min(figures["evidence"]["seconds"])
            scan = min(figures["scan"]["seconds"]) if "scan" in figures else float("nan")
            count = min(figures["count"]["seconds"]) if "count" in figures else float("nan")
            cpu = min(figures["evidence"]["cpu_seconds"])
            scan_cpu = min(figures["scan"]["cpu_seconds"]) if "scan" in figures else float("nan")
            runs_note = f" (best of {runs})" if runs > 1 else ""
            print(
                f"{LABELS[engine]:<12} evidence/scan {wall / scan:.2f}x wall, {cpu / scan_cpu:.2f}x CPU; "
                f"evidence/count(*) {wall / count:.1f}x{runs_note}; first run {figures['evidence']['seconds'][0]:.2f} s",
                flush=True,
            )
    print(f"same numbers: {_same_numbers(evidence)}", flush=True)


def _stop_at(text: str | None) -> float:
    if not text:
        return float("inf")
    hour, minute = (int(x) for x in text.split(":"))
    now = dt.datetime.now(dt.UTC)
    stop = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return stop.timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--events", type=int, action="append", help="events in a data set (repeat; default 10M and 100M)"
    )
    parser.add_argument("--quick", action="store_true", help="1,000,000 events only")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated (default: all three)")
    parser.add_argument("--runs", type=int, help="runs per query, best printed (default 2; 1 above 10M)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per query run (default 1800)")
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=4096,
        help="DuckDB's and chDB's memory limit, Spark's driver heap (default 4096)",
    )
    parser.add_argument("--stop-at", help="UTC HH:MM: start no query after it, cut timeouts to it")
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT / "var" / "bench" / "evidence_engines",
        help="Parquet directory (kept)",
    )
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--query", choices=QUERIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.query, args.data, args.runs, args.timeout, args.memory_mb)))
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {', '.join(ENGINES)}")
    sizes = [1_000_000] if args.quick else (args.events or [10_000_000, 100_000_000])
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; engines: {', '.join(engines)}")
    for events in sizes:
        runs = args.runs or (2 if events <= 10_000_000 else 1)
        bench(
            events,
            args.data / f"events_{events}",
            engines,
            runs,
            args.timeout,
            _stop_at(args.stop_at),
            args.memory_mb,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
