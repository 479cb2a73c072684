"""The pure progress maths: one target's progress, and the weighted roll-up over children and aligned goals."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from truenorth.strategy.progress import (
    Direction,
    GoalNode,
    Progress,
    mean,
    rollup,
    target_progress,
    weighted_mean,
)

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
weights = st.floats(min_value=0.001, max_value=1000.0, allow_nan=False)


# --- target_progress ------------------------------------------------------------------------------


def test_increase_is_share_of_the_way():
    assert target_progress(10, 20, 15, Direction.INCREASE) == pytest.approx(0.5)
    assert target_progress(10, 20, 10, "increase") == 0.0
    assert target_progress(10, 20, 20, "increase") == 1.0


def test_decrease_is_share_of_the_way_down():
    assert target_progress(100, 50, 75, Direction.DECREASE) == pytest.approx(0.5)
    assert target_progress(100, 50, 60, "decrease") == pytest.approx(0.8)


def test_progress_is_clamped():
    assert target_progress(10, 20, 35, "increase") == 1.0  # overshoot
    assert target_progress(10, 20, 2, "increase") == 0.0  # went backwards
    assert target_progress(100, 50, 10, "decrease") == 1.0
    assert target_progress(100, 50, 130, "decrease") == 0.0


def test_no_observation_is_unknown():
    assert target_progress(10, 20, None, "increase") is None


def test_target_equal_to_baseline_is_unknown():
    assert target_progress(10, 10, 10, "increase") is None
    assert target_progress(10, 10, 99, "decrease") is None


def test_target_in_the_wrong_direction_is_unknown():
    assert target_progress(10, 5, 7, "increase") is None
    assert target_progress(10, 20, 15, "decrease") is None


@pytest.mark.parametrize(
    ("baseline", "target", "current"),
    [(math.nan, 20, 15), (10, math.nan, 15), (10, 20, math.nan)],
)
def test_nan_anywhere_is_unknown(baseline, target, current):
    assert target_progress(baseline, target, current, "increase") is None


def test_default_direction_is_increase():
    assert target_progress(0, 4, 1) == pytest.approx(0.25)


def test_unknown_direction_is_an_error():
    with pytest.raises(ValueError):
        target_progress(0, 4, 1, "sideways")


@given(
    baseline=st.floats(allow_nan=True, allow_infinity=True),
    target=st.floats(allow_nan=True, allow_infinity=True),
    current=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    direction=st.sampled_from(list(Direction)),
)
def test_progress_is_always_within_unit_interval_or_none(baseline, target, current, direction):
    p = target_progress(baseline, target, current, direction)
    assert p is None or 0.0 <= p <= 1.0


@given(baseline=finite, target=finite, current=finite)
def test_increase_and_decrease_agree_on_mirrored_values(baseline, target, current):
    """Lower-is-better from b to t is the same as higher-is-better from -b to -t."""
    up = target_progress(-baseline, -target, -current, "increase")
    down = target_progress(baseline, target, current, "decrease")
    if up is None or down is None:
        assert up is down
    else:
        assert down == pytest.approx(up, abs=1e-9)


@given(baseline=finite, target=finite, a=finite, b=finite)
def test_progress_never_falls_as_the_value_improves(baseline, target, a, b):
    assume(target > baseline)
    low, high = sorted((a, b))
    p_low = target_progress(baseline, target, low, "increase")
    p_high = target_progress(baseline, target, high, "increase")
    assert p_low is not None and p_high is not None
    assert p_low <= p_high


# --- mean / weighted mean -------------------------------------------------------------------------


def test_mean_skips_unknowns():
    assert mean([0.2, None, 0.4]) == pytest.approx(0.3)
    assert mean([None, None]) is None
    assert mean([]) is None


def test_weighted_mean_weights_and_skips():
    assert weighted_mean([(1.0, 3.0), (0.0, 1.0)]) == pytest.approx(0.75)
    assert weighted_mean([(None, 5.0), (0.4, 1.0)]) == pytest.approx(0.4)
    assert weighted_mean([(0.9, 0.0), (0.4, 1.0)]) == pytest.approx(0.4)  # zero weight: no say
    assert weighted_mean([(None, 1.0)]) is None
    assert weighted_mean([]) is None


@given(st.lists(unit, min_size=1, max_size=30), weights)
def test_equal_weights_give_the_plain_mean(values, w):
    assert weighted_mean([(v, w) for v in values]) == pytest.approx(mean(values), abs=1e-12)


@given(
    st.lists(st.tuples(unit, weights), min_size=1, max_size=30), st.floats(min_value=0.01, max_value=100.0)
)
def test_scaling_every_weight_changes_nothing(pairs, factor):
    scaled = [(p, w * factor) for p, w in pairs]
    assert weighted_mean(scaled) == pytest.approx(weighted_mean(pairs), abs=1e-9)


@given(st.lists(st.tuples(st.none() | unit, weights), max_size=30))
def test_weighted_mean_stays_within_its_inputs(pairs):
    result = weighted_mean(pairs)
    known = [p for p, _ in pairs if p is not None]
    if not known:
        assert result is None
    else:
        assert result is not None
        assert min(known) - 1e-12 <= result <= max(known) + 1e-12
        assert 0.0 <= result <= 1.0


# --- roll-up --------------------------------------------------------------------------------------


def _nodes(*nodes: GoalNode) -> dict[int, GoalNode]:
    return {n.id: n for n in nodes}


def test_measured_progress_is_the_mean_of_known_targets():
    result = rollup(_nodes(GoalNode(1, target_progress=[0.2, None, 0.6])))
    assert result[1].measured == pytest.approx(0.4)
    assert result[1].rollup is None
    assert result[1].value == pytest.approx(0.4)


def test_goal_without_evidence_anywhere_is_unknown():
    result = rollup(_nodes(GoalNode(1, contributors=[2]), GoalNode(2)))
    assert result[1].value is None
    assert result[2].value is None


def test_rollup_is_the_weighted_mean_of_contributors():
    result = rollup(
        _nodes(
            GoalNode(1, contributors=[2, 3]),
            GoalNode(2, weight=3.0, target_progress=[1.0]),
            GoalNode(3, weight=1.0, target_progress=[0.0]),
        )
    )
    assert result[1].measured is None
    assert result[1].rollup == pytest.approx(0.75)
    assert result[1].value == pytest.approx(0.75)


def test_unknown_contributors_are_left_out_not_counted_as_zero():
    result = rollup(
        _nodes(
            GoalNode(1, contributors=[2, 3]),
            GoalNode(2, target_progress=[0.8]),
            GoalNode(3, target_progress=[None]),
        )
    )
    assert result[1].value == pytest.approx(0.8)


def test_contributor_ids_missing_from_the_map_are_ignored():
    result = rollup(_nodes(GoalNode(1, contributors=[2, 99]), GoalNode(2, target_progress=[0.5])))
    assert result[1].value == pytest.approx(0.5)
    assert 99 not in result


def test_abandoned_contributors_do_not_count():
    result = rollup(
        _nodes(
            GoalNode(1, contributors=[2, 3]),
            GoalNode(2, target_progress=[1.0]),
            GoalNode(3, target_progress=[0.0], counts=False),
        )
    )
    assert result[1].value == pytest.approx(1.0)
    assert result[3].value == 0.0  # its own progress is still known


def test_only_abandoned_contributors_leave_the_rollup_unknown():
    result = rollup(_nodes(GoalNode(1, contributors=[2]), GoalNode(2, target_progress=[1.0], counts=False)))
    assert result[1].value is None


def test_measured_progress_wins_over_the_rollup():
    result = rollup(
        _nodes(GoalNode(1, target_progress=[0.1], contributors=[2]), GoalNode(2, target_progress=[0.9]))
    )
    assert result[1].measured == pytest.approx(0.1)
    assert result[1].rollup == pytest.approx(0.9)
    assert result[1].value == pytest.approx(0.1)


def test_rollup_goes_through_grandchildren():
    result = rollup(
        _nodes(
            GoalNode(1, contributors=[2]),
            GoalNode(2, contributors=[3, 4]),
            GoalNode(3, target_progress=[1.0]),
            GoalNode(4, target_progress=[0.5]),
        )
    )
    assert result[2].value == pytest.approx(0.75)
    assert result[1].value == pytest.approx(0.75)


def test_a_shared_contributor_counts_for_each_goal_it_serves():
    """A goal that is the child of one goal and aligned to another rolls up into both."""
    result = rollup(
        _nodes(
            GoalNode(1, contributors=[3]),
            GoalNode(2, contributors=[3, 4]),
            GoalNode(3, target_progress=[0.4]),
            GoalNode(4, target_progress=[0.0]),
        )
    )
    assert result[1].value == pytest.approx(0.4)
    assert result[2].value == pytest.approx(0.2)


def test_deep_chain_of_ten_thousand_goals_has_no_recursion_error():
    n = 10_000
    nodes = {i: GoalNode(i, contributors=[i + 1] if i < n else []) for i in range(1, n + 1)}
    nodes[n].target_progress = [0.3]
    result = rollup(nodes)
    assert len(result) == n
    assert result[1].value == pytest.approx(0.3)


def test_deep_chain_in_reverse_insertion_order():
    n = 10_000
    nodes = {i: GoalNode(i, contributors=[i + 1] if i < n else []) for i in range(n, 0, -1)}
    nodes[n].target_progress = [0.6]
    assert rollup(nodes)[1].value == pytest.approx(0.6)


def test_wide_tree():
    nodes = {0: GoalNode(0, contributors=list(range(1, 5001)))}
    nodes.update({i: GoalNode(i, target_progress=[1.0 if i % 2 else 0.0]) for i in range(1, 5001)})
    assert rollup(nodes)[0].value == pytest.approx(0.5)


def test_an_accidental_cycle_does_not_loop():
    nodes = _nodes(
        GoalNode(1, contributors=[2]),
        GoalNode(2, contributors=[3]),
        GoalNode(3, contributors=[1], target_progress=[0.5]),
    )
    result = rollup(nodes)
    assert set(result) == {1, 2, 3}
    for p in result.values():
        assert p.value is None or 0.0 <= p.value <= 1.0
    assert result[3].value == pytest.approx(0.5)


def test_a_self_loop_does_not_loop():
    result = rollup(_nodes(GoalNode(1, contributors=[1], target_progress=[0.2])))
    assert result[1].value == pytest.approx(0.2)


@st.composite
def graphs(draw: st.DrawFn) -> dict[int, GoalNode]:
    n = draw(st.integers(min_value=1, max_value=25))
    nodes: dict[int, GoalNode] = {}
    for i in range(n):
        nodes[i] = GoalNode(
            i,
            weight=draw(weights),
            target_progress=draw(st.lists(st.none() | unit, max_size=3)),
            # arbitrary edges, cycles included: the roll-up must still terminate and stay in range
            contributors=draw(st.lists(st.integers(min_value=0, max_value=n), max_size=4)),
            counts=draw(st.booleans()),
        )
    return nodes


@given(graphs())
def test_rollup_terminates_and_stays_in_range_on_any_graph(nodes):
    result = rollup(nodes)
    assert set(result) == set(nodes)
    for p in result.values():
        for v in (p.measured, p.rollup, p.value):
            assert v is None or 0.0 <= v <= 1.0


@given(
    st.lists(st.tuples(unit, weights), min_size=1, max_size=20), st.floats(min_value=0.01, max_value=100.0)
)
def test_scaling_children_weights_leaves_the_rollup_alone(children, factor):
    def build(scale: float) -> dict[int, GoalNode]:
        nodes = {0: GoalNode(0, contributors=list(range(1, len(children) + 1)))}
        for i, (p, w) in enumerate(children, start=1):
            nodes[i] = GoalNode(i, weight=w * scale, target_progress=[p])
        return nodes

    assert rollup(build(factor))[0].value == pytest.approx(rollup(build(1.0))[0].value, abs=1e-9)


def test_progress_value_prefers_measured_even_when_it_is_zero():
    assert Progress(measured=0.0, rollup=0.9).value == 0.0
    assert Progress(measured=None, rollup=0.9).value == 0.9
    assert Progress(measured=None, rollup=None).value is None
