"""A goal's target linked to a Value measure everywhere it can be set (services, API, CLI, goal page,
goal-tree exchange), the loop back from the measure (its page lists the goals tracking it, "Create a
goal from this measure"), stale-evidence lint, and check-ins recorded once on the measure."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from truenorth import cli
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.measures import services as ms
from truenorth.measures.models import Observation
from truenorth.strategy import exchange
from truenorth.strategy import services as ss
from truenorth.strategy.models import CheckIn, TargetMeasure, TargetObservation

BASE = "/api/v1/orgs/alpha"
OUTCOME = "More teams plan their work with Atlas every week"


@pytest.fixture
def setup(owner):
    m, u = owner.membership, owner.user
    product = ss.create_product(m, u, name="Atlas")
    measure = ms.create_measure(
        m, u, name="Active planners", kva="current_value", product_id=product.pk, unit="teams", cadence_days=7
    )
    goal = ss.create_goal(
        m, u, product_id=product.pk, title="Grow planning", outcome=OUTCOME, owner_id=u.pk, status="active"
    )
    return m, u, product, measure, goal


def _post(client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def _patch(client, path: str, data: Any) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json")


# --- services -------------------------------------------------------------------------------------


def test_a_target_added_with_a_measure_tracks_it_and_takes_its_name_and_unit(setup):
    m, u, _, measure, goal = setup
    target = ss.add_target(m, u, goal.pk, {"baseline": 10, "target": 40, "measure_id": measure.pk})
    assert (target.measure_id, target.name, target.unit) == (measure.pk, "Active planners", "teams")
    ms.add_observation(m, u, measure.pk, 25)
    assert ss.progress_for_org(m.organisation_id)[goal.pk].value == pytest.approx(0.5)


def test_updating_a_target_links_keeps_and_unlinks_its_measure(setup):
    m, u, _, measure, goal = setup
    target = ss.add_target(m, u, goal.pk, {"name": "Planners", "baseline": 0, "target": 10})
    assert ss.update_target(m, u, target.pk, {"measure_id": measure.pk}).measure_id == measure.pk
    assert ss.update_target(m, u, target.pk, {"target": 20}).measure_id == measure.pk  # left out: kept
    assert ss.update_target(m, u, target.pk, {"measure_id": None}).measure_id is None


def test_a_goal_created_with_a_linked_target_says_so_in_its_history(setup):
    m, u, product, measure, _ = setup
    goal = ss.create_goal(
        m, u, product_id=product.pk, title="Linked", targets=[{"baseline": 0, "target": 5, "measure_id": measure.pk}]
    )
    assert goal.targets.get().measure_id == measure.pk
    from truenorth.history.services import entries_for

    entry = entries_for(m.organisation, goal).first()
    assert entry is not None and "tracks measure “Active planners”" in str(entry.changes)


def test_another_organisations_or_an_unknown_or_archived_measure_is_refused(setup, outsider):
    m, u, _, measure, goal = setup
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    for bad in (theirs.pk, 10**9):
        with pytest.raises(ValidationFailed) as exc:
            ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 1, "measure_id": bad})
        assert exc.value.field == "measure_id"
        assert exc.value.message == "No such measure in this organisation."  # the same: nothing leaks
    ms.archive_measure(m, u, measure.pk)
    with pytest.raises(ValidationFailed, match="archived"):
        ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 1, "measure_id": measure.pk})
    assert not TargetMeasure.objects.filter(goal=goal).exists()


def test_the_measures_offered_are_the_goals_products_and_the_organisation_wide_ones(setup):
    m, u, product, measure, _ = setup
    wide = ms.create_measure(m, u, name="Revenue", kva="current_value")
    other = ss.create_product(m, u, name="Other")
    ms.create_measure(m, u, name="Elsewhere", kva="current_value", product_id=other.pk)
    assert set(ss.trackable_measures(m, product.pk)) == {measure, wide}
    assert set(ss.trackable_measures(m, None)) == {wide}


# --- lint -----------------------------------------------------------------------------------------


def _rules(m, goal) -> list[str]:
    return [f.rule for _, f in ss.lint(m, goal_id=goal.pk)]


def test_stale_evidence_fires_for_a_target_linked_through_the_goal_services(setup):
    m, u, _, measure, goal = setup
    ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 10, "measure_id": measure.pk})
    assert "stale-evidence" in _rules(m, goal)
    ms.add_observation(m, u, measure.pk, 3)
    assert "stale-evidence" not in _rules(m, goal)


def test_stale_evidence_fires_when_the_tracked_measure_is_archived(setup):
    """An archived measure takes no new value, so its fresh-looking evidence will only age."""
    m, u, _, measure, goal = setup
    ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 10, "measure_id": measure.pk})
    ms.add_observation(m, u, measure.pk, 3)
    ms.archive_measure(m, u, measure.pk)
    assert "stale-evidence" in _rules(m, goal)


# --- check-ins ------------------------------------------------------------------------------------


def test_a_check_in_value_on_a_linked_target_is_recorded_on_the_measure_exactly_once(setup):
    m, u, _, measure, goal = setup
    target = ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 10, "measure_id": measure.pk})
    kwargs: dict[str, Any] = {
        "status": "on_track", "confidence": 7, "target_id": target.pk, "value": 4, "idempotency_key": "k1",
    }  # fmt: skip
    first = ss.check_in(m, u, goal.pk, **kwargs)
    again = ss.check_in(m, u, goal.pk, **kwargs)  # a double-submitted form or a retried request
    assert again.pk == first.pk
    assert CheckIn.objects.filter(goal=goal).count() == 1
    assert list(Observation.objects.filter(measure=measure).values_list("value", flat=True)) == [4]
    assert first.measure_observation is not None and first.measure_observation.measure_id == measure.pk
    assert first.observation is None and not TargetObservation.objects.filter(target_measure=target).exists()
    ss.check_in(m, u, goal.pk, **(kwargs | {"idempotency_key": "k2", "value": 6}))
    assert sorted(Observation.objects.filter(measure=measure).values_list("value", flat=True)) == [4, 6]
    assert ss.latest_values([target.pk]) == {target.pk: 6}


def test_the_check_in_api_with_a_repeated_key_records_once(owner, setup):
    m, u, _, measure, goal = setup
    target = ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 10, "measure_id": measure.pk})
    body = {"status": "at_risk", "confidence": 4, "target": target.pk, "value": 2, "idempotency_key": "abc"}
    first = _post(owner.api(), f"{BASE}/goals/{goal.pk}/checkins", body)
    second = _post(owner.api(), f"{BASE}/goals/{goal.pk}/checkins", body)
    assert first.status_code == 201, first.content
    assert second.json()["id"] == first.json()["id"]
    assert first.json()["measure_observation"] == Observation.objects.get(measure=measure).pk


# --- API ------------------------------------------------------------------------------------------


def test_the_api_creates_and_changes_a_target_linked_to_a_measure(owner, setup):
    m, u, _, measure, goal = setup
    ms.add_observation(m, u, measure.pk, 30)
    made = _post(
        owner.api(),
        f"{BASE}/goals/{goal.pk}/targets",
        {"name": "Planners", "baseline": 10, "target": 50, "measure_id": measure.pk, "version": goal.version},
    )
    assert made.status_code == 201, made.content
    assert made.json()["measure"] == measure.pk
    tid = made.json()["id"]
    goal.refresh_from_db()
    detail = owner.api().get(f"{BASE}/goals/{goal.pk}").json()
    assert detail["targets"][0]["current"] == 30 and detail["targets"][0]["progress"] == pytest.approx(0.5)
    unlinked = _patch(owner.api(), f"{BASE}/targets/{tid}", {"measure_id": None, "version": goal.version})
    assert unlinked.status_code == 200, unlinked.content
    assert unlinked.json()["measure"] is None and unlinked.json()["current"] is None


def test_the_api_refuses_a_smuggled_measure_of_another_organisation(owner, outsider, setup):
    m, u, _, _, goal = setup
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Their secret", kva="current_value")
    target = ss.add_target(m, u, goal.pk, {"name": "Planners", "baseline": 0, "target": 1})
    goal.refresh_from_db()
    responses = [
        _post(
            owner.api(),
            f"{BASE}/goals/{goal.pk}/targets",
            {"baseline": 0, "target": 1, "measure_id": theirs.pk, "version": goal.version},
        ),
        _patch(owner.api(), f"{BASE}/targets/{target.pk}", {"measure_id": theirs.pk, "version": goal.version}),
    ]
    for r in responses:
        assert r.status_code == 422, r.content
        assert [e["field"] for e in r.json()["errors"]] == ["measure_id"]
        assert "Their secret" not in r.content.decode()
    target.refresh_from_db()
    assert target.measure_id is None


# --- CLI ------------------------------------------------------------------------------------------


def _cli(capsys, persona, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--org", "alpha", "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_adds_links_and_unlinks_a_target_measure(owner, setup, capsys, monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)
    _, _, _, measure, goal = setup
    code, out, err = _cli(
        capsys, owner, "goals", "target-add", str(goal.pk), "--baseline", "0", "--target", "8",
        "--measure", str(measure.pk),
    )  # fmt: skip
    assert code == 0, err
    target = TargetMeasure.objects.get(goal=goal)
    assert target.measure_id == measure.pk and f"tracking measure #{measure.pk}" in out
    code, out, err = _cli(capsys, owner, "goals", "target-update", str(target.pk), "--no-measure")
    assert code == 0, err
    target.refresh_from_db()
    assert target.measure_id is None
    code, _, err = _cli(capsys, owner, "goals", "target-update", str(target.pk), "--measure", "999999")
    assert code == 2 and err.startswith("error: ") and "No such measure" in err


# --- exchange -------------------------------------------------------------------------------------


def test_a_linked_target_round_trips_through_the_goal_tree_format(setup):
    m, u, product, measure, goal = setup
    wide = ms.create_measure(m, u, name="Revenue", kva="current_value")
    ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 10, "measure_id": measure.pk})
    own = ss.add_target(m, u, goal.pk, {"name": "Own", "baseline": 0, "target": 10})
    ss.record_observation(m, u, own.pk, 2)
    ss.update_target(m, u, own.pk, {"measure_id": wide.pk})  # own values kept, then linked
    doc = exchange.export_tree(m, product.pk)
    targets = doc["goals"][0]["targets"]
    assert [t["measure"] for t in targets] == [
        {"name": "Active planners", "product": "Atlas"},
        {"name": "Revenue", "product": None},
    ]
    for fmt in ("json", "yaml"):
        copy = exchange.import_tree(m, u, exchange.load(exchange.dump(doc, fmt), fmt), name=f"Atlas {fmt}")
        again = exchange.export_tree(m, copy.pk)
        assert again["goals"] == doc["goals"]
        linked = TargetMeasure.objects.filter(goal__product=copy).order_by("position")
        assert [t.measure_id for t in linked] == [measure.pk, wide.pk]


def test_an_unknown_measure_in_a_document_names_its_path_and_creates_nothing(setup):
    m, u, product, measure, goal = setup
    ss.add_target(m, u, goal.pk, {"baseline": 0, "target": 10, "measure_id": measure.pk})
    doc = exchange.export_tree(m, product.pk)
    doc["goals"][0]["targets"][0]["measure"] = {"name": "Nowhere", "product": "Atlas"}
    with pytest.raises(ValidationFailed) as exc:
        exchange.import_tree(m, u, doc, name="Copy")
    assert exc.value.field == "goals[0].targets[0].measure"
    assert "Nowhere" in exc.value.message
    doc["goals"][0]["targets"][0]["measure"] = {"title": "x"}
    with pytest.raises(ValidationFailed) as exc:
        exchange.import_tree(m, u, doc, name="Copy")
    assert (exc.value.field or "").startswith("goals[0].targets[0].measure")
    assert not ss.products_of(m).filter(name="Copy").exists()


# --- web ------------------------------------------------------------------------------------------


def test_the_goal_page_links_a_target_to_a_measure_and_the_measure_page_lists_the_goal(owner, setup):
    m, u, _, measure, goal = setup
    target = ss.add_target(m, u, goal.pk, {"name": "Planners", "baseline": 0, "target": 10})
    goal.refresh_from_db()
    page = owner.client.get(f"/o/alpha/goals/{goal.pk}/").content.decode()
    assert f'<option value="{measure.pk}">Active planners (Atlas)</option>' in page
    data = {
        "name": "Planners", "unit": "", "baseline": "0", "target": "10", "direction": "increase",
        "measure": str(measure.pk), "version": str(goal.version),
    }  # fmt: skip
    response = owner.client.post(f"/o/alpha/goals/{goal.pk}/targets/{target.pk}/edit/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    target.refresh_from_db()
    assert target.measure_id == measure.pk
    measure_page = owner.client.get(f"/o/alpha/measures/{measure.pk}/").content.decode()
    assert f'href="/o/alpha/goals/{goal.pk}/">Grow planning</a>' in measure_page


def test_the_target_edit_form_refuses_another_organisations_measure(owner, outsider, setup):
    m, u, _, _, goal = setup
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    target = ss.add_target(m, u, goal.pk, {"name": "Planners", "baseline": 0, "target": 10})
    goal.refresh_from_db()
    data = {
        "name": "Planners", "baseline": "0", "target": "10", "direction": "increase",
        "measure": str(theirs.pk), "version": str(goal.version),
    }  # fmt: skip
    response = owner.client.post(f"/o/alpha/goals/{goal.pk}/targets/{target.pk}/edit/", data)
    assert response.status_code == 200
    assert "Secret" not in response.content.decode()
    target.refresh_from_db()
    assert target.measure_id is None


def test_create_a_goal_from_a_measure_prefills_a_linked_target(owner, setup):
    m, u, product, measure, _ = setup
    ms.update_measure(m, u, measure.pk, baseline=12, target=30, version=measure.version)
    page = owner.client.get(f"/o/alpha/measures/{measure.pk}/").content.decode()
    link = f"/o/alpha/products/{product.pk}/goals/new/?measure={measure.pk}"
    assert f'href="{link}"' in page and "Create a goal from this measure" in page
    form = owner.client.get(link).content.decode()
    assert re.search(rf'<option value="{measure.pk}" selected>Active planners', form)
    assert 'name="target_baseline" value="12.0"' in form or 'name="target_baseline" value="12"' in form
    response = owner.client.post(
        link,
        {
            "title": "Double planners", "status": "proposed", "owner": str(u.pk), "target_name": "Active planners",
            "target_baseline": "12", "target_target": "30", "target_direction": "increase",
            "target_measure": str(measure.pk),
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    created = TargetMeasure.objects.get(goal__title="Double planners")
    assert created.measure_id == measure.pk


def test_the_measure_page_lists_tracking_goals_in_a_fixed_number_of_queries(owner, setup):
    m, u, product, measure, _ = setup
    path = f"/o/alpha/measures/{measure.pk}/"

    def count() -> int:
        owner.client.get(path)
        with CaptureQueriesContext(connection) as ctx:
            response = owner.client.get(path)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    ss.create_goal(m, u, product_id=product.pk, title="G0", targets=[{"baseline": 0, "target": 1, "measure_id": measure.pk}])
    few = count()
    for i in range(1, 6):
        ss.create_goal(
            m, u, product_id=product.pk, title=f"G{i}", owner_id=u.pk,
            targets=[{"baseline": 0, "target": 1, "measure_id": measure.pk}],
        )  # fmt: skip
    assert count() == few
    assert "G5" in owner.client.get(path).content.decode()


def test_an_outsider_cannot_edit_a_target(outsider, setup):
    m, u, _, _, goal = setup
    target = ss.add_target(m, u, goal.pk, {"name": "Planners", "baseline": 0, "target": 10})
    with pytest.raises(NotFound):
        ss.update_target(outsider.membership, outsider.user, target.pk, {"measure_id": None})
    response = outsider.client.post(f"/o/alpha/goals/{goal.pk}/targets/{target.pk}/edit/", {})
    assert response.status_code == 404
