"""The pure goal lint: each rule fires exactly when it should."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest

from truenorth.strategy.lint import RULES, GoalFacts, TargetFacts, lint_goal, lint_goals

TODAY = dt.date(2026, 6, 15)
GOOD = GoalFacts(
    id=1,
    title="Grow weekly active teams",
    outcome="Teams plan their week in TrueNorth because it saves them an hour of meetings.",
    status="active",
    owner="owner@a.example",
    target_date=dt.date(2026, 12, 31),
    targets=(TargetFacts("weekly active teams", 100, 250),),
    parent_target_date=dt.date(2027, 6, 30),
    parent_title="Be the planning tool of choice",
)


def rules_of(goal: GoalFacts, today: dt.date = TODAY) -> list[str]:
    return [f.rule for f in lint_goal(goal, today)]


def with_(**changes: object) -> GoalFacts:
    return dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]


def test_a_good_goal_has_no_findings():
    assert lint_goal(GOOD, TODAY) == []


def test_every_rule_has_a_unique_code_and_description():
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))
    assert all(r.description for r in RULES)


def test_no_measure():
    findings = lint_goal(with_(targets=()), TODAY)
    assert [(f.rule, f.severity, f.goal_id) for f in findings] == [("no-measure", "error", 1)]


def test_no_owner():
    assert rules_of(with_(owner=None)) == ["no-owner"]
    assert rules_of(with_(owner="")) == ["no-owner"]


def test_no_date_is_a_warning_and_not_a_past_date():
    findings = lint_goal(with_(target_date=None), TODAY)
    assert [(f.rule, f.severity) for f in findings] == [("no-date", "warning")]


@pytest.mark.parametrize("status", ["proposed", "active"])
def test_past_date_fires_for_open_goals(status):
    findings = lint_goal(with_(status=status, target_date=dt.date(2026, 6, 14)), TODAY)
    assert [f.rule for f in findings] == ["past-date"]
    assert "2026-06-14" in findings[0].message
    assert status in findings[0].message


@pytest.mark.parametrize("status", ["achieved", "missed", "abandoned"])
def test_past_date_is_fine_once_the_goal_is_closed(status):
    assert rules_of(with_(status=status, target_date=dt.date(2020, 1, 1))) == []


def test_today_is_not_past():
    assert rules_of(with_(target_date=TODAY)) == []


def test_target_equals_baseline_fires_per_target():
    goal = with_(
        targets=(TargetFacts("a", 5, 5), TargetFacts("b", 1, 2), TargetFacts("c", 0.0, 0.0)),
    )
    findings = lint_goal(goal, TODAY)
    assert [f.rule for f in findings] == ["target-equals-baseline", "target-equals-baseline"]
    assert "“a”" in findings[0].message and "“c”" in findings[1].message


@pytest.mark.parametrize("outcome", ["", "   ", "\n\t"])
def test_empty_outcome_is_an_error(outcome):
    findings = lint_goal(with_(outcome=outcome), TODAY)
    assert [(f.rule, f.severity) for f in findings] == [("vague-outcome", "error")]


@pytest.mark.parametrize("outcome", ["Growth", "More happy customers", "one two three four", "a-b-c-d"])
def test_short_outcome_is_a_warning(outcome):
    findings = lint_goal(with_(outcome=outcome), TODAY)
    assert [(f.rule, f.severity) for f in findings] == [("vague-outcome", "warning")]


@pytest.mark.parametrize(
    "outcome",
    [
        "one two three four five",
        "Customers, finally, get answers—within a day.",
        "  leading space counts too fine  ",
    ],
)
def test_a_sentence_of_five_words_is_enough(outcome):
    assert rules_of(with_(outcome=outcome)) == []


def test_outcome_check_stays_fast_on_long_text():
    """A long outcome without spaces must not make the check quadratic."""
    start = time.perf_counter()
    for _ in range(5):
        lint_goal(with_(outcome="a" * 20_000), TODAY)
    assert time.perf_counter() - start < 1.0


def test_date_after_parent():
    findings = lint_goal(with_(target_date=dt.date(2027, 7, 1)), TODAY)
    assert [(f.rule, f.severity) for f in findings] == [("date-after-parent", "warning")]
    assert "2027-06-30" in findings[0].message
    assert "Be the planning tool of choice" in findings[0].message


def test_date_after_parent_without_parent_title():
    findings = lint_goal(with_(target_date=dt.date(2027, 7, 1), parent_title=None), TODAY)
    assert [f.rule for f in findings] == ["date-after-parent"]
    assert "“" not in findings[0].message


@pytest.mark.parametrize(
    ("date", "parent_date"),
    [(dt.date(2027, 6, 30), dt.date(2027, 6, 30)), (None, dt.date(2027, 6, 30)), (dt.date(2027, 7, 1), None)],
)
def test_date_after_parent_not_fired(date, parent_date):
    goal = with_(target_date=date, parent_target_date=parent_date)
    assert "date-after-parent" not in rules_of(goal)


def test_stale_evidence():
    goal = with_(targets=(TargetFacts("fresh", 1, 2), TargetFacts("old", 1, 2, stale=True)))
    findings = lint_goal(goal, TODAY)
    assert [(f.rule, f.severity) for f in findings] == [("stale-evidence", "warning")]
    assert "“old”" in findings[0].message


def test_everything_wrong_at_once():
    goal = GoalFacts(id=7, title="x", outcome="", status="proposed", owner=None, target_date=None)
    assert sorted(rules_of(goal)) == ["no-date", "no-measure", "no-owner", "vague-outcome"]


def test_lint_goals_runs_over_many_goals_and_keeps_ids():
    findings = lint_goals([with_(id=1), with_(id=2, owner=None), with_(id=3, targets=())], TODAY)
    assert [(f.goal_id, f.rule) for f in findings] == [(2, "no-owner"), (3, "no-measure")]
