"""Prioritisation maths (DOMAIN.md §4): ICE, RICE, WSJF, CD3 and the ranking."""

from __future__ import annotations

import math

import pytest

from truenorth.hypotheses import scoring
from truenorth.hypotheses.scoring import Inputs


def test_ice_multiplies_impact_confidence_and_ease() -> None:
    assert scoring.ice(Inputs(impact=8, confidence=7, ease=6)) == 336


def test_rice_divides_reach_impact_confidence_by_effort() -> None:
    assert scoring.rice(Inputs(reach=5000, impact=8, confidence=7, effort=2)) == 140_000


def test_wsjf_sums_the_cost_of_delay_parts_over_job_size() -> None:
    assert scoring.wsjf(Inputs(business_value=8, time_criticality=5, risk_reduction=5, job_size=2)) == 9


def test_cd3_divides_cost_of_delay_by_duration() -> None:
    assert scoring.cd3(Inputs(cost_of_delay=6000, duration_weeks=2)) == 3000


@pytest.mark.parametrize("method", scoring.METHODS)
def test_it_gives_no_score_when_an_input_is_missing(method) -> None:
    assert scoring.score(method, Inputs()) is None


@pytest.mark.parametrize(
    "inputs, method",
    [
        (Inputs(reach=1, impact=1, confidence=1, effort=0), "rice"),
        (Inputs(business_value=1, time_criticality=1, risk_reduction=1, job_size=0), "wsjf"),
        (Inputs(cost_of_delay=1, duration_weeks=0), "cd3"),
        (Inputs(impact=math.nan, confidence=1, ease=1), "ice"),
    ],
)
def test_it_refuses_to_divide_by_zero_or_score_nan(inputs, method) -> None:
    assert scoring.score(method, inputs) is None


def test_rank_puts_the_highest_first_and_the_unscored_last_in_order() -> None:
    rows = scoring.rank(
        [
            ("a", Inputs()),
            ("b", Inputs(impact=2, confidence=2, ease=2)),
            ("c", Inputs(impact=9, confidence=9, ease=9)),
            ("d", Inputs()),
        ],
        "ice",
    )
    assert [name for name, _ in rows] == ["c", "b", "a", "d"]
    assert [score for _, score in rows] == [729, 8, None, None]
