"""Flow metrics on small hand-computed histories (truenorth/delivery/flow.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from truenorth.delivery.flow import (
    DONE,
    IN_PROGRESS,
    NOT_STARTED,
    ItemHistory,
    StateMapping,
    flow_metrics,
    percentiles,
)

UTC = dt.UTC
MAPPING = StateMapping.from_config(
    {"started": ["In Progress", "Review"], "done": ["Done", "Closed"], "waiting": ["Review"]}
)


def at(day: int, hour: int = 0) -> dt.datetime:
    """Day 1 = Monday 2026-01-05."""
    return dt.datetime(2026, 1, 4, hour, tzinfo=UTC) + dt.timedelta(days=day)


START, END = at(1), at(14, 23)


def item(id: str, created: int, *steps: tuple[int, str]) -> ItemHistory:
    return ItemHistory(id, at(created), [(at(d), s) for d, s in steps])


def test_mapping_from_config_normalises_and_defaults():
    m = StateMapping.from_config({"started": ["  In Progress "], "done": []})
    assert m.started == frozenset({"in progress"})
    assert m.category("DONE") == DONE and m.category("closed") == DONE
    assert m.category("in progress") == IN_PROGRESS
    assert m.category("Backlog") == NOT_STARTED
    assert m.category("something else") == NOT_STARTED  # explicit started: unknown is not started
    implicit = StateMapping.from_config({})
    assert implicit.category("Doing") == IN_PROGRESS  # no started list: any other state is started
    assert implicit.category("To Do") == NOT_STARTED and implicit.category("Resolved") == DONE
    with pytest.raises(ValueError, match="unknown state categories: finished"):
        StateMapping.from_config({"finished": ["x"]})


def test_simple_item_cycle_and_lead_time():
    m = flow_metrics([item("A", 1, (2, "In Progress"), (5, "Done"))], MAPPING, start=START, end=END)
    assert m.cycle_time_days == {50: 3.0, 85: 3.0, 95: 3.0}
    assert m.lead_time_days == {50: 4.0, 85: 4.0, 95: 4.0}
    assert m.completed == [("A", at(5), 3.0)]
    assert m.wip == 0 and m.ages == [] and m.never_started == 0


def test_reopened_item_cycle_from_first_start_to_last_done():
    reopened = item("R", 1, (2, "In Progress"), (4, "Done"), (6, "In Progress"), (9, "Closed"))
    m = flow_metrics([reopened], MAPPING, start=START, end=END)
    assert m.completed == [("R", at(9), 7.0)]
    assert m.daily_throughput[8] == 1 and sum(m.daily_throughput) == 1  # counted once, on its last done


def test_done_to_closed_keeps_the_first_done_time():
    m = flow_metrics(
        [item("D", 1, (2, "In Progress"), (4, "Done"), (6, "Closed"))], MAPPING, start=START, end=END
    )
    assert m.completed == [("D", at(4), 2.0)]


def test_reopened_and_not_done_again_is_wip_not_completed():
    r = item("R", 1, (2, "In Progress"), (4, "Done"), (6, "In Progress"))
    m = flow_metrics([r], MAPPING, start=START, end=at(10))
    assert m.completed == [] and sum(m.daily_throughput) == 0
    assert m.wip == 1
    assert m.ages == [("R", "In Progress", 8.0)]  # age from the first start


def test_never_started_counts_in_throughput_and_lead_time_not_cycle():
    m = flow_metrics(
        [item("N", 1, (3, "Done")), item("A", 1, (2, "In Progress"), (5, "Done"))],
        MAPPING,
        start=START,
        end=END,
    )
    assert m.never_started == 1
    assert m.cycle_time_days[50] == 3.0 and [c[0] for c in m.completed] == ["A"]
    assert sum(m.daily_throughput) == 2
    assert m.lead_time_days[50] == 3.0  # leads 2 and 4


def test_transitions_out_of_order_are_sorted():
    shuffled = ItemHistory("S", at(1), [(at(5), "Done"), (at(2), "In Progress"), (at(3), "Review")])
    m = flow_metrics([shuffled], MAPPING, start=START, end=END)
    assert m.completed == [("S", at(5), 3.0)]


def test_items_created_after_end_and_transitions_after_end_are_ignored():
    late = item("L", 20, (21, "In Progress"))
    later_done = item("X", 1, (2, "In Progress"), (20, "Done"))
    m = flow_metrics([late, later_done], MAPPING, start=START, end=END)
    assert m.completed == [] and m.wip == 1 and m.ages[0][0] == "X"
    assert all(sum(counts.values()) <= 1 for _, counts in m.cfd)


def test_completed_before_the_window_is_not_counted():
    m = flow_metrics([item("O", 1, (1, "In Progress"), (2, "Done"))], MAPPING, start=at(3), end=END)
    assert m.completed == [] and m.cycle_time_days[50] is None and m.lead_time_days[85] is None


def test_throughput_weeks_monday_keyed_with_zeros():
    items = [item("A", 1, (2, "In Progress"), (3, "Done")), item("B", 1, (2, "In Progress"), (4, "Done"))]
    m = flow_metrics(items, MAPPING, start=at(3), end=at(20))  # Wed of week 1 .. Sat of week 3
    assert m.throughput_per_week == [
        (dt.date(2026, 1, 5), 2),
        (dt.date(2026, 1, 12), 0),
        (dt.date(2026, 1, 19), 0),
    ]
    assert len(m.daily_throughput) == 18 and m.daily_throughput[:2] == [1, 1]


def test_flow_efficiency_active_over_active_plus_waiting():
    # A: 2 days in progress, 1 waiting in review -> active 2, waiting 1
    a = item("A", 1, (2, "In Progress"), (4, "Review"), (5, "Done"))
    # B: 1 active, done (the done stretch counts as neither), reopened: 1 waiting, done
    b = item("B", 1, (2, "In Progress"), (3, "Done"), (6, "Review"), (7, "Done"))
    m = flow_metrics([a, b], MAPPING, start=START, end=END)
    assert m.flow_efficiency == pytest.approx(3 / 5)
    assert (m.active_days, m.waiting_days) == pytest.approx((3.0, 2.0))
    no_waiting = StateMapping.from_config({"started": ["In Progress", "Review"], "done": ["Done"]})
    assert flow_metrics([a], no_waiting, start=START, end=END).flow_efficiency is None


def test_cumulative_flow_counts_by_category_at_end_of_day():
    a = item("A", 1, (2, "In Progress"), (3, "Done"))
    b = item("B", 2, (3, "In Progress"))
    m = flow_metrics([a, b], MAPPING, start=START, end=at(4))
    assert m.cfd == [
        (dt.date(2026, 1, 5), {NOT_STARTED: 1, IN_PROGRESS: 0, DONE: 0}),
        (dt.date(2026, 1, 6), {NOT_STARTED: 1, IN_PROGRESS: 1, DONE: 0}),
        (dt.date(2026, 1, 7), {NOT_STARTED: 0, IN_PROGRESS: 1, DONE: 1}),
        (dt.date(2026, 1, 8), {NOT_STARTED: 0, IN_PROGRESS: 1, DONE: 1}),
    ]


def test_percentiles_use_numpy_linear_interpolation():
    # linear: rank p/100 * (n - 1); for 1..4: p50 at 1.5 -> 2.5, p85 at 2.55 -> 3.55, p95 at 2.85 -> 3.85
    assert percentiles([4.0, 1.0, 3.0, 2.0]) == pytest.approx({50: 2.5, 85: 3.55, 95: 3.85})
    assert percentiles([]) == {50: None, 85: None, 95: None}
    sample = list(np.random.default_rng(1).random(37))
    assert percentiles(sample)[85] == pytest.approx(float(np.percentile(sample, 85)))


def test_cycle_percentiles_over_several_items():
    items = [item(f"I{n}", 1, (2, "In Progress"), (2 + n, "Done")) for n in (1, 2, 3, 4)]
    m = flow_metrics(items, MAPPING, start=START, end=END)
    assert m.cycle_time_days == pytest.approx({50: 2.5, 85: 3.55, 95: 3.85})
    assert [c[2] for c in m.completed] == [1.0, 2.0, 3.0, 4.0]


def test_end_before_start_is_refused():
    with pytest.raises(ValueError, match="end is before start"):
        flow_metrics([], MAPPING, start=END, end=START)
