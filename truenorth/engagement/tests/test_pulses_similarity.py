"""The lexical similarity and the alignment index (pure cores)."""

from __future__ import annotations

import pytest

from truenorth.engagement import alignment, pulse_charts
from truenorth.engagement.similarity import lexical_parts, lexical_similarity, normalise, stem, stems

# (goal statement, paraphrases, unrelated answers)
CASES = [
    (
        "Cut the time a new customer needs to get value from the product to under one day.",
        [
            "Help new clients get value within a day.",
            "Make onboarding faster so customers see value on their first day.",
            "Reduce time to value for new customers below one day.",
        ],
        [
            "Rewrite the billing system in Rust.",
            "We are migrating the data centre to the cloud to save hosting costs.",
            "I have no idea, probably more features for the sales team.",
        ],
    ),
    (
        "Grow monthly recurring revenue from small businesses by 20% this year.",
        [
            "Increase recurring revenue from small business customers by a fifth.",
            "Boost monthly revenue coming from small businesses, 20 percent up.",
        ],
        ["Hire three more designers.", "Make the mobile app look nicer."],
    ),
    (
        "Halve the number of payment errors customers see at checkout.",
        [
            "Fewer payment failures at checkout for our customers.",
            "Cut checkout payment errors in half.",
        ],
        ["Launch a loyalty programme in Spain.", "Improve internal documentation for engineers."],
    ),
]


@pytest.mark.parametrize(("goal", "paraphrases", "unrelated"), CASES)
def test_paraphrases_score_higher_than_unrelated_text(
    goal: str, paraphrases: list[str], unrelated: list[str]
) -> None:
    lowest_paraphrase = min(lexical_similarity(p, goal) for p in paraphrases)
    highest_unrelated = max(lexical_similarity(u, goal) for u in unrelated)
    assert lowest_paraphrase > highest_unrelated
    assert lowest_paraphrase > 0.2 and highest_unrelated < 0.1


def test_identical_is_one_and_empty_is_zero() -> None:
    goal = CASES[0][0]
    assert lexical_similarity(goal, goal) == 1.0
    assert lexical_similarity("  " + goal.upper() + "!!", goal) == 1.0  # case and punctuation do not count
    assert lexical_similarity("", goal) == 0.0
    assert lexical_similarity(goal, "") == 0.0
    assert lexical_similarity("the and of it", goal) == 0.0  # only stop words


def test_scores_are_deterministic_and_bounded() -> None:
    goal, paraphrases, unrelated = CASES[1]
    for text in paraphrases + unrelated:
        first = lexical_similarity(text, goal)
        assert first == lexical_similarity(text, goal)
        assert 0.0 <= first <= 1.0
        parts = lexical_parts(text, goal)
        assert parts.score == pytest.approx(round(0.7 * parts.words + 0.3 * parts.spelling, 4))


def test_normalise_stem_and_synonyms() -> None:
    assert normalise("Café  Déjà-vu, OK?") == "cafe deja vu ok"
    assert stem("onboarding") == "onboard"
    assert stem("running") == "run"
    assert stem("business") == "business"
    assert stems("Our customers and clients") == ["custom", "custom"]


def test_index_formula_hand_computed() -> None:
    # One answer: clarity 5 -> 1, commitment 3 -> 0.5, similarity 0.25 / 0.5 -> 0.5
    # 100 * (0.35 * 1 + 0.35 * 0.5 + 0.30 * 0.5) = 67.5
    assert alignment.alignment_index([5], [3], [0.25], scale=0.5) == 67.5
    # Two answers: C = (0 + 0.75) / 2 = 0.375, K = (0.25 + 1) / 2 = 0.625,
    # S = (min(1, 0.8 / 0.5) + 0.1 / 0.5) / 2 = (1 + 0.2) / 2 = 0.6
    # 100 * (0.35 * 0.375 + 0.35 * 0.625 + 0.30 * 0.6) = 100 * (0.35 + 0.18) = 53.0
    parts = alignment.components([1, 4], [2, 5], [0.8, 0.1], scale=0.5)
    assert (parts.clarity, parts.commitment, parts.similarity) == pytest.approx((0.375, 0.625, 0.6))
    assert parts.index == 53.0
    assert alignment.alignment_index([5, 5], [5, 5], [1.0, 1.0], scale=0.5) == 100.0
    assert alignment.alignment_index([1], [1], [0.0], scale=0.5) == 0.0
    assert alignment.alignment_index([], [], [], scale=0.5) is None


def test_index_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        alignment.components([1, 2], [1], [0.1], scale=0.5)
    with pytest.raises(ValueError):
        alignment.scaled(0.3, 0)


def test_weighted_mean() -> None:
    assert alignment.weighted_mean([(60.0, 10), (80.0, 30)]) == 75.0
    assert alignment.weighted_mean([]) is None


def test_trend_chart_spec() -> None:
    import datetime as dt

    when = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    spec = pulse_charts.trend_spec(
        [
            pulse_charts.Point(2, when, 70.0, 0.75, 0.5, 0.8),
            pulse_charts.Point(1, when, None, None, None, 0.3),  # a hidden round: response rate only
        ]
    )
    rows = spec["data"]["values"]
    assert [(r["number"], r["series"]) for r in rows][:1] == [(1, "Response rate")]
    assert {"series": "Clarity", "value": 75.0}.items() <= next(
        r for r in rows if r["series"] == "Clarity"
    ).items()
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 100]
