"""Hypothesis rules: lifecycle, experiments, conclusions, snapshots, ranking, lint, learning log."""

from __future__ import annotations

import pytest

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses import services
from truenorth.hypotheses.models import AppendOnlyError, Decision, ResultSnapshot
from truenorth.hypotheses.tests.conftest import AB, MEASURABLE


def test_a_new_hypothesis_starts_in_draft_with_history(member, make) -> None:
    h = make()
    assert h.state == "draft"
    assert HistoryEntry.objects.filter(object_type="hypotheses.hypothesis", object_id=str(h.pk)).exists()


def test_it_refuses_ready_without_a_measurable_success_signal(member, make) -> None:
    h = make(metric_name="Download rate", baseline=20)
    with pytest.raises(ValidationFailed, match="How will we measure its success") as exc:
        services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    assert exc.value.field == "state"


def test_a_measure_counts_as_a_success_signal(member, make, measure) -> None:
    h = make(measure_id=measure.pk, baseline=1, target=2)
    assert services.move_hypothesis(member.membership, member.user, h.pk, "ready").state == "ready"


def test_it_refuses_testing_without_an_experiment(member, make) -> None:
    h = make(**MEASURABLE)
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    with pytest.raises(ValidationFailed, match="experiment"):
        services.move_hypothesis(member.membership, member.user, h.pk, "testing")


def test_it_refuses_to_skip_a_column(member, make) -> None:
    h = make(**MEASURABLE)
    with pytest.raises(ValidationFailed, match="cannot move to testing"):
        services.move_hypothesis(member.membership, member.user, h.pk, "testing")


def test_it_refuses_concluding_by_a_move(member, testing) -> None:
    with pytest.raises(ValidationFailed, match="learning note"):
        services.move_hypothesis(member.membership, member.user, testing.pk, "concluded")


def test_it_refuses_a_stale_version(member, make) -> None:
    h = make()
    services.update_hypothesis(member.membership, member.user, h.pk, version=1, who="hikers")
    with pytest.raises(Conflict):
        services.update_hypothesis(member.membership, member.user, h.pk, version=1, who="groups")


def test_a_move_within_a_column_reorders_it(member, make) -> None:
    a, _b, c = make("a"), make("b"), make("c")
    services.move_hypothesis(member.membership, member.user, c.pk, "draft", position=0)
    board = services.board(member.membership, a.product_id)
    assert [h.title for h in board["draft"]] == ["c", "a", "b"]


def test_an_ab_test_needs_allocations_adding_up_to_one(member, make) -> None:
    h = make()
    with pytest.raises(ValidationFailed, match="add up to 1"):
        services.create_experiment(
            member.membership,
            member.user,
            h.pk,
            name="x",
            variations=[{"name": "a", "allocation": 0.5}, {"name": "b", "allocation": 0.6}],
        )


def test_an_experiment_needs_exactly_one_primary_metric(member, make) -> None:
    h = make()
    with pytest.raises(ValidationFailed) as exc:
        services.create_experiment(
            member.membership, member.user, h.pk, **{**AB, "metrics": [{"role": "guardrail", "name": "x"}]}
        )
    assert exc.value.field == "metrics"


def test_an_experiment_records_variations_and_metrics(member, make, measure) -> None:
    h = make()
    e = services.create_experiment(
        member.membership,
        member.user,
        h.pk,
        **{**AB, "metrics": [{"role": "primary", "name": "", "measure_id": measure.pk}]},
        alpha=0.01,
        power=0.9,
        planned_sample_size=1000,
    )
    assert [(v.name, v.allocation) for v in e.variations.all()] == [("control", 0.5), ("one_tap", 0.5)]
    assert [(m.role, m.name) for m in e.metrics.all()] == [("primary", "Weekly planners")]
    updated = services.update_experiment(member.membership, member.user, e.pk, version=1, alpha=0.05)
    assert updated.version == 2 and updated.alpha == 0.05
    with pytest.raises(Conflict):
        services.update_experiment(member.membership, member.user, e.pk, version=1, alpha=0.02)


def test_concluding_requires_a_learning_note(member, testing) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.conclude(
            member.membership,
            member.user,
            testing.pk,
            outcome="validated",
            decision="persevere",
            learning=" ",
        )
    assert exc.value.field == "learning"


def test_an_ab_test_with_no_results_may_only_be_inconclusive(member, testing) -> None:
    with pytest.raises(ValidationFailed, match="results"):
        services.conclude(
            member.membership,
            member.user,
            testing.pk,
            outcome="validated",
            decision="persevere",
            learning="x",
        )
    d = services.conclude(
        member.membership, member.user, testing.pk, outcome="inconclusive", decision="stop", learning="x"
    )
    assert d.snapshot is None


