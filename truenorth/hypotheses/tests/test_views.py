"""Validation pages: the board (filters, htmx moves, refused moves), ranking, the Test and Learning Cards,
the experiment and decision forms, the learning log, the goal page section and the measure chart."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from truenorth.hypotheses import services
from truenorth.hypotheses.models import Experiment, Hypothesis
from truenorth.hypotheses.tests.conftest import MEASURABLE

HX = {"HTTP_HX_REQUEST": "true"}


def _board(product) -> str:
    return f"/o/alpha/products/{product.pk}/hypotheses/"


def test_the_board_shows_four_columns_and_filters(member, make, product, goal) -> None:
    make("Offline hints")
    make("Trip templates", goal_id=None)
    page = member.client.get(_board(product))
    assert page.status_code == 200
    html = page.content.decode()
    for state in ("draft", "ready", "testing", "concluded"):
        assert f'data-testid="column-{state}"' in html
    assert "Offline hints" in html and "Trip templates" in html
    assert "How will we measure its success?" in html
    filtered = member.client.get(_board(product), {"goal": goal.pk}).content.decode().split('id="lint"')[0]
    assert "Offline hints" in filtered and "Trip templates" not in filtered
    searched = member.client.get(_board(product), {"q": "templates"}).content.decode().split('id="lint"')[0]
    assert "Offline hints" not in searched and "Trip templates" in searched


def test_a_card_moves_by_htmx(member, make) -> None:
    h = make(**MEASURABLE)
    response = member.client.post(
        f"/o/alpha/hypotheses/{h.pk}/move/", {"state": "ready", "version": "1"}, **HX
    )
    assert response.status_code == 200
    assert 'id="board"' in response.content.decode()
    h.refresh_from_db()
    assert h.state == "ready"


def test_a_refused_move_answers_with_an_error_toast(member, make) -> None:
    h = make()
    response = member.client.post(f"/o/alpha/hypotheses/{h.pk}/move/", {"state": "ready"}, **HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="toast"' in html and "How will we measure its success?" in html
    h.refresh_from_db()
    assert h.state == "draft"


def test_stakeholders_read_the_board_but_their_posts_are_403(stakeholder, make, product) -> None:
    h = make(**MEASURABLE)
    assert stakeholder.client.get(_board(product)).status_code == 200
    assert stakeholder.client.get(f"/o/alpha/hypotheses/{h.pk}/").status_code == 200
    assert (
        stakeholder.client.post(f"/o/alpha/hypotheses/{h.pk}/move/", {"state": "ready"}, **HX).status_code
        == 403
    )
    assert (
        stakeholder.client.post(f"/o/alpha/products/{product.pk}/hypotheses/new/", {"title": "x"}).status_code
        == 403
    )
    assert stakeholder.client.post(f"/o/alpha/hypotheses/{h.pk}/conclude/", {}).status_code == 403
    h.refresh_from_db()
    assert h.state == "draft"


def test_outsiders_get_404(outsider, make, product) -> None:
    h = make()
    assert outsider.client.get(_board(product)).status_code == 404
    assert outsider.client.get(f"/o/alpha/hypotheses/{h.pk}/").status_code == 404


def _count(client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_board_runs_a_fixed_number_of_queries(member, make, product, goal) -> None:
    for i in range(5):
        make(f"h{i}", owner_id=member.user.pk)
    few = _count(member.client, _board(product))
    Hypothesis.objects.bulk_create(
        Hypothesis(
            organisation=product.organisation,
            product=product,
            goal=goal,
            owner=member.user,
            title=f"bulk {i}",
            state=("draft", "ready", "testing", "concluded")[i % 4],
            **MEASURABLE,
        )
        for i in range(45)
    )
    assert _count(member.client, _board(product)) == few
    ranking = f"/o/alpha/products/{product.pk}/hypotheses/rank/?method=rice"
    assert _count(member.client, ranking) == _count(member.client, ranking)


def test_a_member_writes_a_hypothesis_designs_a_test_and_concludes(member, product, goal) -> None:
    created = member.client.post(
        f"/o/alpha/products/{product.pk}/hypotheses/new/",
        {
            "title": "One-tap download",
            "goal": str(goal.pk),
            "owner": str(member.user.pk),
            "capability": "a button",
            "who": "hikers",
            "outcome": "more downloads",
            "metric_name": "Rate",
            "baseline": "20",
            "target": "30",
        },
    )
    assert created.status_code == 302, created.content.decode()
    h = Hypothesis.objects.get(title="One-tap download")
    page = member.client.get(f"/o/alpha/hypotheses/{h.pk}/").content.decode()
    assert 'data-testid="test-card"' in page and "We believe that a button for hikers" in page
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    bad = member.client.post(
        f"/o/alpha/hypotheses/{h.pk}/experiments/new/",
        {
            "name": "Button",
            "kind": "ab",
            "state": "planned",
            "variations": "control: 0.5\nbutton: 0.4",
            "primary_metric": "Rate",
            "alpha": "0.05",
            "power": "0.8",
        },
    )
    assert bad.status_code == 200 and "add up to 1" in bad.content.decode()
    good = member.client.post(
        f"/o/alpha/hypotheses/{h.pk}/experiments/new/",
        {
            "name": "Button",
            "kind": "qualitative",
            "state": "running",
            "variations": "",
            "primary_metric": "Rate",
            "guardrail_metrics": "Crashes, Uninstalls",
            "alpha": "0.05",
            "power": "0.8",
        },
    )
    assert good.status_code == 302
    e = Experiment.objects.get(hypothesis=h)
    assert sorted(m.name for m in e.metrics.filter(role="guardrail")) == ["Crashes", "Uninstalls"]
    edit = member.client.get(f"/o/alpha/experiments/{e.pk}/edit/")
    assert edit.status_code == 200 and "Crashes, Uninstalls" in edit.content.decode()
    version = str(services.move_hypothesis(member.membership, member.user, h.pk, "testing").version)
    no_note = member.client.post(
        f"/o/alpha/hypotheses/{h.pk}/conclude/",
        {"outcome": "validated", "decision": "persevere", "learning": "", "version": version},
    )
    assert no_note.status_code == 422
    done = member.client.post(
        f"/o/alpha/hypotheses/{h.pk}/conclude/",
        {
            "outcome": "validated",
            "decision": "persevere",
            "observed": "Downloads up.",
            "learning": "Hikers want fewer taps.",
            "next_step": "Ship it to everyone.",
            "version": version,
        },
    )
    assert done.status_code == 302
    card = member.client.get(f"/o/alpha/hypotheses/{h.pk}/").content.decode()
    assert 'data-testid="learning-card"' in card and "Hikers want fewer taps." in card
    log = member.client.get(
        f"/o/alpha/products/{product.pk}/learnings/", {"q": "fewer taps"}
    ).content.decode()
    assert "Hikers want fewer taps." in log
    assert (
        "Hikers want fewer taps."
        not in member.client.get(
            f"/o/alpha/products/{product.pk}/learnings/", {"q": "zebra"}
        ).content.decode()
    )
    goal_page = member.client.get(f"/o/alpha/goals/{goal.pk}/").content.decode()
    assert 'data-testid="goal-decisions"' in goal_page and "One-tap download" in goal_page


def test_the_measure_chart_carries_decisions_as_annotations(member, make, measure) -> None:
    h = make(measure_id=measure.pk, baseline=1, target=2)
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    services.create_experiment(member.membership, member.user, h.pk, name="x", kind="qualitative")
    services.move_hypothesis(member.membership, member.user, h.pk, "testing")
    services.conclude(
        member.membership, member.user, h.pk, outcome="validated", decision="stop", learning="x"
    )
    page = member.client.get(f"/o/alpha/measures/{measure.pk}/")
    assert page.status_code == 200
    marks = [layer for layer in page.context["spec"]["layer"] if layer["data"]["name"] == "annotations"]
    assert marks[0]["data"]["values"][0]["label"] == "Validated, stop: One-tap download"


@pytest.mark.parametrize("method", ["ice", "rice", "wsjf", "cd3", "bogus"])
def test_the_ranking_page_sorts_by_the_chosen_score(member, make, product, method) -> None:
    make("low", impact=1, confidence=1, ease=1)
    make("high", impact=9, confidence=9, ease=9)
    html = member.client.get(
        f"/o/alpha/products/{product.pk}/hypotheses/rank/", {"method": method}
    ).content.decode()
    if method in ("ice", "bogus"):
        assert html.index(">high<") < html.index(">low<")
