"""The stakeholders API: create/list/filter, 422 naming the field, 404 for another organisation, the
version rule, archive, the map, the overdue list and the engagement log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.test import Client
from django.utils import timezone

from truenorth.engagement.models import Stakeholder
from truenorth.strategy import services as strategy

BASE = "/api/v1/orgs/alpha"


def _send(client: Client, method: str, url: str, body: dict[str, Any]) -> Any:
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def _fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_create_list_filter_and_get(member, stakeholder) -> None:
    product = strategy.create_product(member.membership, member.user, name="Trail")
    made = _send(
        member.api(),
        "post",
        f"{BASE}/stakeholders",
        {
            "name": "Dana",
            "email": "Dana@Example.com",
            "department": "legal",
            "influence": 5,
            "interest": 2,
            "products": [product.pk],
            "relationship_owner": member.user.pk,
        },
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["email"] == "dana@example.com" and body["quadrant"] == "keep_satisfied" and body["gap"] == 1
    assert body["relationship_owner"]["email"] == member.user.email
    _send(member.api(), "post", f"{BASE}/stakeholders", {"name": "Eve", "department": "sales"})
    names = lambda q: [s["name"] for s in stakeholder.api().get(f"{BASE}/stakeholders{q}").json()]  # noqa: E731
    assert names("") == ["Dana", "Eve"]
    assert names("?department=sales") == ["Eve"]
    assert names("?quadrant=keep_satisfied") == ["Dana"]
    assert names(f"?product={product.pk}") == ["Dana"]
    got = stakeholder.api().get(f"{BASE}/stakeholders/{body['id']}")
    assert got.status_code == 200 and got.json()["products"] == [product.pk]
    refused = _send(stakeholder.api(), "post", f"{BASE}/stakeholders", {"name": "Nope"})
    assert refused.status_code == 403


def test_bad_input_is_422_naming_the_field(member, outsider) -> None:
    for body, field in (
        ({"name": "X", "influence": 9}, "influence"),
        ({"name": "X", "email": "not-an-address"}, "email"),
        ({"name": "X", "department": "space"}, "department"),
        ({"name": "X", "colour": "red"}, "colour"),
        ({"name": "X", "relationship_owner": outsider.user.pk}, "relationship_owner"),
    ):
        r = _send(member.api(), "post", f"{BASE}/stakeholders", body)
        assert r.status_code == 422, (body, r.content)
        assert any(field in (f or "") for f in _fields(r)), (field, r.json())
    theirs = strategy.create_product(outsider.membership, outsider.user, name="Secret")
    r = _send(member.api(), "post", f"{BASE}/stakeholders", {"name": "X", "products": [theirs.pk]})
    assert r.status_code == 422 and _fields(r) == ["products"]
    r = member.api().get(f"{BASE}/stakeholders?product={theirs.pk}")
    assert r.status_code == 422 and _fields(r) == ["product"]
    assert not Stakeholder.objects.filter(name="X").exists()


def test_other_organisation_gets_404(member, outsider) -> None:
    sid = _send(member.api(), "post", f"{BASE}/stakeholders", {"name": "Dana"}).json()["id"]
    assert outsider.api().get(f"{BASE}/stakeholders").status_code == 404
    assert outsider.api().get(f"/api/v1/orgs/bravo-secret/stakeholders/{sid}").status_code == 404
    r = _send(
        outsider.api(), "patch", f"/api/v1/orgs/bravo-secret/stakeholders/{sid}", {"version": 1, "name": "M"}
    )
    assert r.status_code == 404
    r = outsider.api().post(f"/api/v1/orgs/bravo-secret/stakeholders/{sid}/archive?version=1")
    assert r.status_code == 404
    assert Stakeholder.objects.get(pk=sid).name == "Dana"


def test_patch_needs_the_current_version_and_archive(member) -> None:
    sid = _send(member.api(), "post", f"{BASE}/stakeholders", {"name": "Dana"}).json()["id"]
    url = f"{BASE}/stakeholders/{sid}"
    missing = _send(member.api(), "patch", url, {"name": "Dana B"})
    assert missing.status_code == 422 and "version" in _fields(missing)
    ok = _send(member.api(), "patch", url, {"version": 1, "name": "Dana B", "interest": 5})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = _send(member.api(), "patch", url, {"version": 1, "name": "Dana C"})
    assert stale.status_code == 409
    null = _send(member.api(), "patch", url, {"version": 2, "name": None})
    assert null.status_code == 422 and _fields(null) == ["name"]
    assert member.api().post(f"{url}/archive?version=1").status_code == 409
    archived = member.api().post(f"{url}/archive?version=2")
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert member.api().get(f"{BASE}/stakeholders").json() == []


def test_map_overdue_and_log(member) -> None:
    api = member.api()
    gap = _send(
        api,
        "post",
        f"{BASE}/stakeholders",
        {"name": "Gap", "influence": 5, "interest": 5, "current_engagement": "resistant"},
    ).json()
    calm = _send(
        api,
        "post",
        f"{BASE}/stakeholders",
        {"name": "Calm", "influence": 1, "interest": 1, "desired_engagement": "neutral"},
    ).json()
    Stakeholder.objects.filter(pk=gap["id"]).update(created_at=timezone.now() - dt.timedelta(days=40))
    Stakeholder.objects.filter(pk=calm["id"]).update(created_at=timezone.now() - dt.timedelta(days=40))
    found = api.get(f"{BASE}/stakeholders/map").json()
    assert {q["key"]: q["count"] for q in found["quadrants"]}["manage_closely"] == 1
    assert found["spec"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert {p["name"]: p["gap"] for p in found["points"]} == {"Gap": 2, "Calm": 0}
    rows = api.get(f"{BASE}/stakeholders/overdue").json()
    assert [r["stakeholder"]["name"] for r in rows] == ["Gap"]  # 40 days: over 14, under 90
    rows = api.get(f"{BASE}/stakeholders/overdue?days=30").json()
    assert [r["stakeholder"]["name"] for r in rows] == ["Gap", "Calm"]
    assert api.get(f"{BASE}/stakeholders/overdue?days=-3").status_code == 422
    today = timezone.localdate()
    logged = _send(
        api,
        "post",
        f"{BASE}/engagement-log",
        {
            "occurred_on": today.isoformat(),
            "kind": "demo",
            "summary": "Showed the map",
            "stakeholders": [gap["id"]],
        },
    )
    assert logged.status_code == 201, logged.content
    empty = _send(
        api,
        "post",
        f"{BASE}/engagement-log",
        {"occurred_on": today.isoformat(), "summary": "Nobody", "stakeholders": []},
    )
    assert empty.status_code == 422 and "stakeholders" in _fields(empty)
    assert [e["summary"] for e in api.get(f"{BASE}/engagement-log").json()] == ["Showed the map"]
    assert api.get(f"{BASE}/stakeholders/{gap['id']}").json()["last_contact"] == today.isoformat()
    assert [r["stakeholder"]["name"] for r in api.get(f"{BASE}/stakeholders/overdue").json()] == []
