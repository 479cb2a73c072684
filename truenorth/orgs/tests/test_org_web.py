"""Organisation pages through the web UI: create, settings, members, invitations, roles, leaving;
security headers and the health endpoint."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from truenorth.accounts.models import User
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Invitation, Membership, Organisation, Role
from truenorth.orgs.services import create_organisation, update_organisation

CREATE = reverse("orgs:create")


def _url(name: str, slug: str = "alpha", **kwargs: int) -> str:
    return reverse(name if ":" in name else f"orgs:{name}", kwargs={"org_slug": slug, **kwargs})


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- create -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_page_needs_sign_in():
    response = Client().get(CREATE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_create_organisation_derives_slug_and_makes_creator_owner(member):
    assert member.client.get(CREATE).status_code == 200
    response = member.client.post(CREATE, {"name": "Northwind Trading Co.", "slug": ""})
    org = Organisation.objects.get(name="Northwind Trading Co.")
    assert org.slug == "northwind-trading-co"
    assert response.status_code == 302
    assert response["Location"] == _url("home:dashboard", org.slug)
    assert Membership.objects.get(organisation=org, user=member.user).role == Role.OWNER
    dashboard = member.client.get(response["Location"])
    assert dashboard.status_code == 200
    assert "Northwind Trading Co. is ready" in " ".join(_messages(dashboard))


@pytest.mark.django_db
def test_create_organisation_with_taken_name_gets_a_unique_slug(owner):
    owner.client.post(CREATE, {"name": "Alpha"})
    owner.client.post(CREATE, {"name": "Alpha"})
    assert set(Organisation.objects.filter(name="Alpha").values_list("slug", flat=True)) == {
        "alpha-2",
        "alpha-3",
    }


@pytest.mark.django_db
def test_create_organisation_with_explicit_slug(member):
    response = member.client.post(CREATE, {"name": "Beta", "slug": "beta-team"})
    assert response.status_code == 302
    assert response["Location"] == _url("home:dashboard", "beta-team")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "fragment"),
    [
        ("Not a slug!", "valid"),  # rejected by the form field
        ("-leading-hyphen", "hyphen"),  # rejected by the service's rule
        ("new", "reserved"),
        ("alpha", "taken"),
    ],
)
def test_create_organisation_with_invalid_slug_shows_error_on_slug(owner, slug, fragment):
    before = Organisation.objects.count()
    response = owner.client.post(CREATE, {"name": "Gamma", "slug": slug})
    assert response.status_code == 200
    form = response.context["form"]
    assert fragment in " ".join(form.errors["slug"])
    assert "name" not in form.errors
    assert b"field-error" in response.content
    assert Organisation.objects.count() == before


@pytest.mark.django_db
def test_create_organisation_without_name_shows_error_on_name(member):
    response = member.client.post(CREATE, {"name": "   ", "slug": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_settings_rename_saves_and_records_history(admin, org_a):
    page = admin.client.get(_url("settings"))
    assert page.status_code == 200
    assert page.context["form"].initial["version"] == org_a.version == 1

    response = admin.client.post(_url("settings"), {"name": "Alpha Renamed", "slug": "alpha", "version": 1})
    assert response.status_code == 302
    org_a.refresh_from_db()
    assert org_a.name == "Alpha Renamed"
    assert org_a.version == 2
    entry = HistoryEntry.objects.filter(organisation=org_a, action=HistoryEntry.Action.UPDATED).get()
    assert entry.changes == {"name": {"old": "Alpha Org", "new": "Alpha Renamed"}}
    after = admin.client.get(response["Location"])
    assert b"Alpha Renamed" in after.content


@pytest.mark.django_db
def test_settings_change_slug_redirects_to_new_address(owner, org_a):
    response = owner.client.post(_url("settings"), {"name": "Alpha Org", "slug": "alpha-two", "version": 1})
    assert response.status_code == 302
    assert response["Location"] == _url("settings", "alpha-two")
    assert owner.client.get(_url("home:dashboard", "alpha")).status_code == 404


@pytest.mark.django_db
def test_settings_rename_with_stale_version_shows_conflict_and_keeps_the_other_change(owner, admin, org_a):
    # The owner loads the page at version 1 ...
    page = owner.client.get(_url("settings"))
    assert page.context["form"].initial["version"] == 1
    # ... meanwhile the admin renames the organisation (version 2) ...
    update_organisation(admin.membership, admin.user, name="Renamed by admin")
    # ... and the owner saves the stale form.
    response = owner.client.post(_url("settings"), {"name": "Owner's name", "slug": "alpha", "version": 1})

    assert response.status_code == 200
    form = response.context["form"]
    assert not form.is_valid()
    all_errors = " ".join(str(e) for errors in form.errors.values() for e in errors)
    assert "Someone else changed this organisation" in all_errors
    org_a.refresh_from_db()
    assert org_a.name == "Renamed by admin"
    assert org_a.version == 2
    # The person has to be told: the conflict message is on the page.
    assert b"Someone else changed this organisation" in response.content


@pytest.mark.django_db
def test_settings_cannot_be_changed_by_a_member(member, org_a):
    page = member.client.get(_url("settings"))
    assert page.status_code == 200
    assert b"Only admins and owners" in page.content
    response = member.client.post(_url("settings"), {"name": "Hijacked", "slug": "alpha", "version": 1})
    assert response.status_code == 403
    assert b"needs the admin role" in response.content
    org_a.refresh_from_db()
    assert org_a.name == "Alpha Org"


@pytest.mark.django_db
def test_organisation_pages_are_404_for_outsiders(outsider):
    for name in ("home:dashboard", "members", "settings"):
        assert outsider.client.get(_url(name)).status_code == 404
    assert outsider.client.post(_url("settings"), {"name": "X", "slug": "alpha"}).status_code == 404


# --- members and invitations ------------------------------------------------------------------


@pytest.mark.django_db
def test_members_page_lists_people(admin, member, stakeholder):
    response = admin.client.get(_url("members"))
    assert response.status_code == 200
    for persona in (admin, member, stakeholder):
        assert persona.user.email.encode() in response.content
    assert b"Invite someone" in response.content


@pytest.mark.django_db
def test_members_page_hides_invite_form_from_members(member):
    response = member.client.get(_url("members"))
    assert response.status_code == 200
    assert b"Invite someone" not in response.content


@pytest.mark.django_db
def test_invite_form_sends_email_and_shows_the_link(admin, org_a):
    response = admin.client.post(_url("members"), {"email": "Newcomer@Example.com", "role": Role.MEMBER})
    assert response.status_code == 200
    link = response.context["invite_link"]
    assert link
    assert link.encode() in response.content
    assert b'data-testid="invite-link"' in response.content
    assert "Invitation sent to" in " ".join(_messages(response))

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newcomer@example.com"]
    assert org_a.name in message.subject
    assert link in message.body

    invitation = Invitation.objects.get(organisation=org_a)
    assert invitation.email == "newcomer@example.com"
    assert invitation.role == Role.MEMBER
    assert invitation.is_pending
    # The form is reset, and the invitation is listed as pending.
    assert response.context["form"].is_bound is False
    assert b"newcomer@example.com as member" in response.content


@pytest.mark.django_db
def test_invite_link_lets_a_new_person_join(admin, org_a):
    response = admin.client.post(_url("members"), {"email": "joiner@example.com", "role": Role.STAKEHOLDER})
    path = response.context["invite_link"].split("://", 1)[1]
    path = path[path.index("/") :]
    joiner = User.objects.create_user(email="joiner@example.com", password="Joiner-pass-123")
    client = Client()
    client.force_login(joiner)
    assert client.get(path).status_code == 200
    accepted = client.post(path)
    assert accepted.status_code == 302
    assert accepted["Location"] == _url("home:dashboard")
    assert Membership.objects.get(organisation=org_a, user=joiner).role == Role.STAKEHOLDER
    # The link works once.
    assert Client().get(path).status_code == 404


@pytest.mark.django_db
def test_invite_form_errors(admin, member):
    bad = admin.client.post(_url("members"), {"email": "not-an-email", "role": Role.MEMBER})
    assert bad.status_code == 200
    assert bad.context["form"].errors["email"]
    existing = admin.client.post(_url("members"), {"email": member.user.email, "role": Role.MEMBER})
    assert "already a member" in " ".join(existing.context["form"].errors["email"])
    # An admin may not hand out the owner role.
    too_high = admin.client.post(_url("members"), {"email": "x@example.com", "role": Role.OWNER})
    assert too_high.status_code == 200
    assert "Only an owner" in " ".join(too_high.context["form"].non_field_errors())
    assert b"Only an owner" in too_high.content
    assert mail.outbox == []
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_member_cannot_invite(member):
    response = member.client.post(_url("members"), {"email": "x@example.com", "role": Role.STAKEHOLDER})
    assert response.status_code == 403
    assert b"needs the admin role" in response.content
    assert mail.outbox == []
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_change_role_via_members_form(owner, member):
    url = _url("change_role", member_id=member.membership.pk)
    response = owner.client.post(url, {"role": Role.ADMIN}, follow=True)
    assert response.redirect_chain == [(_url("members"), 302)]
    member.membership.refresh_from_db()
    assert member.membership.role == Role.ADMIN
    assert "Member A is now admin." in _messages(response)
    entry = HistoryEntry.objects.filter(action=HistoryEntry.Action.UPDATED).latest("id")
    assert entry.changes == {"role": {"old": Role.MEMBER, "new": Role.ADMIN}}


@pytest.mark.django_db
def test_change_role_refusals_show_a_message_and_change_nothing(admin, member, stakeholder):
    # An admin cannot make someone an owner.
    url = _url("change_role", member_id=member.membership.pk)
    response = admin.client.post(url, {"role": Role.OWNER}, follow=True)
    assert response.redirect_chain == [(_url("members"), 302)]
    assert "Only an owner can grant or change the owner and admin roles." in _messages(response)
    # An unknown role is refused with a message.
    response = admin.client.post(url, {"role": "emperor"}, follow=True)
    assert "Choose a valid role." in _messages(response)
    # A stakeholder cannot change roles at all.
    response = stakeholder.client.post(url, {"role": Role.STAKEHOLDER}, follow=True)
    assert any("needs the admin role" in m for m in _messages(response))
    member.membership.refresh_from_db()
    assert member.membership.role == Role.MEMBER


@pytest.mark.django_db
def test_change_role_of_someone_in_another_organisation_is_404(owner, outsider):
    assert outsider.membership is not None
    url = _url("change_role", member_id=outsider.membership.pk)
    assert owner.client.post(url, {"role": Role.MEMBER}).status_code == 404
    outsider.membership.refresh_from_db()
    assert outsider.membership.role == Role.OWNER


@pytest.mark.django_db
def test_last_owner_cannot_be_demoted(db):
    solo = User.objects.create_user(email="solo@example.com", password="Solo-pass-123")
    org = create_organisation(solo, "Solo", "solo")
    own = Membership.objects.get(organisation=org, user=solo)
    client = Client()
    client.force_login(solo)
    response = client.post(_url("change_role", "solo", member_id=own.pk), {"role": Role.MEMBER}, follow=True)
    assert any("at least one owner" in m for m in _messages(response))
    own.refresh_from_db()
    assert own.role == Role.OWNER


@pytest.mark.django_db
def test_member_leaves_the_organisation(member, org_a):
    assert member.membership is not None
    page = member.client.get(_url("members"))
    assert b"Leave" in page.content
    response = member.client.post(_url("remove_member", member_id=member.membership.pk))
    assert response.status_code == 302
    assert response["Location"] == reverse("home:home")
    assert not Membership.objects.filter(organisation=org_a, user=member.user).exists()
    # Home now welcomes them, and they no longer see the organisation.
    home = member.client.get(reverse("home:home"))
    assert home.status_code == 200
    assert "You left Alpha Org." in _messages(home)
    assert b"not in any organisation yet" in home.content
    assert member.client.get(_url("home:dashboard")).status_code == 404


@pytest.mark.django_db
def test_member_cannot_remove_someone_else(member, stakeholder):
    assert stakeholder.membership is not None
    response = member.client.post(_url("remove_member", member_id=stakeholder.membership.pk), follow=True)
    assert response.redirect_chain == [(_url("members"), 302)]
    assert any("needs the admin role" in m for m in _messages(response))
    assert Membership.objects.filter(pk=stakeholder.membership.pk).exists()


@pytest.mark.django_db
def test_admin_removes_a_member(admin, member):
    assert member.membership is not None
    response = admin.client.post(_url("remove_member", member_id=member.membership.pk), follow=True)
    assert response.redirect_chain == [(_url("members"), 302)]
    assert "Member removed." in _messages(response)
    assert not Membership.objects.filter(pk=member.membership.pk).exists()


# --- headers and health -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("signed_in", [False, True])
def test_security_headers_on_pages(owner, signed_in):
    client = owner.client if signed_in else Client()
    path = _url("home:dashboard") if signed_in else reverse("accounts:login")
    response = client.get(path)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    directives = [d.strip() for d in csp.split(";")]
    assert "default-src 'self'" in directives
    assert "frame-ancestors 'none'" in directives
    assert all("unsafe-inline" not in d and "unsafe-eval" not in d for d in directives)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_security_headers_on_error_pages():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_healthz_reports_ok_as_json():
    response = Client().get(reverse("core:healthz"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"status": "ok", "database": "ok"}
    assert Client().post(reverse("core:healthz")).status_code == 405
