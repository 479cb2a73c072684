"""Monte Carlo forecasts at scale: 100,000 trials over a 2-year daily throughput history.

Times `truenorth.delivery.forecast.how_many` (items in 90 days) and `when` (days to 40 items), each once to
warm up and then `--runs` times, and prints the median and best wall time per call, the CPU time, and
the ratio to the aim (issue 12: well under 100 ms). The history is a deterministic synthetic team:
Poisson daily throughput (mean 1.4 items) with weekends at zero. It never asserts on time.

    .venv/bin/python benchmarks/forecast.py [--trials N] [--days N] [--items N] [--history-days N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from truenorth.delivery.forecast import Forecast, how_many, when

AIM_MS = 100.0


def history(days: int) -> np.ndarray:
    rng = np.random.default_rng(2026)
    daily = rng.poisson(1.4 * 7 / 5, size=days)
    daily[np.arange(days) % 7 >= 5] = 0  # weekends
    return daily


def measure(call: Callable[[], Forecast], runs: int) -> tuple[float, float, float, Forecast]:
    result = call()  # warm-up
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        result = call()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="how_many: items done in this many days")
    parser.add_argument("--items", type=int, default=40, help="when: days until this many items")
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    hist = history(args.history_days)
    print(
        f"Forecasts: {args.trials:,} trials over {hist.size} days of history "
        f"(mean {hist.mean():.2f} items/day, {np.count_nonzero(hist == 0)} zero days); {args.runs} runs"
    )
    cases = [
        (f"how_many({args.days} days)", lambda: how_many(hist, args.days, trials=args.trials, seed=None)),
        (f"when({args.items} items)", lambda: when(hist, args.items, trials=args.trials, seed=None)),
    ]
    for name, call in cases:
        median, best, cpu, result = measure(call, args.runs)
        figures = ", ".join(f"{c}%: {v:g}" for c, v in result.percentiles.items())
        print(
            f"  {name:<20} median {median:7.1f} ms  best {best:7.1f} ms  cpu {cpu:7.1f} ms  "
            f"aim {AIM_MS:.0f} ms: {median / AIM_MS:.2f}x of the aim   ({figures})"
        )


if __name__ == "__main__":
    main()
