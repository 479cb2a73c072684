"""API behaviour of notifications: mine, in one organisation, listed and marked read."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from truenorth.notifications import services
from truenorth.notifications.models import Notification

BASE = "/api/v1/orgs/alpha/notifications"


def _post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def test_list_and_mark_read(owner, member, org_a, org_b):
    services.notify(org_a, [member.user], "First", "/o/alpha/goals/1/")
    services.notify(org_a, [member.user], "Second")
    services.notify(org_a, [owner.user], "Not yours")
    services.notify(org_b, [member.user], "Other organisation")

    listed = member.api().get(BASE)
    assert listed.status_code == 200
    assert [(n["text"], n["read_at"]) for n in listed.json()] == [("Second", None), ("First", None)]
    assert listed.json()[1]["url"] == "/o/alpha/goals/1/"
    first = listed.json()[1]["id"]

    marked = _post(member.api(), f"{BASE}/read", {"ids": [first]})
    assert marked.status_code == 200
    assert marked.json() == {"marked": 1}
    assert [n["text"] for n in member.api().get(f"{BASE}?unread=true").json()] == ["Second"]

    everything = _post(member.api(), f"{BASE}/read", {})
    assert everything.json() == {"marked": 1}
    assert member.api().get(f"{BASE}?unread=true").json() == []
    # Only this organisation's notifications were marked; the other organisation's stays unread.
    assert Notification.objects.get(text="Other organisation").read_at is None
    assert Notification.objects.get(text="Not yours").read_at is None


def test_cannot_mark_someone_elses_notification(owner, member, org_a):
    services.notify(org_a, [owner.user], "Owner's")
    theirs = Notification.objects.get(text="Owner's").pk
    assert _post(member.api(), f"{BASE}/read", {"ids": [theirs]}).json() == {"marked": 0}
    assert Notification.objects.get(pk=theirs).read_at is None


def test_input_errors_roles_and_tokens(stakeholder, member, outsider, org_a):
    services.notify(org_a, [stakeholder.user], "Hello")
    assert _post(stakeholder.api(), f"{BASE}/read", {}).json() == {"marked": 1}
    bad = _post(member.api(), f"{BASE}/read", {"ids": ["x"]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("ids")
    unknown = _post(member.api(), f"{BASE}/read", {"all": True})
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["all"]
    assert member.api().get(f"{BASE}?limit=0").status_code == 422
    assert _post(member.api_read(), f"{BASE}/read", {}).status_code == 403
    assert member.api_read().get(BASE).status_code == 200
    assert outsider.api().get(BASE).status_code == 404
    assert _post(outsider.api(), f"{BASE}/read", {}).status_code == 404
    assert Client().get(BASE).status_code == 401
