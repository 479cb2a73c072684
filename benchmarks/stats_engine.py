"""Benchmark: 100,000 comparisons (frequentist + Bayesian + CUPED) with truenorth.stats vs gbstats.

Each comparison is one metric x treatment-vs-control pair analysed three ways: Welch t-test,
Bayesian (flat prior: chance to win, risk, credible interval) and CUPED-adjusted Welch. TrueNorth
does all 100,000 as arrays; gbstats 0.8.0 (in ``.venv-gbstats``, see ``make gbstats-venv``) does a
sample of them one by one in a subprocess that times itself, and the per-comparison times are
compared. Both sides compute from the same summary statistics; gbstats' numbers are checked against
ours on the sample. Run: ``.venv/bin/python benchmarks/stats_engine.py [--n 100000] [--sample 500]``.

``--metrics 10000`` (issue 9 item 7) times ``engine.analyze`` - the whole facade: table parsing,
grouping, Holm within roles on both scales, SRM and one ``ResultRow`` per comparison - on a table of
10,000 metrics x 2 variations given as rows (what the web and the CLI pass) and as columns, against a
naive loop that analyses one metric at a time (the shape of the engine before it was vectorised), and
checks that both give the same numbers. CPU time (``time.process_time``), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from truenorth.stats import bayesian, engine, frequentist
from truenorth.stats.summary import CupedStats, MeanStats

ROOT = Path(__file__).resolve().parents[1]
GB_PYTHON = ROOT / ".venv-gbstats" / "bin" / "python"

GBSTATS_TIMER = r"""
import json, sys, time
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import RegressionAdjustedStatistic, SampleMeanStatistic

cases = json.load(open(sys.argv[1]))

def mean(d, p):
    return SampleMeanStatistic(n=d["n"], sum=d[p + "sum"], sum_squares=d[p + "ss"])

def run(c):
    a, b = c["a"], c["b"]
    f = TwoSidedTTest(mean(a, ""), mean(b, ""), FrequentistConfig()).compute_result()
    y = EffectBayesianABTest(mean(a, ""), mean(b, ""), EffectBayesianConfig()).compute_result()
    ra = RegressionAdjustedStatistic(n=a["n"], post_statistic=mean(a, ""), pre_statistic=mean(a, "x"),
                                     post_pre_sum_of_products=a["xy"], theta=0)
    rb = RegressionAdjustedStatistic(n=b["n"], post_statistic=mean(b, ""), pre_statistic=mean(b, "x"),
                                     post_pre_sum_of_products=b["xy"], theta=0)
    r = TwoSidedTTest(ra, rb, FrequentistConfig()).compute_result()
    return [f.expected, f.p_value, y.expected, y.chance_to_win, y.risk[1], r.expected, r.p_value]