def test_concluding_links_the_latest_snapshot(member, testing) -> None:
    e = testing.experiments.get()
    services.store_snapshot(e, method="t", inputs={}, results={"n": 1})
    latest = services.store_snapshot(e, method="t", inputs={}, results={"n": 2})
    d = services.conclude(
        member.membership,
        member.user,
        testing.pk,
        outcome="validated",
        decision="persevere",
        learning="It works.",
    )
    assert d.snapshot == latest
    testing.refresh_from_db()
    assert testing.state == "concluded"
    with pytest.raises(ValidationFailed, match="stays concluded"):
        services.move_hypothesis(member.membership, member.user, testing.pk, "testing")
    with pytest.raises(Conflict):
        services.update_hypothesis(member.membership, member.user, testing.pk, title="changed")


def test_only_a_hypothesis_under_test_can_be_concluded(member, make) -> None:
    h = make()
    with pytest.raises(ValidationFailed, match="being tested"):
        services.conclude(
            member.membership, member.user, h.pk, outcome="validated", decision="stop", learning="x"
        )


def test_snapshots_are_never_updated_or_deleted(member, testing) -> None:
    s = services.store_snapshot(
        testing.experiments.get(),
        method="t",
        inputs={"a": 1},
        results={},
        query="select 1",
    )
    s.method = "changed"
    with pytest.raises(AppendOnlyError):
        s.save()
    with pytest.raises(AppendOnlyError):
        s.delete()
    with pytest.raises(AppendOnlyError):
        ResultSnapshot.objects.filter(pk=s.pk).update(method="changed")
    with pytest.raises(AppendOnlyError):
        ResultSnapshot.objects.filter(pk=s.pk).delete()


def test_stakeholders_cannot_write(stakeholder, make, product) -> None:
    h = make()
    with pytest.raises(Forbidden):
        services.create_hypothesis(stakeholder.membership, stakeholder.user, product.pk, title="x")
    with pytest.raises(Forbidden):
        services.move_hypothesis(stakeholder.membership, stakeholder.user, h.pk, "ready")


def test_an_outsider_finds_nothing(outsider, make) -> None:
    h = make()
    with pytest.raises(NotFound):
        services.get_hypothesis(outsider.membership, h.pk)
    with pytest.raises(NotFound):
        services.ranked(outsider.membership, h.product_id, "ice")


def test_ranking_orders_open_hypotheses_by_the_chosen_score(member, make) -> None:
    make("low", impact=1, confidence=1, ease=1)
    make("high", impact=9, confidence=9, ease=9, cost_of_delay=1, duration_weeks=1)
    make("none")
    rows = services.ranked(member.membership, make().product_id, "ice")
    assert [h.title for h, _ in rows][:2] == ["high", "low"]
    assert next(h.title for h, _ in services.ranked(member.membership, make().product_id, "cd3")) == "high"
    with pytest.raises(ValidationFailed):
        services.ranked(member.membership, make().product_id, "magic")


def test_the_lint_asks_how_we_will_measure_success(member, make) -> None:
    unmeasured = make("vague")
    make("measured", **MEASURABLE)
    findings = services.lint(member.membership, product_id=unmeasured.product_id)
    assert [f.hypothesis.pk for f in findings] == [unmeasured.pk]
    assert "How will we measure its success?" in findings[0].message


def _conclude(member, testing, learning: str) -> Decision:
    return services.conclude(
        member.membership,
        member.user,
        testing.pk,
        outcome="inconclusive",
        decision="pivot",
        learning=learning,
    )


def test_the_learning_log_is_searchable(member, testing) -> None:
    _conclude(member, testing, "Hikers ignore preview images.")
    assert services.learnings(member.membership, testing.product_id, "preview IMAGES").count() == 1
    assert services.learnings(member.membership, testing.product_id, "One-tap").count() == 1
    assert services.learnings(member.membership, testing.product_id, "nothing-like-this").count() == 0


def test_decisions_annotate_the_measure_they_moved(member, make, measure) -> None:
    h = make(measure_id=measure.pk, baseline=1, target=2)
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    services.create_experiment(member.membership, member.user, h.pk, name="x", kind="qualitative")
    services.move_hypothesis(member.membership, member.user, h.pk, "testing")
    _conclude(member, h, "learned")
    [(_when, label)] = services.annotations_for_measure(member.membership, measure.pk)
    assert "One-tap download" in label and "Inconclusive" in label
    assert [d.hypothesis_id for d in services.decisions_for_goal(member.membership, h.goal_id)] == [h.pk]


def test_the_static_chart_carries_the_same_decision_annotations_as_the_page(member, make, measure) -> None:
    from django.urls import reverse

    from truenorth.measures import services as measures

    measures.add_observation(member.membership, member.user, measure.pk, 3)
    h = make(measure_id=measure.pk, baseline=1, target=2)
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    services.create_experiment(member.membership, member.user, h.pk, name="x", kind="qualitative")
    services.move_hypothesis(member.membership, member.user, h.pk, "testing")
    _conclude(member, h, "learned")
    url = reverse("measures:chart_svg", kwargs={"org_slug": "alpha", "measure_id": measure.pk})
    svg = member.client.get(url).content.decode()
    assert "One-tap download" in svg
