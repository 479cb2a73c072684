"""The engine facade: many metrics x variations, corrections, SRM and plain-language sentences."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from truenorth.stats import bayesian, engine, frequentist, quantile
from truenorth.stats.summary import CupedStats, MeanStats


def _summary(x: np.ndarray) -> dict[str, float]:
    return {"n": float(x.size), "sum": float(x.sum()), "sum_squares": float((x * x).sum())}


def table(seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for v, lift in (("B", 1.08), ("control", 1.0), ("C", 1.0)):  # control is not first
        n = 4000
        conv = (rng.random(n) < 0.1 * lift).astype(float)
        rows.append({"metric": "checkout conversion", "variation": v, **_summary(conv)})
        pre = rng.normal(50, 10, n)
        post = pre * 0.8 + rng.normal(10 * lift, 5, n)
        rows.append(
            {
                "metric": "revenue",
                "variation": v,
                **_summary(post),
                "covariate_sum": float(pre.sum()),
                "covariate_sum_squares": float((pre * pre).sum()),
                "main_covariate_sum_product": float((pre * post).sum()),
            }
        )
        sessions = rng.poisson(3, n) + 1.0
        clicks = rng.binomial(sessions.astype(int), 0.2 * lift).astype(float)
        rows.append(
            {
                "metric": "clicks per session",
                "variation": v,
                **_summary(clicks),
                "denominator_sum": float(sessions.sum()),
                "denominator_sum_squares": float((sessions * sessions).sum()),
                "main_denominator_sum_product": float((clicks * sessions).sum()),
            }
        )
    return rows


def test_frequentist_results_match_the_array_functions():
    rows = table()
    results = engine.analyze(rows, correction=None)
    assert [(r.metric, r.variation) for r in results] == [
        ("checkout conversion", "B"),
        ("checkout conversion", "C"),
        ("revenue", "B"),
        ("revenue", "C"),
        ("clicks per session", "B"),
        ("clicks per session", "C"),
    ]
    assert {r.control for r in results} == {"control"}
    conv = {r["variation"]: r for r in rows if r["metric"] == "checkout conversion"}
    direct = frequentist.welch(
        MeanStats.proportion(conv["control"]["n"], conv["control"]["sum"]),
        MeanStats.proportion(conv["B"]["n"], conv["B"]["sum"]),
    )
    r = results[0]
    assert r.kind == "proportion"
    assert r.effect_relative == pytest.approx(float(direct.effect_relative))
    assert r.p_value == pytest.approx(float(np.asarray(direct.p_value_relative)))
    assert r.ci_low_adjusted == pytest.approx(float(direct.ci_low_relative))
    assert results[4].kind == "ratio" and results[2].kind == "mean"
    for r in results:
        assert not r.not_enough_data and r.sentence


def test_cuped_is_used_when_asked_and_narrows_the_interval():
    plain = engine.analyze(table(), correction=None)
    adjusted = engine.analyze(table(), cuped=True, correction=None)
    p, c = plain[2], adjusted[2]
    assert c.kind == "mean (CUPED)"
    assert (c.ci_high_relative - c.ci_low_relative) < 0.8 * (p.ci_high_relative - p.ci_low_relative)
    rev = {r["variation"]: r for r in table() if r["metric"] == "revenue"}

    def cs(d: dict[str, Any]) -> CupedStats:
        return CupedStats(
            MeanStats(d["n"], d["sum"], d["sum_squares"]),
            MeanStats(d["n"], d["covariate_sum"], d["covariate_sum_squares"]),
            d["main_covariate_sum_product"],
        )

    direct = frequentist.cuped(cs(rev["control"]), cs(rev["B"]))
    assert c.effect_relative == pytest.approx(float(direct.effect_relative))


def test_corrections_keep_both_and_intervals_agree_with_the_decision():
    rows = table()
    raw = engine.analyze(rows, correction=None)
    for method in ("holm", "bh"):
        corrected = engine.analyze(rows, correction=method)
        for r, u in zip(corrected, raw, strict=True):
            assert r.p_value == pytest.approx(u.p_value)  # the uncorrected one is kept
            assert r.p_value_adjusted >= r.p_value - 1e-15
            assert r.ci_high_adjusted - r.ci_low_adjusted >= u.ci_high_adjusted - u.ci_low_adjusted - 1e-12
            excludes_zero = r.ci_low_adjusted > 0 or r.ci_high_adjusted < 0
            assert excludes_zero == (r.p_value_adjusted < 0.05)
            assert r.significant == (r.p_value_adjusted < 0.05)
    sentence = engine.analyze(rows, correction="holm")[0].sentence
    assert "Holm-corrected" in sentence


def test_sequential_and_bayesian():
    rows = table()
    seq = engine.analyze(rows, method="sequential", correction="bh")
    fixed = engine.analyze(rows, correction="bh")
    assert all(s.method.startswith("sequential") for s in seq)
    assert (
        seq[0].ci_high_relative - seq[0].ci_low_relative
        > fixed[0].ci_high_relative - fixed[0].ci_low_relative
    )
    assert "always-valid CI" in seq[0].sentence
    bay = engine.analyze(rows, method="bayesian", correction="holm")
    for r in bay:
        assert math.isnan(r.p_value) and r.correction is None
        assert 0 <= r.chance_to_win <= 1
        assert "not a p-value" in r.sentence and "p =" not in r.sentence
        assert "credible interval" in r.sentence
    direct = bayesian.means(
        MeanStats.proportion(rows[3]["n"], rows[3]["sum"]), MeanStats.proportion(rows[0]["n"], rows[0]["sum"])
    )
    assert bay[0].chance_to_win == pytest.approx(float(np.asarray(direct.chance_to_win)))


def test_sentence_wording():
    rows = [
        {"metric": "checkout conversion", "variation": "A", "n": 20000, "sum": 2000, "sum_squares": 2000},
        {"metric": "checkout conversion", "variation": "B", "n": 20000, "sum": 2300, "sum_squares": 2300},
    ]
    (r,) = engine.analyze(rows)
    assert r.control == "A"
    assert r.sentence.startswith("Variant B increased checkout conversion by 15.0% (95% CI ")
    assert "p < 0.0001" in r.sentence


def test_not_enough_data_rows_say_why():
    rows = [
        {"metric": "m", "variation": "control", "n": 100, "sum": 500, "sum_squares": 2500},  # zero variance
        {"metric": "m", "variation": "B", "n": 100, "sum": 520, "sum_squares": 2900},
        {"metric": "k", "variation": "control", "n": 1, "sum": 5, "sum_squares": 25},
        {"metric": "k", "variation": "B", "n": 100, "sum": 520, "sum_squares": 2900},
        {"metric": "zero", "variation": "control", "n": 100, "sum": 0, "sum_squares": 40},
        {"metric": "zero", "variation": "B", "n": 100, "sum": 10, "sum_squares": 50},
        {"metric": "only-b", "variation": "B", "n": 100, "sum": 10, "sum_squares": 50},
        {"metric": "nan", "variation": "control", "n": 100, "sum": float("nan"), "sum_squares": 50},
        {"metric": "nan", "variation": "B", "n": 100, "sum": 10, "sum_squares": 50},
    ]
    by = {r.metric: r for r in engine.analyze(rows)}
    assert by["m"].not_enough_data and "zero variance" in by["m"].sentence
    assert by["m"].sentence.endswith("not enough data: zero variance.")
    assert by["k"].not_enough_data and "fewer than 2 units" in by["k"].reason
    assert by["only-b"].not_enough_data and "no row for variation 'control'" in by["only-b"].reason
    assert by["nan"].not_enough_data and "NaN" in by["nan"].reason
    z = by["zero"]  # control mean 0: an absolute effect, a p-value, and the reason there is no relative one
    assert not z.not_enough_data and z.scale == "absolute" and not math.isnan(z.p_value)
    assert "control mean is zero" in z.sentence
    for r in by.values():
        if r.not_enough_data:
            assert math.isnan(r.effect) and math.isnan(r.p_value)


def test_srm_is_flagged_in_every_row():
    rows = [
        {"metric": "m", "variation": "control", "n": 10000, "sum": 500, "sum_squares": 500},
        {"metric": "m", "variation": "B", "n": 10600, "sum": 560, "sum_squares": 560},
    ]
    (r,) = engine.analyze(rows)
    assert r.srm_mismatch and r.srm_p_value < 0.001 and "sample ratio mismatch" in r.sentence
    weighted = [{**rows[0], "weight": 0.485}, {**rows[1], "weight": 0.515}]
    (w,) = engine.analyze(weighted)
    assert not w.srm_mismatch


def test_columns_table_and_bad_tables():
    cols: dict[str, list[Any]] = {
        "metric": ["m", "m"],
        "variation": ["control", "B"],
        "n": [100, 100],
        "sum": [500, 520],
        "sum_squares": [2600, 2900],
    }
    (r,) = engine.analyze(cols)
    assert r.effect == pytest.approx(0.2)
    with pytest.raises(engine.TableError, match="sum_squares: required column is missing"):
        engine.analyze([{"metric": "m", "variation": "a", "n": 1, "sum": 1}])
    with pytest.raises(engine.TableError, match=r"^n: row 1: expected a number"):
        engine.analyze([{"metric": "m", "variation": "a", "n": "many", "sum": 1, "sum_squares": 1}])
    with pytest.raises(engine.TableError, match="twice"):
        engine.analyze(
            [cols_row := {"metric": "m", "variation": "a", "n": 2, "sum": 1, "sum_squares": 1}, cols_row]
        )
    with pytest.raises(engine.TableError, match="method"):
        engine.analyze(cols, method="magic")  # type: ignore[arg-type]
    with pytest.raises(engine.TableError, match="alpha"):
        engine.analyze(cols, alpha=1.5)
    assert r.to_dict()["chance_to_win"] is None


arm = st.tuples(st.integers(10, 10_000), st.floats(1, 100), st.floats(0.5, 20))


@settings(max_examples=40, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(arm, arm, st.sampled_from(["frequentist", "sequential", "bayesian"]))
def test_swapping_variations_negates_the_effect(x, y, method):
    def row(v: str, n: int, m: float, sd: float) -> dict[str, Any]:
        return {
            "metric": "m",
            "variation": v,
            "n": n,
            "sum": m * n,
            "sum_squares": sd * sd * (n - 1) + m * m * n,
        }

    ab = engine.analyze([row("control", *x), row("B", *y)], method=method)[0]
    ba = engine.analyze([row("control", *y), row("B", *x)], method=method)[0]
    assert ab.effect == pytest.approx(-ba.effect, rel=1e-9, abs=1e-9)
    assert ab.ci_low == pytest.approx(-ba.ci_high, rel=1e-9, abs=1e-9)


def test_quantile_metric_from_quantile_summaries():
    rng = np.random.default_rng(4)
    rows = []
    summaries = {}
    for v, scale in (("control", 1.0), ("B", 1.2)):
        q = quantile.QuantileStats.from_values(rng.exponential(scale, 5000), 0.9)
        summaries[v] = q
        rows.append(
            {
                "metric": "p90 latency",
                "variation": v,
                "n": float(q.n),
                "sum": None,
                "sum_squares": None,
                "quantile_level": 0.9,
                "quantile": float(q.quantile),
                "quantile_lower": float(q.lower),
                "quantile_upper": float(q.upper),
            }
        )
    (r,) = engine.analyze(rows, correction=None)
    direct = quantile.welch(summaries["control"], summaries["B"])
    assert r.kind == "quantile" and not r.not_enough_data
    assert r.effect == pytest.approx(float(direct.effect))
    assert r.ci_low_adjusted == pytest.approx(float(direct.ci_low_relative))
    assert "p90 latency" in r.sentence
    (b,) = engine.analyze(rows, method="bayesian")
    assert b.chance_to_win > 0.9