run(cases[0])  # warm-up (imports, first-call costs)
t0 = time.perf_counter()
out = [run(c) for c in cases]
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "count": len(cases), "results": out}))
"""


def make_summaries(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Summary statistics of ``n`` comparisons with realistic sizes, means, variances and covariates."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    base = rng.uniform(1, 100, n)
    sd = base * rng.uniform(0.2, 2.0, n)
    rho = rng.uniform(0.1, 0.8, n)
    for arm, lift in (("a", 0.0), ("b", rng.normal(0.0, 0.02, n))):
        units = rng.integers(1_000, 200_000, n).astype(np.float64)
        mean = base * (1 + lift) + rng.normal(0, 1, n) * sd / np.sqrt(units)
        xmean = base + rng.normal(0, 1, n) * sd / np.sqrt(units)
        var = sd**2 * rng.uniform(0.9, 1.1, n)
        xvar = sd**2 * rng.uniform(0.9, 1.1, n)
        cov = rho * np.sqrt(var * xvar)
        out[f"{arm}_n"] = units
        out[f"{arm}_sum"] = mean * units
        out[f"{arm}_ss"] = var * (units - 1) + mean**2 * units
        out[f"{arm}_xsum"] = xmean * units
        out[f"{arm}_xss"] = xvar * (units - 1) + xmean**2 * units
        out[f"{arm}_xy"] = cov * (units - 1) + mean * xmean * units
    return out


def truenorth_run(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    a = MeanStats(s["a_n"], s["a_sum"], s["a_ss"])
    b = MeanStats(s["b_n"], s["b_sum"], s["b_ss"])
    f = frequentist.welch(a, b)
    y = bayesian.means(a, b)
    ca = CupedStats(a, MeanStats(s["a_n"], s["a_xsum"], s["a_xss"]), s["a_xy"])
    cb = CupedStats(b, MeanStats(s["b_n"], s["b_xsum"], s["b_xss"]), s["b_xy"])
    r = frequentist.cuped(ca, cb)
    assert f.p_value_relative is not None and y.chance_to_win is not None and y.risk_treatment is not None
    assert r.p_value_relative is not None
    return {
        "freq_expected": f.effect_relative,
        "freq_p": f.p_value_relative,
        "bayes_expected": y.effect_relative,
        "bayes_ctw": y.chance_to_win,
        "bayes_risk_treatment": y.risk_treatment,
        "cuped_expected": r.effect_relative,
        "cuped_p": r.p_value_relative,
    }


def gbstats_run(s: dict[str, np.ndarray], sample: int) -> dict[str, object] | None:
    if not GB_PYTHON.exists():
        return None
    cases = [
        {
            arm: {k: float(s[f"{arm}_{k}"][i]) for k in ("n", "sum", "ss", "xsum", "xss", "xy")}
            | {"xn": float(s[f"{arm}_n"][i])}
            for arm in ("a", "b")
        }
        for i in range(sample)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.json"
        path.write_text(json.dumps(cases))
        proc = subprocess.run(  # noqa: S603 (our interpreter and script)
            [str(GB_PYTHON), "-c", GBSTATS_TIMER, str(path)],
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def metric_table(metrics: int, seed: int = 11) -> list[dict[str, object]]:
    """``metrics`` metrics x (control, treatment) summary rows: means and proportions, three roles."""
    s = make_summaries(metrics, seed)
    rows: list[dict[str, object]] = []
    roles = ("primary", "secondary", "guardrail")
    for i in range(metrics):
        for arm, variation in (("a", "control"), ("b", "treatment")):
            rows.append(
                {
                    "metric": f"metric_{i}",
                    "variation": variation,
                    "n": float(s[f"{arm}_n"][i]),
                    "sum": float(s[f"{arm}_sum"][i]),
                    "sum_squares": float(s[f"{arm}_ss"][i]),
                    "role": roles[min(i, 2)] if i < 3 else roles[1 + i % 2],
                }
            )
    return rows


def naive_loop(rows: list[dict[str, object]]) -> list[engine.ResultRow]:
    """One metric at a time through the engine (no correction): the per-row walk being replaced."""
    out: list[engine.ResultRow] = []
    for i in range(0, len(rows), 2):
        out.extend(engine.analyze(rows[i : i + 2], correction=None))
    return out


def best_cpu(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - t0)
    return min(times)


def engine_benchmark(metrics: int, repeat: int) -> None:
    rows = metric_table(metrics)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    engine.analyze(rows[:20])  # warm-up
    t_rows = best_cpu(lambda: engine.analyze(rows), repeat)
    t_cols = best_cpu(lambda: engine.analyze(columns), repeat)
    t_sentences = best_cpu(lambda: [r.to_dict() for r in engine.analyze(rows)], repeat)
    t_naive = best_cpu(lambda: naive_loop(rows), 1)
    print(f"engine.analyze, {metrics:,} metrics x 2 variations (Holm within roles, both scales, SRM):")
    print(f"  rows (list of dicts): {t_rows * 1000:.0f} ms; columns: {t_cols * 1000:.0f} ms (target: < 100 ms)")
    print(f"  with every row's sentence and to_dict (what a snapshot stores): {t_sentences * 1000:.0f} ms")
    print(f"  naive loop, one metric at a time: {t_naive * 1000:.0f} ms; vectorised is {t_naive / t_rows:.0f}x faster")
    fast = engine.analyze(rows, correction=None)
    slow = naive_loop(rows)
    for name in ("p_value_relative", "p_value_absolute", "ci_low_relative", "ci_high", "effect"):
        a = np.array([getattr(r, name) for r in fast])
        b = np.array([getattr(r, name) for r in slow])
        if not np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True):
            sys.exit(f"vectorised and naive results differ in {name}")
    print("  same numbers as the naive loop (relative 1e-12)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="comparisons for TrueNorth")
    parser.add_argument("--sample", type=int, default=500, help="comparisons for gbstats")
    parser.add_argument("--repeat", type=int, default=5, help="TrueNorth timing runs (best is reported)")
    parser.add_argument(
        "--metrics", type=int, default=10_000, help="metrics for the engine.analyze benchmark (0: skip)"
    )
    args = parser.parse_args()
    if args.metrics:
        engine_benchmark(args.metrics, args.repeat)

    s = make_summaries(args.n)
    truenorth_run({k: v[:10] for k, v in s.items()})  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = truenorth_run(s)
        times.append(time.perf_counter() - t0)
    best = min(times)
    per_ours = best / args.n
    print(
        f"TrueNorth: {args.n:,} comparisons (frequentist + Bayesian + CUPED) in {best:.3f} s "
        f"(best of {args.repeat}; median {sorted(times)[len(times) // 2]:.3f} s) "
        f"= {per_ours * 1e6:.2f} µs per comparison"
    )
    print(f"  under one second: {'yes' if best < 1 else 'NO'}")

    gb = gbstats_run(s, min(args.sample, args.n))
    if gb is None:
        print("gbstats: .venv-gbstats missing (make gbstats-venv); no comparison")
        return
    seconds, count = float(gb["seconds"]), int(gb["count"])  # type: ignore[arg-type]
    per_gb = seconds / count
    print(
        f"gbstats 0.8.0: {count:,} comparisons (same three tests, one by one) in {seconds:.3f} s "
        f"= {per_gb * 1e6:.1f} µs per comparison (extrapolated to {args.n:,}: {per_gb * args.n:.1f} s)"
    )
    print(f"Speed-up per comparison: {per_gb / per_ours:,.0f}x (target: at least 100x)")
    # The numbers agree too (relative 1e-6) on the sample.
    theirs = np.array(gb["results"], dtype=np.float64)
    names = list(ours)
    mine = np.column_stack([ours[k][:count] for k in names])
    # Below ~1e-9 gbstats' p-values (2(1 - cdf)) lose digits to cancellation; ours use the survival
    # function, so tiny values are compared with an absolute tolerance of 1e-12.
    close = np.isclose(mine, theirs, rtol=1e-6, atol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(np.abs(theirs) > 1e-9, np.abs(mine - theirs) / np.abs(theirs), 0.0)
    print(
        f"Largest relative difference from gbstats on the sample (values above 1e-9): {float(rel.max()):.2e}"
    )
    if not close.all():
        bad = sorted({names[j] for j in np.nonzero(~close)[1]})
        sys.exit(f"numbers disagree with gbstats: {', '.join(bad)}")


if __name__ == "__main__":
    main()
