"""The health check's rules (a pure core): each rule, hand-computed area and overall scores, the gains
and the order of the next steps."""

from __future__ import annotations

import pytest

from truenorth.engagement import healthrules as hr


def _rule(facts: hr.Facts, key: str) -> int | None:
    return next(r.score for r in hr.assess(facts).rules if r.key == key)


@pytest.mark.parametrize(
    ("key", "facts", "expected"),
    [
        ("goals_measured", hr.Facts(active_goals=3, goals_with_target=2), 67),
        ("goals_owned", hr.Facts(active_goals=8, goals_with_owner=1), 13),  # 12.5 rounds half up
        ("goals_dated", hr.Facts(active_goals=4, goals_with_date=4), 100),
        ("endorsement", hr.Facts(active_goals=5, goals_endorsed=0), 0),
        ("open_concerns", hr.Facts(live_goals=5, goals_with_open_concerns=2), 60),
        ("kva_coverage", hr.Facts(kva_cells=8, kva_cells_fresh=3), 38),  # 37.5
        ("fresh_measures", hr.Facts(measures=10, stale_measures=7), 30),
        ("work_linked", hr.Facts(work_items=6, work_items_linked=5), 83),
        ("decisions", hr.Facts(concluded_hypotheses=2, concluded_with_decision=1), 50),
        ("trustworthy", hr.Facts(judged_experiments=3, trustworthy_experiments=1), 33),
        ("alignment_index", hr.Facts(alignment_index=72.5), 73),
        ("stakeholder_gaps", hr.Facts(stakeholders=4, stakeholders_with_gap=1), 75),
        ("stakeholder_contact", hr.Facts(stakeholders=4, stakeholders_overdue=4), 0),
        ("checkins_on_time", hr.Facts(active_goals=10, overdue_checkins=1), 90),
    ],
)
def test_each_rule(key: str, facts: hr.Facts, expected: int) -> None:
    assert _rule(facts, key) == expected


@pytest.mark.parametrize("key", [r.key for r in hr.RULES])
def test_every_rule_is_not_applicable_without_anything_to_judge(key: str) -> None:
    assert _rule(hr.Facts(), key) is None


def test_nothing_to_judge_scores_nothing_and_proposes_nothing() -> None:
    result = hr.assess(hr.Facts())
    assert result.overall is None and set(result.areas.values()) == {None} and result.next_steps == ()


def test_a_perfect_organisation_scores_100_with_no_steps() -> None:
    facts = hr.Facts(
        active_goals=2, goals_with_target=2, goals_with_owner=2, goals_with_date=2, goals_endorsed=2,
        live_goals=2, kva_cells=4, kva_cells_fresh=4, measures=4, work_items=1, work_items_linked=1,
        concluded_hypotheses=1, concluded_with_decision=1, judged_experiments=1, trustworthy_experiments=1,
        alignment_index=100, stakeholders=3,
    )  # fmt: skip
    result = hr.assess(facts)
    assert result.scores() == {
        "overall": 100,
        "vision": 100,
        "value": 100,
        "validation": 100,
        "engagement": 100,
    }
    assert result.next_steps == ()


FACTS = hr.Facts(
    active_goals=4, goals_with_target=2, goals_with_owner=4, goals_with_date=3, goals_endorsed=1,
    live_goals=5, goals_with_open_concerns=1, kva_cells=8, kva_cells_fresh=2, measures=4, stale_measures=1,
    alignment_index=70.4, overdue_checkins=1,
)  # fmt: skip


def test_hand_computed_scores() -> None:
    result = hr.assess(FACTS)
    # Vision: (50x2 + 100 + 75 + 25 + 80) / 6 = 63.3; Value: (25x2 + 75) / 3 = 41.7;
    # Validation: nothing to judge; Engagement: (70x2 + 75) / 3 = 71.7 (stakeholder rules not applicable).
    assert result.areas == {"vision": 63, "value": 42, "validation": None, "engagement": 72}
    assert result.overall == 59  # (63 + 42 + 72) / 3


def test_next_steps_are_the_three_largest_gains() -> None:
    steps = hr.assess(FACTS).next_steps
    # kva_coverage: 75 x 2 / 3 / 3 = 16.7; alignment_index: 30 x 2 / 3 / 3 = 6.7;
    # goals_measured: 50 x 2 / 6 / 3 = 5.6; then endorsement 4.2, fresh_measures and checkins 2.8 ...
    assert [(s.key, s.gain) for s in steps] == [
        ("kva_coverage", 16.7),
        ("alignment_index", 6.7),
        ("goals_measured", 5.6),
    ]
    assert steps[0].text == "Measure the 6 Key Value Areas (per product) that have no fresh value."
    assert steps[2].text == "Give 2 active goals a target measure." and steps[2].where == "goals"


def test_ties_keep_the_rules_order() -> None:
    facts = hr.Facts(measures=2, stale_measures=1, active_goals=2, overdue_checkins=1, goals_with_target=2,
                     goals_with_owner=2, goals_with_date=2, goals_endorsed=2)  # fmt: skip
    keys = [s.key for s in hr.assess(facts).next_steps]
    assert keys == ["fresh_measures", "checkins_on_time"]


def test_facts_round_trip_and_trend() -> None:
    assert hr.Facts.from_dict({**FACTS.to_dict(), "unknown": 1}) == FACTS
    assert hr.trend({"overall": 60, "value": None}, {"overall": 52, "value": 40}) == {
        "overall": 8,
        "value": None,
    }
    assert hr.trend({"overall": 60}, None) == {"overall": None}
