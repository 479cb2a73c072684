"""Result snapshots cannot be forged (issue 8, item 10). Headline results are computed by TrueNorth only;
results from an outside tool may be attached as a labelled import (author, source, note), recorded in
history, shown as "Imported from <source> by <author>", never the headline and never the evidence that
"conclude" links. Before, any member could POST `{"results": {"p_value": 0.0001}}`: no author, no
history, and it became the headline result that concluding linked."""

from __future__ import annotations

import json
from typing import Any

from truenorth.history.models import HistoryEntry
from truenorth.hypotheses import services
from truenorth.hypotheses.models import Hypothesis, ResultSnapshot

BASE = "/api/v1/orgs/alpha"
FORGED = {"method": "welch", "results": {"p_value": 0.0001}}
IMPORT = {
    "source": "Optimizely",
    "method": "Stats Engine",
    "note": "Copied from the Optimizely report of 3 March.",
    "results": {"p_value": 0.0001},
}


def _post(client: Any, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def _experiment(h: Hypothesis) -> Any:
    return h.experiments.get()


def _conclude(member: Any, h: Hypothesis, outcome: str) -> Any:
    h.refresh_from_db()
    return _post(
        member.api(),
        f"{BASE}/hypotheses/{h.pk}/conclude",
        {"outcome": outcome, "decision": "persevere", "learning": "x", "version": h.version},
    )


def test_a_hand_made_snapshot_without_a_source_is_refused(member, testing):
    e = _experiment(testing)
    response = _post(member.api(), f"{BASE}/experiments/{e.pk}/snapshots", FORGED)
    assert response.status_code == 422
    assert not ResultSnapshot.objects.exists()


def test_an_import_never_becomes_the_headline_result(member, testing):
    e = _experiment(testing)
    computed = services.store_snapshot(e, method="frequentist", inputs={}, results={"rows": []})
    imported = _post(member.api(), f"{BASE}/experiments/{e.pk}/snapshots", IMPORT)
    assert imported.status_code == 201, imported.content
    results = member.api().get(f"{BASE}/experiments/{e.pk}/results").json()
    assert results["latest"]["id"] == computed.pk and results["latest"]["kind"] == "computed"
    assert [s["kind"] for s in results["snapshots"]] == ["imported", "computed"]
    page = member.client.get(f"/o/alpha/experiments/{e.pk}/results/").content.decode()
    assert 'data-testid="snapshot"' in page and "Computed by TrueNorth" in page
    assert "Imported from Optimizely by member@a.example" in page  # listed, labelled
    assert 'data-testid="imported-snapshot"' not in page


def test_concluding_links_the_computed_result_never_the_import(member, testing):
    e = _experiment(testing)
    computed = services.store_snapshot(e, method="frequentist", inputs={}, results={})
    assert _post(member.api(), f"{BASE}/experiments/{e.pk}/snapshots", IMPORT).status_code == 201
    done = _conclude(member, testing, "validated")
    assert done.status_code == 201, done.content
    assert done.json()["snapshot"] == computed.pk


def test_an_ab_test_with_only_an_import_is_not_concluded_on_it(member, testing):
    e = _experiment(testing)
    assert _post(member.api(), f"{BASE}/experiments/{e.pk}/snapshots", IMPORT).status_code == 201
    refused = _conclude(member, testing, "validated")
    assert refused.status_code == 422, refused.content
    inconclusive = _conclude(member, testing, "inconclusive")
    assert inconclusive.status_code == 201 and inconclusive.json()["snapshot"] is None
    assert member.api().get(f"{BASE}/experiments/{e.pk}/results").json()["latest"] is None


def test_an_import_is_labelled_authored_and_in_the_history(member, testing):
    e = _experiment(testing)
    made = _post(member.api(), f"{BASE}/experiments/{e.pk}/snapshots", IMPORT).json()
    assert made["kind"] == "imported"
    assert made["label"] == "Imported from Optimizely by member@a.example"
    assert made["author"] == "member@a.example" and made["source"] == "Optimizely"
    assert made["note"] == IMPORT["note"]
    entry = HistoryEntry.objects.get(object_type="hypotheses.resultsnapshot", object_id=str(made["id"]))
    assert entry.action == "created" and entry.actor_name == "member@a.example"
    assert entry.changes["source"] == {"old": None, "new": "Optimizely"}
    assert entry.changes["kind"] == {"old": None, "new": "imported"}
    page = member.client.get(f"/o/alpha/experiments/{e.pk}/results/{made['id']}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="imported-snapshot"' in html and "Not computed by TrueNorth" in html
    assert "Imported from Optimizely by member@a.example" in html and "Optimizely report of 3 March" in html


def test_the_results_page_has_no_headline_when_there_are_only_imports(member, testing):
    e = _experiment(testing)
    _post(member.api(), f"{BASE}/experiments/{e.pk}/snapshots", {**IMPORT, "results": {"rows": "junk"}})
    page = member.client.get(f"/o/alpha/experiments/{e.pk}/results/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No results computed yet." in html and "Imported from Optimizely" in html


def test_stakeholders_cannot_attach_an_import(stakeholder, testing):
    e = _experiment(testing)
    assert _post(stakeholder.api(), f"{BASE}/experiments/{e.pk}/snapshots", IMPORT).status_code == 403
    assert not ResultSnapshot.objects.exists()
