"""API behaviour of the Vision pillar: products, goals, targets, alignment, check-ins, lint,
co-authoring, work items, export and import."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from truenorth.history.models import HistoryEntry
from truenorth.strategy import services
from truenorth.strategy.models import ChangeProposal, CheckIn, Goal, Product, WorkItem

if TYPE_CHECKING:
    from conftest import Persona

BASE = "/api/v1/orgs/alpha"
OUTCOME = "Customers finish their first order without calling support."


def _post(client: Client, path: str, data: Any = None) -> Any:
    return client.post(path, json.dumps(data if data is not None else {}), content_type="application/json")


def _patch(client: Client, path: str, data: Any) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json")


def _fields(response: Any) -> set[str]:
    """The field names of a JSON error response, after checking its shape."""
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    return {e["field"] for e in body["errors"]}


def _product(owner: Persona, name: str = "Webshop") -> Product:
    assert owner.membership is not None
    return services.create_product(owner.membership, owner.user, name=name, owner_id=owner.user.pk)


def _goal(owner: Persona, product: Product | None, title: str = "Grow", **kw: Any) -> Goal:
    assert owner.membership is not None
    kw.setdefault("owner_id", owner.user.pk)
    return services.create_goal(
        owner.membership, owner.user, title=title, product_id=product.pk if product else None, **kw
    )


TARGET = {"name": "Conversion", "baseline": 2.0, "target": 4.0, "unit": "%"}


# --- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_builds_and_lists_the_vision_paths(owner):
    response = owner.api().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    for path in (
        "/api/v1/orgs/{slug}/products",
        "/api/v1/orgs/{slug}/products/{product_id}",
        "/api/v1/orgs/{slug}/products/{product_id}/tree",
        "/api/v1/orgs/{slug}/products/{product_id}/export",
        "/api/v1/orgs/{slug}/products/import",
        "/api/v1/orgs/{slug}/goals",
        "/api/v1/orgs/{slug}/goals/{goal_id}",
        "/api/v1/orgs/{slug}/goals/{goal_id}/move",
        "/api/v1/orgs/{slug}/goals/{goal_id}/proposals",
        "/api/v1/orgs/{slug}/proposals/{proposal_id}/accept",
        "/api/v1/orgs/{slug}/work-items",
        "/api/v1/orgs/{slug}/alignment",
        "/api/v1/orgs/{slug}/lint",
        "/api/v1/orgs/{slug}/checkins/overdue",
        "/api/v1/orgs/{slug}/notifications",
    ):
        assert path in paths, path


# --- teams and products ---------------------------------------------------------------------------


def test_teams_list_and_create(member, stakeholder):
    created = _post(member.api(), f"{BASE}/teams", {"name": "Checkout"})
    assert created.status_code == 201, created.content
    assert created.json()["name"] == "Checkout"
    assert [t["name"] for t in stakeholder.api().get(f"{BASE}/teams").json()] == ["Checkout"]
    assert _post(member.api(), f"{BASE}/teams", {"name": "checkout"}).status_code == 409
    assert _post(stakeholder.api(), f"{BASE}/teams", {"name": "Other"}).status_code == 403


def test_create_read_patch_and_stale_patch_a_product(owner, member):
    team = _post(owner.api(), f"{BASE}/teams", {"name": "Checkout"}).json()
    created = _post(
        member.api(),
        f"{BASE}/products",
        {
            "name": "Webshop",
            "vision": "Shopping is easy",
            "owner_email": owner.user.email,
            "teams": [team["id"]],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"]["email"] == owner.user.email
    assert body["teams"] == [team]
    assert body["version"] == 1
    assert (body["goals"], body["work_items"], body["orphan_work_items"]) == (0, 0, 0)
    pid = body["id"]

    _goal(owner, Product.objects.get(pk=pid))
    got = member.api().get(f"{BASE}/products/{pid}").json()
    assert got["goals"] == 1
    assert got["findings"] > 0  # the goal has no target measure

    patched = _patch(member.api(), f"{BASE}/products/{pid}", {"vision": "Buying is a joy", "version": 1})
    assert patched.status_code == 200, patched.content
    assert patched.json()["vision"] == "Buying is a joy"
    assert patched.json()["version"] == 2

    stale = _patch(owner.api(), f"{BASE}/products/{pid}", {"name": "Shop", "version": 1})
    assert stale.status_code == 409
    assert _fields(stale) == {"version"}
    assert Product.objects.get(pk=pid).name == "Webshop"

    cleared = _patch(member.api(), f"{BASE}/products/{pid}", {"owner": None, "version": 2})
    assert cleared.json()["owner"] is None

    listed = member.api().get(f"{BASE}/products").json()
    assert [(p["name"], p["goals"]) for p in listed] == [("Webshop", 1)]


def test_product_input_errors_name_the_field(member):
    missing = _post(member.api(), f"{BASE}/products", {"vision": "x"})
    assert missing.status_code == 422
    assert _fields(missing) == {"name"}
    unknown = _post(member.api(), f"{BASE}/products", {"name": "X", "colour": "red"})
    assert unknown.status_code == 422
    assert _fields(unknown) == {"colour"}
    blank = _post(member.api(), f"{BASE}/products", {"name": "   "})
    assert blank.status_code == 422
    assert _fields(blank) == {"name"}
    no_team = _post(member.api(), f"{BASE}/products", {"name": "X", "teams": [999999]})
    assert no_team.status_code == 422
    assert _fields(no_team) == {"teams"}
    _post(member.api(), f"{BASE}/products", {"name": "Webshop"})
    duplicate = _post(member.api(), f"{BASE}/products", {"name": "webshop"})
    assert duplicate.status_code == 409
    assert _fields(duplicate) == {"name"}


def test_archive_and_restore_a_product(owner, member):
    product = _product(owner)
    archived = _post(member.api(), f"{BASE}/products/{product.pk}/archive?version=1")
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    assert member.api().get(f"{BASE}/products").json() == []
    assert len(member.api().get(f"{BASE}/products?include_archived=true").json()) == 1
    refused = _post(member.api(), f"{BASE}/goals", {"title": "G", "product": product.pk})
    assert refused.status_code == 422
    assert _fields(refused) == {"product"}
    restored = _post(member.api(), f"{BASE}/products/{product.pk}/restore?version=2")
    assert restored.json()["archived_at"] is None


# --- goals ----------------------------------------------------------------------------------------


def test_create_a_goal_with_targets_and_read_it(owner, member):
    product = _product(owner)
    created = _post(
        member.api(),
        f"{BASE}/goals",
        {
            "title": "Checkout without friction",
            "product": product.pk,
            "outcome": OUTCOME,
            "owner": member.user.pk,
            "target_date": "2099-06-30",
            "status": "active",
            "targets": [TARGET, {"name": "Calls", "baseline": 100, "target": 50, "direction": "decrease"}],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["level"] == "strategic"
    assert body["target_date"] == "2099-06-30"
    assert body["owner"]["id"] == member.user.pk
    assert [(t["name"], t["direction"], t["current"]) for t in body["targets"]] == [
        ("Conversion", "increase", None),
        ("Calls", "decrease", None),
    ]
    assert body["progress"] is None
    assert body["findings"] == []

    tid = body["targets"][0]["id"]
    obs = _post(member.api(), f"{BASE}/targets/{tid}/observations", {"value": 3.0, "note": "week 1"})
    assert obs.status_code == 201, obs.content
    got = member.api().get(f"{BASE}/goals/{body['id']}").json()
    assert got["targets"][0]["current"] == 3.0
    assert got["targets"][0]["progress"] == pytest.approx(0.5)
    assert got["progress"] == pytest.approx(0.5)
    assert got["measured"] == pytest.approx(0.5)
    listed = member.api().get(f"{BASE}/targets/{tid}/observations").json()
    assert [(o["value"], o["note"], o["recorded_by"]) for o in listed] == [(3.0, "week 1", member.user.email)]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"outcome": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "G", "target_date": "2025-02-30"}, "target_date"),
        ({"title": "G", "target_date": "soon"}, "target_date"),
        ({"title": "G", "level": "galactic"}, "level"),
        ({"title": "G", "status": "done"}, "status"),
        ({"title": "G", "weight": 0}, "weight"),
        ({"title": "G", "checkin_cadence_days": 0}, "checkin_cadence_days"),
        ({"title": "G", "priority": "high"}, "priority"),
        ({"title": "a\u0000b"}, "title"),
        ({"title": "G", "targets": [{"name": "\u0000", "baseline": 1, "target": 2}]}, "targets.0.name"),
        ({"title": "G", "owner": 0}, "owner"),
        ({"title": "G", "owner": 2**63}, "owner"),
        ({"title": "G", "product": 99999999}, "product"),
        ({"title": "G", "targets": [{"name": "T", "baseline": 5, "target": 3}]}, "targets.0.target"),
        ({"title": "G", "targets": [{"name": "T", "baseline": 5}]}, "targets.0.target"),
        (
            {"title": "G", "targets": [{"name": "T", "baseline": 5, "target": 6, "direction": "up"}]},
            "targets.0.direction",
        ),
    ],
)
def test_goal_input_errors_are_422_naming_the_field(member, payload, field):
    response = _post(member.api(), f"{BASE}/goals", payload)
    assert response.status_code == 422, response.content
    assert field in _fields(response)
    assert not Goal.objects.exists()


def test_goal_owner_must_be_a_member_not_a_stakeholder(member, stakeholder):
    response = _post(member.api(), f"{BASE}/goals", {"title": "G", "owner": stakeholder.user.pk})
    assert response.status_code == 422
    assert _fields(response) == {"owner"}


def test_patch_a_goal_with_version_and_refuse_a_stale_one(owner, member):
    goal = _goal(owner, _product(owner))
    url = f"{BASE}/goals/{goal.pk}"
    patched = _patch(
        member.api(),
        url,
        {"title": "Grow faster", "outcome": OUTCOME, "target_date": "2099-01-31", "version": 1},
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["title"], patched.json()["version"]) == ("Grow faster", 2)
    stale = _patch(owner.api(), url, {"title": "Shrink", "version": 1})
    assert stale.status_code == 409
    assert _fields(stale) == {"version"}
    assert Goal.objects.get(pk=goal.pk).title == "Grow faster"
    cleared = _patch(member.api(), url, {"target_date": None, "owner": None, "version": 2})
    assert (cleared.json()["target_date"], cleared.json()["owner"]) == (None, None)
    assert _fields(_patch(member.api(), url, {"title": None, "version": 3})) == {"title"}
    assert _fields(_patch(member.api(), url, {"status": "finished", "version": 3})) == {"status"}
    assert _fields(_patch(member.api(), url, {"target_date": "31/01/2099", "version": 3})) == {"target_date"}
    assert _fields(_patch(member.api(), url, {"parent": 1, "version": 3})) == {"parent"}
    assert HistoryEntry.objects.filter(object_type="strategy.goal", object_id=str(goal.pk)).count() == 3


def test_move_a_goal_and_refuse_a_cycle(owner, member):
    product = _product(owner)
    root = _goal(owner, product, "Root")
    a = _goal(owner, product, "A", parent_id=root.pk)
    b = _goal(owner, product, "B", parent_id=root.pk)
    moved = _post(member.api(), f"{BASE}/goals/{b.pk}/move", {"parent": root.pk, "position": 0, "version": 1})
    assert moved.status_code == 200, moved.content
    assert moved.json()["position"] == 0
    tree = member.api().get(f"{BASE}/products/{product.pk}/tree").json()
    assert [c["title"] for c in tree["goals"][0]["children"]] == ["B", "A"]

    under_a = _goal(owner, product, "Under A", parent_id=a.pk, level="tactical")
    cycle = _post(member.api(), f"{BASE}/goals/{a.pk}/move", {"parent": under_a.pk, "version": 1})
    assert cycle.status_code == 422
    assert _fields(cycle) == {"parent"}
    itself = _post(member.api(), f"{BASE}/goals/{a.pk}/move", {"parent": a.pk, "version": 1})
    assert itself.status_code == 422
    missing_parent = _post(member.api(), f"{BASE}/goals/{a.pk}/move", {"version": 1})
    assert missing_parent.status_code == 422
    assert _fields(missing_parent) == {"parent"}
    stale = _post(member.api(), f"{BASE}/goals/{b.pk}/move", {"parent": None, "version": 1})
    assert stale.status_code == 409


def test_align_links_and_refuse_a_cycle(owner, member):
    web, app = _product(owner, "Web"), _product(owner, "App")
    org_goal = _goal(owner, None, "Be the best shop")
    web_goal = _goal(owner, web, "Web grows")
    app_goal = _goal(owner, app, "App grows")
    aligned = _post(
        member.api(), f"{BASE}/goals/{web_goal.pk}/links", {"target": org_goal.pk, "kind": "aligns"}
    )
    assert aligned.status_code == 201, aligned.content
    assert aligned.json()["target"]["id"] == org_goal.pk
    _post(member.api(), f"{BASE}/goals/{org_goal.pk}/links", {"target": app_goal.pk, "kind": "aligns"})
    cycle = _post(
        member.api(), f"{BASE}/goals/{app_goal.pk}/links", {"target": web_goal.pk, "kind": "aligns"}
    )
    assert cycle.status_code == 422
    assert _fields(cycle) == {"target"}
    bad_kind = _post(
        member.api(), f"{BASE}/goals/{app_goal.pk}/links", {"target": web_goal.pk, "kind": "loves"}
    )
    assert _fields(bad_kind) == {"kind"}
    related = _post(
        member.api(), f"{BASE}/goals/{app_goal.pk}/links", {"target": web_goal.pk, "kind": "relates"}
    )
    assert related.status_code == 201
    duplicate = _post(
        member.api(), f"{BASE}/goals/{app_goal.pk}/links", {"target": web_goal.pk, "kind": "relates"}
    )
    assert duplicate.status_code == 409

    detail = member.api().get(f"{BASE}/goals/{web_goal.pk}").json()
    assert [(x["kind"], x["target"]["id"]) for x in detail["links_out"]] == [("aligns", org_goal.pk)]
    assert [(x["kind"], x["source"]["id"]) for x in detail["links_in"]] == [("relates", app_goal.pk)]

    view = member.api().get(f"{BASE}/alignment").json()
    assert [(r["goal"]["id"], [g["id"] for g in r["served_by"]]) for r in view["org_goals"]] == [
        (org_goal.pk, [web_goal.pk])
    ]
    assert [(g["id"], g["product_name"]) for g in view["unaligned"]] == [(app_goal.pk, "App")]

    assert member.api().delete(f"{BASE}/links/{aligned.json()['id']}").status_code == 204
    assert member.api().delete(f"{BASE}/links/{aligned.json()['id']}").status_code == 404


def test_archive_and_restore_a_goal(owner, member):
    product = _product(owner)
    root = _goal(owner, product, "Root")
    child = _goal(owner, product, "Child", parent_id=root.pk)
    refused = _post(member.api(), f"{BASE}/goals/{root.pk}/archive?version=1")
    assert refused.status_code == 422
    archived = _post(member.api(), f"{BASE}/goals/{child.pk}/archive?version=1")
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    assert [g["id"] for g in member.api().get(f"{BASE}/goals?product={product.pk}").json()] == [root.pk]
    everything = member.api().get(f"{BASE}/goals?product={product.pk}&include_archived=true").json()
    assert {g["id"] for g in everything} == {root.pk, child.pk}
    assert _post(member.api(), f"{BASE}/goals/{child.pk}/restore?version=1").status_code == 409
    assert _post(member.api(), f"{BASE}/goals/{child.pk}/restore?version=2").status_code == 200


def test_goal_list_filters(owner, member):
    product = _product(owner)
    org_goal = _goal(owner, None, "Org goal", status="active")
    root = _goal(owner, product, "Root", owner_id=member.user.pk)
    child = _goal(owner, product, "Child", parent_id=root.pk)
    api = member.api()

    def ids(query: str) -> list[int]:
        response = api.get(f"{BASE}/goals{query}")
        assert response.status_code == 200, response.content
        return sorted(g["id"] for g in response.json())

    assert ids("") == sorted([org_goal.pk, root.pk, child.pk])
    assert ids(f"?product={product.pk}") == sorted([root.pk, child.pk])
    assert ids("?product=org") == [org_goal.pk]
    assert ids("?level=intermediate") == [child.pk]
    assert ids("?status=active") == [org_goal.pk]
    assert ids(f"?owner={member.user.pk}") == [root.pk]
    assert api.get(f"{BASE}/goals?product=web").status_code == 422
    assert _fields(api.get(f"{BASE}/goals?level=cosmic")) == {"level"}


def test_tree_is_nested_with_progress(owner, member):
    product = _product(owner)
    root = _goal(owner, product, "Root")
    child = _goal(owner, product, "Child", parent_id=root.pk, targets=[TARGET])
    target = child.targets.get()
    services.record_observation(owner.membership, owner.user, target.pk, 3.0)
    tree = member.api().get(f"{BASE}/products/{product.pk}/tree").json()
    assert tree["product"] == {"id": product.pk, "name": "Webshop"}
    [top] = tree["goals"]
    assert top["id"] == root.pk
    assert top["progress"] == pytest.approx(0.5)  # rolled up from its child
    [sub] = top["children"]
    assert sub["targets"][0]["current"] == 3.0
    assert sub["children"] == []
    org_tree = member.api().get(f"{BASE}/tree").json()
    assert org_tree == {"product": None, "goals": []}


# --- targets --------------------------------------------------------------------------------------


def test_add_patch_and_remove_targets(owner, member):
    goal = _goal(owner, _product(owner))
    added = _post(member.api(), f"{BASE}/goals/{goal.pk}/targets", {**TARGET, "version": 1})
    assert added.status_code == 201, added.content
    tid = added.json()["id"]
    below = _post(
        member.api(), f"{BASE}/goals/{goal.pk}/targets", {"name": "X", "baseline": 5, "target": 1, "version": 2}
    )
    assert below.status_code == 422
    assert _fields(below) == {"target"}
    patched = _patch(member.api(), f"{BASE}/targets/{tid}", {"target": 8.0, "version": 2})
    assert patched.status_code == 200, patched.content
    assert patched.json()["target"] == 8.0
    wrong = _patch(member.api(), f"{BASE}/targets/{tid}", {"target": 1.0, "version": 3})
    assert wrong.status_code == 422
    assert _fields(wrong) == {"target"}
    nan = member.api().patch(f"{BASE}/targets/{tid}", '{"target": NaN, "version": 3}', content_type="application/json")
    assert nan.status_code == 422
    assert member.api().delete(f"{BASE}/targets/{tid}?version=1").status_code == 409
    assert member.api().delete(f"{BASE}/targets/{tid}?version=3").status_code == 204
    assert member.api().delete(f"{BASE}/targets/{tid}?version=4").status_code == 404
    future = (timezone.now() + dt.timedelta(days=2)).isoformat()
    goal2 = _goal(owner, None, "G2", targets=[TARGET])
    t2 = goal2.targets.get().pk
    response = _post(member.api(), f"{BASE}/targets/{t2}/observations", {"value": 1, "observed_at": future})
    assert response.status_code == 422
    assert _fields(response) == {"observed_at"}
    assert _fields(_post(member.api(), f"{BASE}/targets/{t2}/observations", {"value": "lots"})) == {"value"}
    naive = _post(
        member.api(), f"{BASE}/targets/{t2}/observations", {"value": 2, "observed_at": "2025-01-01T09:30:00"}
    )
    assert naive.status_code == 201, naive.content
    assert naive.json()["observed_at"].startswith("2025-01-01T09:30:00")
    for when in ("0001-01-01T00:00:00+14:00", "2025-13-01T00:00:00Z"):
        response = _post(member.api(), f"{BASE}/targets/{t2}/observations", {"value": 2, "observed_at": when})
        assert (response.status_code, _fields(response)) == (422, {"observed_at"})


# --- check-ins ------------------------------------------------------------------------------------


def test_check_ins_and_overdue(owner, member, admin):
    product = _product(owner)
    goal = _goal(owner, product, "Active", owner_id=member.user.pk, status="active", targets=[TARGET])
    Goal.objects.filter(pk=goal.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    overdue = member.api().get(f"{BASE}/checkins/overdue?product={product.pk}").json()
    assert [(o["goal"]["id"], o["owner"]["email"]) for o in overdue] == [(goal.pk, member.user.email)]
    assert overdue[0]["days_overdue"] >= 20
    assert member.api().get(f"{BASE}/checkins/overdue?owner={owner.user.pk}").json() == []

    tid = goal.targets.get().pk
    posted = _post(
        member.api(),
        f"{BASE}/goals/{goal.pk}/checkins",
        {"status": "at_risk", "confidence": 6, "narrative": "Slow week", "target": tid, "value": 2.5},
    )
    assert posted.status_code == 201, posted.content
    assert posted.json()["observation"]["value"] == 2.5
    assert member.api().get(f"{BASE}/checkins/overdue").json() == []
    listed = admin.api().get(f"{BASE}/goals/{goal.pk}/checkins").json()
    assert [(c["status"], c["confidence"]) for c in listed] == [("at_risk", 6)]

    unknown = _post(
        member.api(),
        f"{BASE}/goals/{goal.pk}/checkins",
        {"status": "on_track", "confidence": 5, "target": 99999999, "value": 1},
    )
    assert unknown.status_code == 404  # the service treats an unknown target measure as not found
    bad = _post(member.api(), f"{BASE}/goals/{goal.pk}/checkins", {"status": "fine", "confidence": 11})
    assert bad.status_code == 422
    assert _fields(bad) == {"status", "confidence"}
    not_owner = _post(
        owner.api(), f"{BASE}/goals/{goal.pk}/checkins", {"status": "on_track", "confidence": 5}
    )
    assert not_owner.status_code == 201  # the org owner is an admin
    proposed = _goal(owner, product, "Proposed", owner_id=member.user.pk)
    refused = _post(
        member.api(), f"{BASE}/goals/{proposed.pk}/checkins", {"status": "on_track", "confidence": 5}
    )
    assert refused.status_code == 422
    assert _fields(refused) == {"status"}


# --- lint -----------------------------------------------------------------------------------------


def test_lint_per_goal_product_and_org(owner, member):
    product = _product(owner)
    good = _goal(
        owner,
        product,
        "Good",
        outcome=OUTCOME,
        target_date=dt.date(2099, 1, 1),
        targets=[TARGET],
    )
    bad = _goal(owner, product, "Bad", owner_id=None)
    org_bad = _goal(owner, None, "Org bad")
    assert member.api().get(f"{BASE}/goals/{good.pk}/lint").json() == []
    findings = member.api().get(f"{BASE}/goals/{bad.pk}/lint").json()
    rules = {f["rule"] for f in findings}
    assert {"no-owner", "no-measure", "no-date", "vague-outcome"} <= rules
    assert all(f["goal"] == bad.pk and f["product"] == product.pk and f["severity"] for f in findings)
    per_product = member.api().get(f"{BASE}/products/{product.pk}/lint").json()
    assert {f["goal"] for f in per_product} == {bad.pk}
    whole = member.api().get(f"{BASE}/lint").json()
    assert {f["goal"] for f in whole} == {bad.pk, org_bad.pk}
    org_only = member.api().get(f"{BASE}/lint?org_level=true").json()
    assert {f["goal"] for f in org_only} == {org_bad.pk}


# --- roles and tokens -----------------------------------------------------------------------------


def test_stakeholder_co_authors_but_cannot_edit(owner, stakeholder):
    product = _product(owner)
    goal = _goal(owner, product, status="active")
    api = stakeholder.api()
    assert _post(api, f"{BASE}/goals/{goal.pk}/comments", {"body": "Why now?"}).status_code == 201
    proposal = _post(api, f"{BASE}/goals/{goal.pk}/proposals", {"changes": {"title": "Grow wisely"}})
    assert proposal.status_code == 201, proposal.content
    assert _post(api, f"{BASE}/goals/{goal.pk}/endorsements", {"note": "Yes"}).status_code == 201
    concern = _post(api, f"{BASE}/goals/{goal.pk}/concerns", {"note": "Too vague"})
    assert concern.status_code == 201
    assert (
        _post(api, f"{BASE}/concerns/{concern.json()['id']}/resolve", {"resolution": "Fine"}).status_code
        == 200
    )
    assert _post(api, f"{BASE}/proposals/{proposal.json()['id']}/withdraw").status_code == 200

    forbidden = [
        _post(api, f"{BASE}/products", {"name": "Mine"}),
        _patch(api, f"{BASE}/products/{product.pk}", {"name": "Mine", "version": 1}),
        _post(api, f"{BASE}/goals", {"title": "Mine", "product": product.pk}),
        _patch(api, f"{BASE}/goals/{goal.pk}", {"title": "Mine", "version": 1}),
        _post(api, f"{BASE}/goals/{goal.pk}/move", {"parent": None, "version": 1}),
        _post(api, f"{BASE}/goals/{goal.pk}/checkins", {"status": "on_track", "confidence": 5}),
        _post(api, f"{BASE}/goals/{goal.pk}/targets", {**TARGET, "version": 1}),
        _post(api, f"{BASE}/work-items", {"product": product.pk, "title": "W"}),
        _post(api, f"{BASE}/products/import", {"format": "truenorth.goal-tree"}),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden)
    assert Goal.objects.get(pk=goal.pk).title == "Grow"
    assert stakeholder.api().get(f"{BASE}/goals/{goal.pk}").status_code == 200


def test_read_only_token_cannot_write(owner, member):
    goal = _goal(owner, _product(owner))
    api = member.api_read()
    for response in (
        _post(api, f"{BASE}/products", {"name": "X"}),
        _patch(api, f"{BASE}/goals/{goal.pk}", {"title": "X"}),
        _post(api, f"{BASE}/goals/{goal.pk}/comments", {"body": "X"}),
        api.delete(f"{BASE}/goals/{goal.pk}/endorsements"),
    ):
        assert response.status_code == 403
        assert _fields(response) == set()
    assert api.get(f"{BASE}/goals/{goal.pk}").status_code == 200
    assert api.get(f"{BASE}/goals").status_code == 200


def test_outsider_gets_404_on_everything_of_org_a(owner, member, outsider):
    product = _product(owner)
    goal = _goal(owner, product, targets=[TARGET])
    other = _goal(owner, None, "Org goal")
    tid = goal.targets.get().pk
    assert member.membership is not None
    proposal = services.propose_change(member.membership, member.user, goal.pk, {"title": "New"})
    concern = services.raise_concern(member.membership, member.user, goal.pk, "Hmm")
    link = services.link_goals(member.membership, member.user, goal.pk, other.pk, "aligns")
    item = services.create_work_item(member.membership, member.user, product.pk, title="W")
    api = outsider.api()
    reads = [
        f"{BASE}/teams",
        f"{BASE}/products",
        f"{BASE}/products/{product.pk}",
        f"{BASE}/products/{product.pk}/tree",
        f"{BASE}/products/{product.pk}/export",
        f"{BASE}/products/{product.pk}/export?format=markdown",
        f"{BASE}/products/{product.pk}/orphans",
        f"{BASE}/goals",
        f"{BASE}/goals/{goal.pk}",
        f"{BASE}/goals/{goal.pk}/comments",
        f"{BASE}/targets/{tid}/observations",
        f"{BASE}/alignment",
        f"{BASE}/lint",
        f"{BASE}/work-items",
        f"{BASE}/notifications",
    ]
    for url in reads:
        response = api.get(url)
        assert response.status_code == 404, url
        assert "Webshop" not in response.content.decode()
    # Org A's objects under org B's slug do not exist either.
    for url in (
        f"/api/v1/orgs/bravo-secret/goals/{goal.pk}",
        f"/api/v1/orgs/bravo-secret/products/{product.pk}",
    ):
        assert api.get(url).status_code == 404, url
    writes = [
        _patch(api, f"{BASE}/goals/{goal.pk}", {"title": "Pwned", "version": 1}),
        _patch(api, f"/api/v1/orgs/bravo-secret/goals/{goal.pk}", {"title": "Pwned", "version": 1}),
        _post(api, f"/api/v1/orgs/bravo-secret/goals/{goal.pk}/comments", {"body": "Pwned"}),
        _post(api, f"/api/v1/orgs/bravo-secret/proposals/{proposal.pk}/accept", {}),
        _post(api, f"/api/v1/orgs/bravo-secret/concerns/{concern.pk}/resolve", {"resolution": "x"}),
        api.delete(f"/api/v1/orgs/bravo-secret/links/{link.pk}"),
        api.delete(f"/api/v1/orgs/bravo-secret/targets/{tid}?version=1"),
        _patch(api, f"/api/v1/orgs/bravo-secret/work-items/{item.pk}", {"goal": None}),
        _post(api, f"/api/v1/orgs/bravo-secret/products/{product.pk}/archive?version=1"),
    ]
    assert [r.status_code for r in writes] == [404] * len(writes)
    goal.refresh_from_db()
    assert goal.title == "Grow"
    assert ChangeProposal.objects.get(pk=proposal.pk).state == "open"
    assert WorkItem.objects.get(pk=item.pk).goal_id is None


# --- proposals and endorsements -------------------------------------------------------------------


def test_owner_accepts_a_proposal_and_the_goal_changes(owner, member, stakeholder):
    goal = _goal(owner, _product(owner), targets=[TARGET])
    tid = goal.targets.get().pk
    proposed = _post(
        stakeholder.api(),
        f"{BASE}/goals/{goal.pk}/proposals",
        {
            "changes": {
                "title": "Grow sustainably",
                "target_date": "2099-12-31",
                "targets": {str(tid): {"target": 5}},
            },
            "reason": "Clearer",
        },
    )
    assert proposed.status_code == 201, proposed.content
    pid = proposed.json()["id"]
    assert proposed.json()["changes"]["target_date"] == "2099-12-31"
    assert [p["id"] for p in member.api().get(f"{BASE}/goals/{goal.pk}/proposals").json()] == [pid]

    assert _post(member.api(), f"{BASE}/proposals/{pid}/accept").status_code == 403  # not the goal's owner
    accepted = _post(owner.api(), f"{BASE}/proposals/{pid}/accept", {"reason": "Agreed"})
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["state"] == "accepted"
    assert accepted.json()["decided_by"]["email"] == owner.user.email
    goal.refresh_from_db()
    assert (goal.title, goal.target_date) == ("Grow sustainably", dt.date(2099, 12, 31))
    assert goal.targets.get().target == 5.0
    history = HistoryEntry.objects.filter(
        object_type="strategy.goal", object_id=str(goal.pk), actor=owner.user
    )
    assert any("title" in e.changes for e in history)
    via_api = owner.api().get(f"{BASE}/history?object_type=strategy.goal&object_id={goal.pk}").json()
    assert any(e["changes"].get("title", {}).get("new") == "Grow sustainably" for e in via_api)
    assert _post(owner.api(), f"{BASE}/proposals/{pid}/accept").status_code == 409
    notes = stakeholder.api().get(f"{BASE}/notifications").json()
    assert any("accepted" in n["text"] for n in notes)


def test_reject_needs_a_reason(owner, stakeholder):
    goal = _goal(owner, _product(owner))
    pid = _post(stakeholder.api(), f"{BASE}/goals/{goal.pk}/proposals", {"changes": {"title": "New"}}).json()[
        "id"
    ]
    no_reason = _post(owner.api(), f"{BASE}/proposals/{pid}/reject")
    assert no_reason.status_code == 422
    assert _fields(no_reason) == {"reason"}
    rejected = _post(owner.api(), f"{BASE}/proposals/{pid}/reject", {"reason": "Not now"})
    assert rejected.status_code == 200
    assert (rejected.json()["state"], rejected.json()["decision_reason"]) == ("rejected", "Not now")
    assert Goal.objects.get(pk=goal.pk).title == "Grow"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "changes"),
        ({"title": "Grow"}, "changes"),
        ({"status": "achieved"}, "changes.status"),
        ({"target_date": "2099-02-30"}, "changes.target_date"),
        ({"targets": {"999999": {"target": 3}}}, "targets"),
    ],
)
def test_bad_proposals_are_422(owner, member, changes, field):
    goal = _goal(owner, None)
    response = _post(member.api(), f"{BASE}/goals/{goal.pk}/proposals", {"changes": changes})
    assert response.status_code == 422, response.content
    assert field in _fields(response)


def test_endorse_withdraw_and_concerns(owner, member, stakeholder):
    goal = _goal(owner, None)
    url = f"{BASE}/goals/{goal.pk}"
    first = _post(member.api(), f"{url}/endorsements", {"note": "Go"})
    again = _post(member.api(), f"{url}/endorsements", {"note": "Go go"})
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["note"] == "Go go"
    empty = _post(stakeholder.api(), f"{url}/concerns", {"note": ""})
    assert _fields(empty) == {"note"}
    concern = _post(stakeholder.api(), f"{url}/concerns", {"note": "Unclear"}).json()
    listed = owner.api().get(f"{url}/endorsements").json()
    assert sorted(e["kind"] for e in listed) == ["concern", "endorse"]
    assert (
        _post(member.api(), f"{BASE}/concerns/{concern['id']}/resolve", {"resolution": "x"}).status_code
        == 403
    )
    resolved = _post(owner.api(), f"{BASE}/concerns/{concern['id']}/resolve", {"resolution": "Clarified"})
    assert resolved.status_code == 200
    assert resolved.json()["resolved_by"]["email"] == owner.user.email
    assert member.api().delete(f"{url}/endorsements").status_code == 204
    assert member.api().delete(f"{url}/endorsements").status_code == 404


def test_comments_mention_and_notify(owner, member):
    goal = _goal(owner, None)
    posted = _post(member.api(), f"{BASE}/goals/{goal.pk}/comments", {"body": "Ping @admin@a.example"})
    assert posted.status_code == 201
    assert posted.json()["author"]["email"] == member.user.email
    assert [c["body"] for c in owner.api().get(f"{BASE}/goals/{goal.pk}/comments").json()] == [
        "Ping @admin@a.example"
    ]
    assert _fields(_post(member.api(), f"{BASE}/goals/{goal.pk}/comments", {"body": ""})) == {"body"}
    assert any("commented" in n["text"] for n in owner.api().get(f"{BASE}/notifications").json())


# --- work items and line of sight -----------------------------------------------------------------


def test_work_items_and_orphan_report(owner, member):
    product = _product(owner)
    goal = _goal(owner, product)
    api = member.api()
    made = [
        _post(
            api, f"{BASE}/work-items", {"product": product.pk, "title": f"W{i}", "external_key": f"WEB-{i}"}
        )
        for i in range(4)
    ]
    assert [r.status_code for r in made] == [201] * 4, made[0].content
    linked = _patch(api, f"{BASE}/work-items/{made[0].json()['id']}", {"goal": goal.pk})
    assert linked.status_code == 200
    assert linked.json()["goal"]["id"] == goal.pk
    _post(api, f"{BASE}/work-items", {"product": product.pk, "title": "Linked", "goal": goal.pk})

    report = api.get(f"{BASE}/products/{product.pk}/orphans").json()
    assert report == {"total": 5, "linked": 2, "orphans": 3, "orphan_share": pytest.approx(0.6)}
    orphans = api.get(f"{BASE}/work-items?orphans=true&product={product.pk}").json()
    assert sorted(w["title"] for w in orphans) == ["W1", "W2", "W3"]
    assert len(api.get(f"{BASE}/work-items?goal={goal.pk}").json()) == 2
    assert api.get(f"{BASE}/products/{product.pk}").json()["orphan_work_items"] == 3

    duplicate = _post(
        api, f"{BASE}/work-items", {"product": product.pk, "title": "X", "external_key": "WEB-1"}
    )
    assert duplicate.status_code == 409
    bad_url = _post(api, f"{BASE}/work-items", {"product": product.pk, "title": "X", "url": "ftp://x"})
    assert _fields(bad_url) == {"url"}
    no_product = _post(api, f"{BASE}/work-items", {"product": 99999999, "title": "X"})
    assert (no_product.status_code, _fields(no_product)) == (422, {"product"})
    bad_goal = _patch(api, f"{BASE}/work-items/{made[1].json()['id']}", {"goal": 99999999})
    assert _fields(bad_goal) == {"goal"}
    assert _fields(_patch(api, f"{BASE}/work-items/{made[1].json()['id']}", {})) == {"goal"}
    unlinked = _patch(api, f"{BASE}/work-items/{made[0].json()['id']}", {"goal": None})
    assert unlinked.json()["goal"] is None
    empty = _product(owner, "Empty")
    assert api.get(f"{BASE}/products/{empty.pk}/orphans").json() == {
        "total": 0,
        "linked": 0,
        "orphans": 0,
        "orphan_share": None,
    }


# --- export and import ----------------------------------------------------------------------------


def _populated_product(owner: Persona) -> Product:
    product = _product(owner)
    org_goal = _goal(owner, None, "Org goal")
    root = _goal(owner, product, "Root", outcome=OUTCOME, targets=[TARGET], target_date=dt.date(2099, 1, 1))
    child = _goal(owner, product, "Child", parent_id=root.pk, status="active")
    _goal(owner, product, "Grandchild", parent_id=child.pk)
    assert owner.membership is not None
    services.link_goals(owner.membership, owner.user, root.pk, org_goal.pk, "aligns")
    services.record_observation(owner.membership, owner.user, root.targets.get().pk, 3.0, note="first")
    return product


def _without_name(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "product": {**doc["product"], "name": None}}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_export_import_round_trip(owner, member, fmt):
    product = _populated_product(owner)
    exported = member.api().get(f"{BASE}/products/{product.pk}/export?format={fmt}")
    assert exported.status_code == 200, exported.content
    if fmt == "json":
        assert exported["Content-Type"].startswith("application/json")
        doc = exported.json()
        imported = member.api().post(
            f"{BASE}/products/import?name=Copy", json.dumps(doc), content_type="application/json"
        )
    else:
        assert exported["Content-Type"].startswith("application/yaml")
        text = exported.content.decode()
        doc = yaml.safe_load(text)
        imported = member.api().post(
            f"{BASE}/products/import?name=Copy", text, content_type="application/yaml"
        )
    assert imported.status_code == 201, imported.content
    copy = imported.json()
    assert copy["name"] == "Copy"
    assert copy["goals"] == 3
    again = member.api().get(f"{BASE}/products/{copy['id']}/export").json()
    assert _without_name(again) == _without_name(doc)
    assert again["product"]["name"] == "Copy"


def test_export_markdown_and_bad_imports(owner, member):
    product = _populated_product(owner)
    md = member.api().get(f"{BASE}/products/{product.pk}/export?format=markdown")
    assert md.status_code == 200
    assert md["Content-Type"].startswith("text/markdown")
    assert "Root" in md.content.decode()
    assert _fields(member.api().get(f"{BASE}/products/{product.pk}/export?format=pdf")) == {"format"}

    url = f"{BASE}/products/import"
    bad_yaml = member.api().post(url, "product: [unclosed", content_type="application/yaml")
    assert bad_yaml.status_code == 422
    bad_json = member.api().post(url, "{not json", content_type="application/json")
    assert bad_json.status_code == 422
    wrong_type = member.api().post(url, "<xml/>", content_type="application/xml")
    assert wrong_type.status_code == 422
    not_utf8 = member.api().post(url, b"\xff\xfe", content_type="application/yaml")
    assert not_utf8.status_code == 422
    doc = member.api().get(f"{BASE}/products/{product.pk}/export").json()
    same_name = _post(member.api(), url, doc)
    assert same_name.status_code == 409  # a product called Webshop already exists
    doc["goals"][0]["children"][0]["title"] = "Nul\u0000"
    nul = _post(member.api(), f"{url}?name=Nul", doc)
    assert (nul.status_code, _fields(nul)) == (422, {"goals[0].children[0].title"})
    assert _fields(_post(member.api(), f"{url}?name=Nul%00", doc)) == {"name"}
    doc["goals"][0]["children"][0]["title"] = "Child"
    doc["goals"][0]["targets"][0]["baseline"] = "lots"
    broken = _post(member.api(), f"{url}?name=Broken", doc)
    assert broken.status_code == 422
    assert any("baseline" in f for f in _fields(broken))
    assert not Product.objects.filter(name="Broken").exists()


# --- query counts ---------------------------------------------------------------------------------


def _grow_goals(owner: Persona, product: Product, n: int) -> None:
    for i in range(n):
        _goal(owner, product if i % 2 else None, f"G{i}", targets=[TARGET] if i % 3 else [])


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/goals",
        f"{BASE}/products",
        f"{BASE}/work-items",
        f"{BASE}/alignment",
        f"{BASE}/lint",
        "tree",
    ],
)
def test_list_query_counts_do_not_grow_with_rows(owner, url):
    product = _product(owner)
    if url == "tree":
        url = f"{BASE}/products/{product.pk}/tree"
    api = owner.api()
    _grow_goals(owner, product, 5)
    assert owner.membership is not None
    services.create_work_item(owner.membership, owner.user, product.pk, title="W")
    api.get(url)  # warm up (token last-used write)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = api.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    few = count()
    _grow_goals(owner, product, 45)
    for i in range(20):
        services.create_work_item(owner.membership, owner.user, product.pk, title=f"W{i}")
    assert len(api.get(f"{BASE}/goals").json()) == 50
    assert count() == few


def test_checkins_list_query_count(owner):
    goal = _goal(owner, None, status="active", targets=[TARGET])
    tid = goal.targets.get().pk
    api = owner.api()
    url = f"{BASE}/goals/{goal.pk}/checkins"
    assert owner.membership is not None
    services.check_in(
        owner.membership, owner.user, goal.pk, status="on_track", confidence=5, target_id=tid, value=3
    )
    api.get(url)
    with CaptureQueriesContext(connection) as few:
        api.get(url)
    for _ in range(10):
        services.check_in(
            owner.membership, owner.user, goal.pk, status="on_track", confidence=5, target_id=tid, value=3
        )
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(url).json()) == 11
    assert len(many.captured_queries) == len(few.captured_queries)
    assert CheckIn.objects.count() == 11
