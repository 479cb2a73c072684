"""On ~200,000 units the statistics recover the effects planted in the synthetic data, and the SRM check
fires on a planted allocation mismatch."""

from __future__ import annotations

import pytest

from truenorth.evidence.run import DuckDBEngine, compare_to_control, run_experiment, srm_p_value
from truenorth.evidence.synthetic import EXPERIMENT, Planted, standard_metrics, write_parquet


def test_the_95_percent_intervals_cover_the_planted_effects(large_parquet):
    directory, planted = large_parquet
    evidence = run_experiment(DuckDBEngine(directory), EXPERIMENT, standard_metrics(planted))
    assert sum(evidence.units.values()) == pytest.approx(200_000, rel=0.01)
    results = compare_to_control(evidence, "control")
    truth = planted.true_lifts()
    for name, lift in truth.items():
        c = results[name]["treatment"]
        assert not bool(c.not_enough_data), name
        low, high = float(c.ci_low_relative), float(c.ci_high_relative)
        assert low <= lift <= high, f"{name}: true lift {lift:.4f} outside [{low:.4f}, {high:.4f}]"
    assert results["order_value"]["treatment"].method == "welch"  # a per-unit mean
    # CUPED with the pre-period covariate (page views correlate through the unit's activity) narrows the interval.
    views = results["page_views"]["treatment"]
    assert views.method == "cuped"
    assert views.variance_reduction is not None and float(views.variance_reduction) > 0.1
    assert srm_p_value(evidence.units) > 0.001


def test_the_srm_check_fires_on_a_planted_allocation_mismatch(tmp_path):
    # 51 % of ~200,000 units in treatment where 50 % was planned.
    planted = Planted(treatment_share=0.51, views_per_day=0.02)
    write_parquet(tmp_path, int(200_000 * planted.events_per_unit()), seed=5, planted=planted)
    evidence = run_experiment(DuckDBEngine(tmp_path), EXPERIMENT, standard_metrics(planted)[:1])
    assert evidence.units["treatment"] > evidence.units["control"]
    assert srm_p_value(evidence.units) < 0.001
    assert srm_p_value(evidence.units, {"control": 0.49, "treatment": 0.51}) > 0.001


def test_the_srm_check_refuses_mismatched_variations():
    from truenorth.core.errors import DomainError

    with pytest.raises(DomainError, match="do not match"):
        srm_p_value({"a": 10, "b": 12}, {"a": 1, "c": 1})
    with pytest.raises(DomainError, match="at least two"):
        srm_p_value({"a": 10})
