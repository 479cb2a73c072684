"""The append-only history: record/diff/snapshot, immutability in the app and the database, and where
it is shown (organisation settings page, history API)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import ProtectedError

from truenorth.accounts.models import User
from truenorth.history.models import AppendOnlyError, HistoryEntry
from truenorth.history.services import _jsonable, diff, entries_for, record, snapshot
from truenorth.orgs.models import Organisation
from truenorth.orgs.services import ORG_FIELDS, update_organisation

HISTORY = "/api/v1/orgs/alpha/history"


def _patch(client: Any, path: str, data: dict[str, Any]) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json")


# --- snapshot / diff / record -----------------------------------------------------------------


def test_snapshot_takes_jsonable_values(org_a):
    snap = snapshot(org_a, ("name", "slug", "created_at", "version"))
    assert snap == {
        "name": "Alpha Org",
        "slug": "alpha",
        "created_at": org_a.created_at.isoformat(),
        "version": 1,
    }
    json.dumps(snap)  # really JSON-able


def test_snapshot_turns_related_objects_into_text(owner):
    snap = snapshot(owner.membership, ("organisation", "role"))
    assert snap == {"organisation": "Alpha Org", "role": "owner"}


def test_jsonable_values():
    assert _jsonable(dt.date(2025, 1, 2)) == "2025-01-02"
    assert _jsonable(decimal.Decimal("1.50")) == "1.50"
    u = uuid.uuid4()
    assert _jsonable(u) == str(u)
    assert _jsonable((1, dt.date(2025, 1, 2))) == [1, "2025-01-02"]
    assert _jsonable(None) is None


def test_diff_lists_only_changed_fields_with_old_and_new():
    before = {"name": "A", "slug": "a", "version": 1}
    after = {"name": "B", "slug": "a", "version": 2}
    assert diff(before, after) == {"name": {"old": "A", "new": "B"}, "version": {"old": 1, "new": 2}}
    assert diff(before, dict(before)) == {}
    # Fields present on one side only: the other side is None.
    assert diff({}, {"name": "A"}) == {"name": {"old": None, "new": "A"}}
    assert diff({"name": "A"}, {}) == {"name": {"old": "A", "new": None}}


def test_record_an_update(org_a, owner):
    entry = record(org_a, org_a, owner.user, HistoryEntry.Action.UPDATED, {"name": {"old": "A", "new": "B"}})
    assert entry is not None
    entry.refresh_from_db()
    assert entry.organisation_id == org_a.pk
    assert entry.object_type == "orgs.organisation"
    assert entry.object_id == str(org_a.pk)
    assert entry.object_repr == "Alpha Org"
    assert entry.action == "updated"
    assert entry.changes == {"name": {"old": "A", "new": "B"}}
    assert entry.actor_id == owner.user.pk
    assert entry.actor_name == "owner@a.example"
    assert entry.at is not None


def test_record_of_a_no_op_update_writes_nothing(org_a, owner):
    before = HistoryEntry.objects.count()
    assert record(org_a, org_a, owner.user, HistoryEntry.Action.UPDATED, {}) is None
    assert record(org_a, org_a, owner.user, HistoryEntry.Action.UPDATED, None) is None
    assert HistoryEntry.objects.count() == before


def test_record_without_actor_is_system(org_a):
    entry = record(org_a, org_a, None, HistoryEntry.Action.ARCHIVED)
    assert entry is not None
    assert entry.actor_name == "system"
    assert entry.changes == {}


def test_no_op_service_update_records_nothing(owner, org_a):
    before = HistoryEntry.objects.count()
    update_organisation(owner.membership, owner.user, name="Alpha Org", slug="alpha", version=1)
    org_a.refresh_from_db()
    assert org_a.version == 1
    assert HistoryEntry.objects.count() == before


def test_service_update_records_old_and_new_values(owner, org_a):
    update_organisation(owner.membership, owner.user, name="Alpha Two", slug="alpha-two")
    entry = entries_for(org_a, org_a).first()
    assert entry is not None
    assert entry.action == HistoryEntry.Action.UPDATED
    assert entry.changes == {
        "name": {"old": "Alpha Org", "new": "Alpha Two"},
        "slug": {"old": "alpha", "new": "alpha-two"},
    }
    assert set(entry.changes) <= set(ORG_FIELDS)


def test_entries_for_one_object_or_the_whole_organisation(owner, member, org_a, org_b):
    record(org_a, member.membership, owner.user, HistoryEntry.Action.UPDATED, {"role": {"old": 1, "new": 2}})
    only_member = list(entries_for(org_a, member.membership))
    assert [e.object_id for e in only_member] == [str(member.membership.pk)]
    everything = list(entries_for(org_a))
    assert len(everything) > 1
    assert all(e.organisation_id == org_a.pk for e in everything)
    # Newest first.
    assert everything[0].pk == only_member[0].pk
    assert [e.at for e in everything] == sorted((e.at for e in everything), reverse=True)


def test_history_survives_deleting_its_actor(org_a):
    ghost = User.objects.create_user(email="ghost@a.example", password="x" * 12)
    entry = record(org_a, org_a, ghost, HistoryEntry.Action.UPDATED, {"name": {"old": "a", "new": "b"}})
    assert entry is not None
    ghost_id = ghost.pk
    ghost.delete()
    kept = HistoryEntry.objects.get(pk=entry.pk)
    assert kept.actor_name == "ghost@a.example"
    assert kept.actor_id == ghost_id


def test_organisation_with_history_cannot_be_deleted(org_a):
    with pytest.raises(ProtectedError), transaction.atomic():
        org_a.delete()
    assert Organisation.objects.filter(pk=org_a.pk).exists()


# --- append-only in the application -----------------------------------------------------------


@pytest.fixture
def entry(org_a) -> HistoryEntry:
    return HistoryEntry.objects.filter(organisation=org_a).order_by("id").first()  # type: ignore[return-value]


def test_saving_an_existing_entry_raises(entry):
    entry.action = "tampered"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.save(update_fields=["action"])
    entry.refresh_from_db()
    assert entry.action == HistoryEntry.Action.CREATED


def test_deleting_an_entry_raises(entry):
    with pytest.raises(AppendOnlyError):
        entry.delete()
    assert HistoryEntry.objects.filter(pk=entry.pk).exists()


def test_queryset_update_and_delete_raise(entry, org_a):
    with pytest.raises(AppendOnlyError):
        HistoryEntry.objects.filter(pk=entry.pk).update(action="tampered")
    with pytest.raises(AppendOnlyError):
        HistoryEntry.objects.all().update(actor_name="nobody")
    with pytest.raises(AppendOnlyError):
        HistoryEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AppendOnlyError):
        HistoryEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        org_a.history.all().delete()
    entry.action = "tampered"
    with pytest.raises(AppendOnlyError), transaction.atomic():
        HistoryEntry.objects.bulk_update([entry], ["action"])
    assert HistoryEntry.objects.get(pk=entry.pk).action == HistoryEntry.Action.CREATED


# --- append-only in the database --------------------------------------------------------------


def test_database_refuses_a_raw_update(entry):
    with pytest.raises((IntegrityError, DatabaseError, OperationalError)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE history_historyentry SET action='x'")
    assert HistoryEntry.objects.get(pk=entry.pk).action == HistoryEntry.Action.CREATED
    assert not HistoryEntry.objects.filter(action="x").exists()


def test_database_refuses_a_raw_delete(entry):
    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM history_historyentry")
    assert HistoryEntry.objects.filter(pk=entry.pk).exists()


# --- shown on the settings page ---------------------------------------------------------------


def test_settings_page_shows_the_change(owner, member, org_a):
    response = _patch(owner.api(), "/api/v1/orgs/alpha", {"name": "Alpha Renamed", "version": 1})
    assert response.status_code == 200
    for client in (owner.client, member.client):
        page = client.get("/o/alpha/settings/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "History" in html
        assert "owner@a.example" in html
        assert "Alpha Org → Alpha Renamed" in html
        assert "<strong>name</strong>" in html


def test_settings_page_of_another_organisation_is_404(outsider, org_a):
    assert outsider.client.get("/o/alpha/settings/").status_code == 404


# --- the history API --------------------------------------------------------------------------


def _make_history(owner: Any, member: Any) -> None:
    api = owner.api()
    for n in range(1, 4):
        assert _patch(api, "/api/v1/orgs/alpha", {"name": f"Alpha {n}", "version": n}).status_code == 200
    path = f"/api/v1/orgs/alpha/members/{member.membership.pk}"
    assert _patch(api, path, {"role": "stakeholder"}).status_code == 200


def test_history_api_lists_newest_first_with_all_fields(owner, member, org_a):
    _make_history(owner, member)
    response = owner.api().get(HISTORY)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == HistoryEntry.objects.filter(organisation=org_a).count()
    assert set(rows[0]) == {
        "id",
        "object_type",
        "object_id",
        "object_repr",
        "action",
        "changes",
        "actor",
        "at",
    }
    newest = rows[0]
    assert newest["object_type"] == "orgs.membership"
    assert newest["object_id"] == str(member.membership.pk)
    assert newest["action"] == "updated"
    assert newest["changes"] == {"role": {"old": "member", "new": "stakeholder"}}
    assert newest["actor"] == "owner@a.example"
    ids = [r["id"] for r in rows]
    assert ids == [e.pk for e in entries_for(org_a)]


def test_history_api_filters_by_object_type_and_id(owner, member, org_a):
    _make_history(owner, member)
    api = owner.api_read()
    orgs = api.get(HISTORY, {"object_type": "orgs.organisation"}).json()
    assert orgs
    assert {r["object_type"] for r in orgs} == {"orgs.organisation"}
    assert [r["changes"]["name"]["new"] for r in orgs if r["action"] == "updated"] == [
        "Alpha 3",
        "Alpha 2",
        "Alpha 1",
    ]

    one = api.get(HISTORY, {"object_type": "orgs.membership", "object_id": str(member.membership.pk)}).json()
    assert [r["action"] for r in one] == ["updated"]
    assert {r["object_id"] for r in one} == {str(member.membership.pk)}

    by_id_only = api.get(HISTORY, {"object_id": str(org_a.pk)}).json()
    assert {r["object_id"] for r in by_id_only} == {str(org_a.pk)}

    assert api.get(HISTORY, {"object_type": "no.such"}).json() == []


def test_history_api_paginates(owner, member, org_a):
    _make_history(owner, member)
    api = owner.api()
    everything = [r["id"] for r in api.get(HISTORY).json()]
    assert len(everything) >= 6
    first = [r["id"] for r in api.get(HISTORY, {"limit": 2}).json()]
    second = [r["id"] for r in api.get(HISTORY, {"limit": 2, "offset": 2}).json()]
    assert first == everything[:2]
    assert second == everything[2:4]
    tail = [r["id"] for r in api.get(HISTORY, {"limit": 1000, "offset": len(everything) - 1}).json()]
    assert tail == everything[-1:]
    assert api.get(HISTORY, {"offset": len(everything)}).json() == []


def test_history_api_default_limit_is_100(owner, org_a):
    for n in range(105):
        record(org_a, org_a, owner.user, HistoryEntry.Action.UPDATED, {"n": {"old": n, "new": n + 1}})
    assert len(owner.api().get(HISTORY).json()) == 100
    assert len(owner.api().get(HISTORY, {"offset": 100}).json()) == HistoryEntry.objects.count() - 100


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": 1001},
        {"limit": "many"},
        {"offset": -1},
        {"offset": "x"},
        # Out of the database's integer range: must be refused, not a 500.
        {"offset": 10**30},
    ],
)
def test_history_api_refuses_bad_paging_with_422(owner, query):
    response = owner.api().get(HISTORY, query)
    assert response.status_code == 422, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert {e["field"] for e in body["errors"]} == set(query)


def test_history_api_is_tenant_isolated(outsider, org_a, stakeholder):
    assert stakeholder.api_read().get(HISTORY).status_code == 200
    hidden = outsider.api().get(HISTORY)
    assert hidden.status_code == 404
    assert b"Alpha" not in hidden.content
    # The outsider's own history never includes organisation A's entries.
    own = outsider.api().get("/api/v1/orgs/bravo-secret/history").json()
    assert own
    assert str(org_a.pk) not in {r["object_id"] for r in own if r["object_type"] == "orgs.organisation"}
    assert all(r["actor"] != "founder@a.example" for r in own)
