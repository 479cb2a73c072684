"""Reference numbers from GrowthBook's gbstats 0.8.0, for truenorth/stats/tests/test_against_gbstats.py.

Runs under the separate ``.venv-gbstats`` (gbstats pins numpy<2): ``make gbstats-venv``.
Usage: ``.venv-gbstats/bin/python scripts/gbstats_reference.py IN.json OUT.json``.

IN is a list of cases ``{"stat": KIND, "test": TEST, "a": {...}, "b": {...}, "config": {...}}``:
KIND is ``mean`` (n, sum, sum_squares), ``proportion`` (n, sum), ``ratio`` (n, m_sum, m_sum_squares,
d_sum, d_sum_squares, m_d_sum_of_products) or ``cuped`` (n, post_sum, post_sum_squares, pre_sum,
pre_sum_squares, post_pre_sum_of_products; optional ``proportion``: true); TEST is a key of
``TESTS`` (extend it for new methods). OUT holds, per case, ``{"absolute": result, "relative":
result}``, each result being gbstats' result dataclass as a dict. Only gbstats' own classes compute.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from gbstats.frequentist.tests import (  # type: ignore[import-not-found,unused-ignore]
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (  # type: ignore[import-not-found,unused-ignore]
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)


def build_stat(kind: str, d: dict[str, Any]) -> Any:
    if kind == "mean":
        return SampleMeanStatistic(n=d["n"], sum=d["sum"], sum_squares=d["sum_squares"])
    if kind == "proportion":
        return ProportionStatistic(n=d["n"], sum=d["sum"])
    if kind == "ratio":
        return RatioStatistic(
            n=d["n"],
            m_statistic=SampleMeanStatistic(n=d["n"], sum=d["m_sum"], sum_squares=d["m_sum_squares"]),
            d_statistic=SampleMeanStatistic(n=d["n"], sum=d["d_sum"], sum_squares=d["d_sum_squares"]),
            m_d_sum_of_products=d["m_d_sum_of_products"],
        )
    if kind == "cuped":
        if d.get("proportion"):
            post: Any = ProportionStatistic(n=d["n"], sum=d["post_sum"])
            pre: Any = ProportionStatistic(n=d["n"], sum=d["pre_sum"])
        else:
            post = SampleMeanStatistic(n=d["n"], sum=d["post_sum"], sum_squares=d["post_sum_squares"])
            pre = SampleMeanStatistic(n=d["n"], sum=d["pre_sum"], sum_squares=d["pre_sum_squares"])
        return RegressionAdjustedStatistic(
            n=d["n"],
            post_statistic=post,
            pre_statistic=pre,
            post_pre_sum_of_products=d["post_pre_sum_of_products"],
            theta=0,
        )
    if kind == "quantile":
        from gbstats.models.statistics import QuantileStatistic  # type: ignore[import-not-found,unused-ignore]

        return QuantileStatistic(
            n=d["n"],
            n_star=d["n_star"],
            nu=d["nu"],
            quantile_hat=d["quantile"],
            quantile_lower=d["lower"],
            quantile_upper=d["upper"],
        )
    raise ValueError(f"unknown statistic kind {kind!r}")


def ttest(a: Any, b: Any, difference_type: str, config: dict[str, Any]) -> Any:
    cfg = FrequentistConfig(difference_type=difference_type, alpha=config.get("alpha", 0.05))
    return TwoSidedTTest(a, b, cfg).compute_result()


def sequential(a: Any, b: Any, difference_type: str, config: dict[str, Any]) -> Any:
    cfg = SequentialConfig(
        difference_type=difference_type,
        alpha=config.get("alpha", 0.05),
        sequential_tuning_parameter=config.get("sequential_tuning_parameter", 5000),
    )
    return SequentialTwoSidedTTest(a, b, cfg).compute_result()


def bayesian(a: Any, b: Any, difference_type: str, config: dict[str, Any]) -> Any:
    from gbstats.bayesian.tests import (  # type: ignore[import-not-found,unused-ignore]
        EffectBayesianABTest,
        EffectBayesianConfig,
        GaussianPrior,
    )

    prior = GaussianPrior(**config.get("prior", {}))
    cfg = EffectBayesianConfig(
        difference_type=difference_type,
        alpha=config.get("alpha", 0.05),
        prior_effect=prior,
        inverse=config.get("inverse", False),
        prior_type=config.get("prior_type", "relative"),
    )
    return EffectBayesianABTest(a, b, cfg).compute_result()


TESTS: dict[str, Callable[[Any, Any, str, dict[str, Any]], Any]] = {
    "ttest": ttest,
    "sequential": sequential,
    "bayesian": bayesian,
}


def jsonable(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, float) and x != x:
        return None
    return x


def run(case: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for difference_type in ("absolute", "relative"):
        # gbstats mutates statistics (CUPED theta), so build fresh ones per run.
        a = build_stat(case["stat"], case["a"])
        b = build_stat(case["stat"], case["b"])
        out[difference_type] = jsonable(TESTS[case["test"]](a, b, difference_type, case.get("config", {})))
    return out


def main() -> None:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump([run(c) for c in cases], f, allow_nan=True)


if __name__ == "__main__":
    main()
