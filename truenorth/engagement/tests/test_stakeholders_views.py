"""The stakeholder pages: list with the map, table and overdue list; create, edit (unchanged submit,
stale version), archive, logging an interaction; read-only for the stakeholder role; 404 elsewhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone

from truenorth.engagement.models import EngagementLogEntry, Stakeholder
from truenorth.engagement.services import stakeholders as svc
from truenorth.history.services import entries_for


def _url(name: str, **kw: Any) -> str:
    return reverse(f"engagement:{name}", kwargs={"org_slug": "alpha", **kw})


def _make(member, **values: Any) -> Stakeholder:
    return svc.create_stakeholder(member.membership, member.user, **{"name": "Dana", **values})


def test_list_shows_map_table_and_overdue(member, stakeholder) -> None:
    dana = _make(member, influence=5, interest=5, current_engagement="resistant")
    Stakeholder.objects.filter(pk=dana.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    _make(member, name="Eve", department="sales", influence=1, interest=1, desired_engagement="neutral")
    page = stakeholder.client.get(_url("stakeholders"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-vega-spec="stakeholder-map-spec"' in html and "Manage closely" in html
    assert 'data-testid="stakeholder-new"' not in html  # read only for the stakeholder role
    overdue = page.context["overdue"]
    assert [r.stakeholder.name for r in overdue] == ["Dana"]
    filtered = stakeholder.client.get(_url("stakeholders") + "?department=sales&days=0")
    assert [r["s"].name for r in filtered.context["rows"]] == ["Eve"]
    assert [r.stakeholder.name for r in filtered.context["overdue"]] == ["Dana", "Eve"]  # days overrides
    svg = stakeholder.client.get(_url("stakeholders_map_svg"))
    assert svg.status_code == 200 and b"<svg" in svg.content and b"Keep informed" in svg.content


def test_create_edit_unchanged_and_stale(member) -> None:
    form = {
        "name": "Dana",
        "email": "dana@example.com",
        "title": "Counsel",
        "company": "",
        "department": "legal",
        "influence": "4",
        "interest": "2",
        "current_engagement": "neutral",
        "desired_engagement": "supportive",
        "relationship_owner": str(member.user.pk),
        "user": "",
        "notes": "Line one\r\nLine two",
    }
    r = member.client.post(_url("stakeholder_create"), form)
    assert r.status_code == 302
    s = Stakeholder.objects.get(name="Dana")
    assert s.notes == "Line one\nLine two"
    edit = member.client.get(_url("stakeholder_edit", stakeholder_id=s.pk))
    assert edit.status_code == 200
    unchanged = member.client.post(_url("stakeholder_edit", stakeholder_id=s.pk), {**form, "version": "1"})
    assert unchanged.status_code == 302
    s.refresh_from_db()
    assert s.version == 1 and entries_for(s.organisation, s).count() == 1
    svc.update_stakeholder(member.membership, member.user, s.pk, version=1, interest=3)
    stale = member.client.post(_url("stakeholder_edit", stakeholder_id=s.pk), {**form, "version": "1"})
    assert stale.status_code == 200 and "changed by someone else" in stale.content.decode()
    s.refresh_from_db()
    assert s.interest == 3 and s.version == 2
    bad = member.client.post(
        _url("stakeholder_edit", stakeholder_id=s.pk), {**form, "email": "x", "version": "2"}
    )
    assert "valid e-mail" in bad.content.decode()


def test_log_and_archive(member, stakeholder) -> None:
    s = _make(member)
    page = member.client.get(_url("stakeholder", stakeholder_id=s.pk))
    assert page.status_code == 200 and 'data-testid="log-form"' in page.content.decode()
    today = timezone.localdate().isoformat()
    r = member.client.post(
        _url("stakeholder_log", stakeholder_id=s.pk),
        {"occurred_on": today, "kind": "call", "summary": "Chat"},
    )
    assert r.status_code == 302 and EngagementLogEntry.objects.get().summary == "Chat"
    r = member.client.post(
        _url("stakeholder_log", stakeholder_id=s.pk), {"occurred_on": today, "kind": "call"}
    )
    assert r.status_code == 422 and EngagementLogEntry.objects.count() == 1
    assert (
        stakeholder.client.post(
            _url("stakeholder_archive", stakeholder_id=s.pk), {"version": "1"}
        ).status_code
        == 403
    )
    member.client.post(_url("stakeholder_archive", stakeholder_id=s.pk), {"version": "1"})
    s.refresh_from_db()
    assert s.archived_at is not None


def test_other_organisation_gets_404(member, outsider) -> None:
    s = _make(member)
    assert outsider.client.get(_url("stakeholders")).status_code == 404
    other = {"org_slug": "bravo-secret", "stakeholder_id": s.pk}
    assert outsider.client.get(reverse("engagement:stakeholder", kwargs=other)).status_code == 404
    assert (
        outsider.client.post(
            reverse("engagement:stakeholder_archive", kwargs=other), {"version": "1"}
        ).status_code
        == 404
    )
