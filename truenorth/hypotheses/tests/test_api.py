"""The Validation API: create, move, rank, conclude, experiments, snapshots, the learning log; 422 naming
fields, 409 on a stale version, 403 for stakeholders, 404 for outsiders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from truenorth.hypotheses import services
from truenorth.hypotheses.models import Experiment
from truenorth.hypotheses.tests.conftest import AB

BASE = "/api/v1/orgs/alpha"


def _post(client, path: str, data: dict[str, Any] | None = None):
    return client.post(path, json.dumps(data or {}), content_type="application/json")


def _patch(client, path: str, data: dict[str, Any]):
    return client.patch(path, json.dumps(data), content_type="application/json")


def test_a_member_creates_moves_and_reads_a_hypothesis(member, product, goal) -> None:
    created = _post(
        member.api(),
        f"{BASE}/products/{product.pk}/hypotheses",
        {
            "title": "One-tap",
            "goal": goal.pk,
            "metric_name": "Rate",
            "baseline": 1,
            "target": 2,
            "impact": 5,
            "confidence": 5,
            "ease": 4,
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "draft" and body["measurable"] and body["scores"]["ice"] == 100
    moved = _post(member.api(), f"{BASE}/hypotheses/{body['id']}/move", {"state": "ready", "version": 1})
    assert moved.status_code == 200 and moved.json()["state"] == "ready"
    listed = member.api_read().get(f"{BASE}/products/{product.pk}/hypotheses?state=ready")
    assert [h["id"] for h in listed.json()] == [body["id"]]
    ranked = member.api_read().get(f"{BASE}/products/{product.pk}/hypotheses/rank?method=ice")
    assert ranked.json()[0]["score"] == 100


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"title": ""}, "title"),
        ({"title": "x", "impact": 11}, "impact"),
        ({"title": "x", "reach": -1}, "reach"),
        ({"title": "x", "surprise": 1}, "surprise"),
        ({"title": "x", "goal": 999999}, "goal"),
        ({"title": "x", "baseline": "NaN"}, "baseline"),
    ],
)
def test_bad_input_is_422_naming_the_field(member, product, payload, field) -> None:
    response = _post(member.api(), f"{BASE}/products/{product.pk}/hypotheses", payload)
    assert response.status_code == 422, response.content
    assert field in [e["field"] for e in response.json()["errors"]]


def test_a_refused_move_is_422_on_state(member, make) -> None:
    h = make()
    response = _post(member.api(), f"{BASE}/hypotheses/{h.pk}/move", {"state": "ready", "version": h.version})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "state"
    assert "How will we measure its success" in response.json()["detail"]


def test_a_stale_version_is_409(member, make) -> None:
    h = make()
    assert (
        _patch(member.api(), f"{BASE}/hypotheses/{h.pk}", {"who": "hikers", "version": 1}).status_code == 200
    )
    stale = _patch(member.api(), f"{BASE}/hypotheses/{h.pk}", {"who": "groups", "version": 1})
    assert stale.status_code == 409
    assert stale.json()["errors"][0]["field"] == "version"


def test_stakeholders_read_but_cannot_write(stakeholder, make, product) -> None:
    h = make()
    assert stakeholder.api().get(f"{BASE}/hypotheses/{h.pk}").status_code == 200
    assert (
        _post(stakeholder.api(), f"{BASE}/products/{product.pk}/hypotheses", {"title": "x"}).status_code
        == 403
    )
    moved = _post(stakeholder.api(), f"{BASE}/hypotheses/{h.pk}/move", {"state": "ready", "version": h.version})
    assert moved.status_code == 403


def test_outsiders_get_404(outsider, make) -> None:
    h = make()
    assert outsider.api().get(f"{BASE}/hypotheses/{h.pk}").status_code == 404
    assert outsider.api().get(f"/api/v1/orgs/bravo-secret/hypotheses/{h.pk}").status_code == 404


def test_experiments_snapshots_and_conclusion(member, make) -> None:
    h = make(metric_name="Rate", baseline=1, target=2)
    services.move_hypothesis(member.membership, member.user, h.pk, "ready")
    made = _post(member.api(), f"{BASE}/hypotheses/{h.pk}/experiments", {**AB, "alpha": 0.05, "power": 0.8})
    assert made.status_code == 201, made.content
    e = made.json()
    assert [v["name"] for v in e["variations"]] == ["control", "one_tap"]
    bad = _patch(
        member.api(),
        f"{BASE}/experiments/{e['id']}",
        {"variations": [{"name": "a", "allocation": 1}], "version": 1},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "variations"
    assert (
        _patch(member.api(), f"{BASE}/experiments/{e['id']}", {"power": 0.9, "version": 1}).status_code == 200
    )
    assert (
        _patch(member.api(), f"{BASE}/experiments/{e['id']}", {"power": 0.7, "version": 1}).status_code == 409
    )
    imported = _post(
        member.api(),
        f"{BASE}/experiments/{e['id']}/snapshots",
        {"source": "Optimizely", "method": "welch", "results": {"p": 0.01}},
    )
    assert imported.status_code == 201
    got = member.api().get(f"{BASE}/snapshots/{imported.json()['id']}").json()
    assert got["results"] == {"p": 0.01} and got["kind"] == "imported"
    snap = services.store_snapshot(Experiment.objects.get(pk=e["id"]), method="welch", inputs={}, results={})
    _post(member.api(), f"{BASE}/hypotheses/{h.pk}/move", {"state": "testing", "version": 2})
    missing = _post(
        member.api(),
        f"{BASE}/hypotheses/{h.pk}/conclude",
        {"outcome": "validated", "decision": "stop", "version": 3},
    )
    assert missing.status_code == 422 and "learning" in [x["field"] for x in missing.json()["errors"]]
    done = _post(
        member.api(),
        f"{BASE}/hypotheses/{h.pk}/conclude",
        {"outcome": "validated", "decision": "persevere", "learning": "Hikers love one tap.", "version": 3},
    )
    assert done.status_code == 201, done.content
    assert done.json()["snapshot"] == snap.pk  # TrueNorth's computed result, not the import
    assert member.api().get(f"{BASE}/decisions/{done.json()['id']}").status_code == 200
    found = member.api_read().get(f"{BASE}/learnings?q=one+tap")
    assert [d["id"] for d in found.json()] == [done.json()["id"]]
    assert member.api_read().get(f"{BASE}/learnings?q=zebra").json() == []
