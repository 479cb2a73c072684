"""Roles inside one organisation: who may manage members, invitations and settings, on the web and
through the API, and what a read-only token may do. Every refusal must also leave nothing changed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from truenorth.accounts.models import APIToken, User
from truenorth.accounts.services import create_token
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Invitation, Membership, Organisation, Role

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

    from conftest import Persona

ORG = "/api/v1/orgs/alpha"


def state(org: Organisation) -> dict[str, Any]:
    org = Organisation.objects.get(pk=org.pk)
    return {
        "organisation": (org.name, org.slug, org.version),
        "memberships": sorted(
            Membership.objects.filter(organisation=org).values_list("id", "user_id", "role")
        ),
        "invitations": sorted(
            Invitation.objects.filter(organisation=org).values_list("id", "email", "role", "revoked_at")
        ),
        "history": HistoryEntry.objects.filter(organisation=org).count(),
    }


def role_of(persona: Persona) -> str:
    assert persona.membership is not None
    return Membership.objects.get(pk=persona.membership.pk).role


def mid(persona: Persona) -> int:
    assert persona.membership is not None
    return persona.membership.pk


def send(client: Client, method: str, url: str, body: dict[str, Any] | None = None) -> Response:
    call = getattr(client, method)
    if body is None:
        response: Response = call(url)
    else:
        response = call(url, json.dumps(body), content_type="application/json")
    return response


def assert_refused_on_the_web(response: Response, message: str) -> None:
    """A refused form must say so: a 403 page, or the page shown again with the refusal on it.

    Answering 200 with a page that does not mention the refusal looks to the user (and to any script)
    as if the change had been accepted.
    """
    body = response.content.decode()
    assert response.status_code == 403 or (response.status_code == 200 and message in body), (
        f"answered {response.status_code} without telling the user the change was refused "
        f"(expected a 403 page or the message {message!r} on the page)"
    )


def assert_json_error(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    assert isinstance(data.get("detail"), str) and data["detail"], data
    assert isinstance(data.get("errors"), list), data
    return data


@pytest.fixture
def invitation(org_a: Organisation, owner: Persona) -> Invitation:
    response = send(
        owner.api(), "post", f"{ORG}/invitations", {"email": "pending@a.example", "role": "member"}
    )
    assert response.status_code == 201, response.content
    mail.outbox.clear()
    return Invitation.objects.get(pk=response.json()["id"])


@pytest.fixture
def owner_is_the_only_owner(org_a: Organisation, owner: Persona) -> Persona:
    """Organisation A is founded by someone else; step them down so the owner persona is the last owner."""
    Membership.objects.filter(organisation=org_a, role=Role.OWNER).exclude(user=owner.user).update(
        role=Role.ADMIN
    )
    assert Membership.objects.filter(organisation=org_a, role=Role.OWNER).count() == 1
    return owner


# --- stakeholders read, never write -----------------------------------------------------------


def test_a_stakeholder_can_read_the_organisation_its_members_and_its_history(stakeholder: Persona) -> None:
    for url in (ORG, f"{ORG}/members", f"{ORG}/history"):
        assert stakeholder.api().get(url).status_code == 200, url
    for page in ("home:dashboard", "orgs:members", "orgs:settings"):
        assert stakeholder.client.get(reverse(page, args=["alpha"])).status_code == 200, page


def test_a_stakeholder_cannot_invite_anyone(org_a: Organisation, stakeholder: Persona) -> None:
    before = state(org_a)
    response = send(
        stakeholder.api(), "post", f"{ORG}/invitations", {"email": "x@a.example", "role": "member"}
    )
    assert "admin" in assert_json_error(response, 403)["detail"]
    assert state(org_a) == before
    assert mail.outbox == []


def test_a_stakeholder_cannot_invite_anyone_on_the_web(org_a: Organisation, stakeholder: Persona) -> None:
    before = state(org_a)
    url = reverse("orgs:members", args=["alpha"])
    response = stakeholder.client.post(url, {"email": "x@a.example", "role": "member"})
    assert_refused_on_the_web(response, "needs the admin role")
    assert state(org_a) == before
    assert mail.outbox == []


def test_a_stakeholder_cannot_see_pending_invitations(stakeholder: Persona, invitation: Invitation) -> None:
    assert_json_error(stakeholder.api().get(f"{ORG}/invitations"), 403)
    assert (
        invitation.email
        not in stakeholder.client.get(reverse("orgs:members", args=["alpha"])).content.decode()
    )


def test_a_stakeholder_cannot_change_anyones_role(
    org_a: Organisation, stakeholder: Persona, member: Persona
) -> None:
    before = state(org_a)
    for target, role in ((member, "stakeholder"), (stakeholder, "owner")):
        response = send(stakeholder.api(), "patch", f"{ORG}/members/{mid(target)}", {"role": role})
        assert_json_error(response, 403)
    assert state(org_a) == before


def test_a_stakeholder_cannot_change_anyones_role_on_the_web(
    org_a: Organisation, stakeholder: Persona, member: Persona
) -> None:
    before = state(org_a)
    for target, role in ((member, "stakeholder"), (stakeholder, "owner")):
        url = reverse("orgs:change_role", args=["alpha", mid(target)])
        response = stakeholder.client.post(url, {"role": role}, follow=True)
        assert_refused_on_the_web(response, "needs the admin role")
    assert state(org_a) == before


def test_a_stakeholder_cannot_rename_the_organisation(org_a: Organisation, stakeholder: Persona) -> None:
    before = state(org_a)
    response = send(stakeholder.api(), "patch", ORG, {"name": "Renamed", "slug": "renamed", "version": 1})
    assert_json_error(response, 403)
    assert state(org_a) == before


def test_a_stakeholder_cannot_change_the_settings_on_the_web(
    org_a: Organisation, stakeholder: Persona
) -> None:
    before = state(org_a)
    url = reverse("orgs:settings", args=["alpha"])
    response = stakeholder.client.post(url, {"name": "Renamed", "slug": "renamed", "version": "1"})
    assert_refused_on_the_web(response, "needs the admin role")
    assert state(org_a) == before


def test_a_stakeholder_cannot_remove_a_member_or_revoke_an_invitation(
    org_a: Organisation, stakeholder: Persona, member: Persona, invitation: Invitation
) -> None:
    before = state(org_a)
    assert_json_error(send(stakeholder.api(), "delete", f"{ORG}/members/{mid(member)}"), 403)
    assert_json_error(send(stakeholder.api(), "delete", f"{ORG}/invitations/{invitation.pk}"), 403)
    stakeholder.client.post(reverse("orgs:remove_member", args=["alpha", mid(member)]))
    stakeholder.client.post(reverse("orgs:revoke_invitation", args=["alpha", invitation.pk]))
    assert state(org_a) == before


# --- members edit content, not people ---------------------------------------------------------


def test_a_member_cannot_manage_members(
    org_a: Organisation, member: Persona, stakeholder: Persona, invitation: Invitation
) -> None:
    before = state(org_a)
    api = member.api()
    assert_json_error(
        send(api, "post", f"{ORG}/invitations", {"email": "x@a.example", "role": "stakeholder"}), 403
    )
    assert_json_error(send(api, "patch", f"{ORG}/members/{mid(stakeholder)}", {"role": "member"}), 403)
    assert_json_error(send(api, "patch", f"{ORG}/members/{mid(member)}", {"role": "admin"}), 403)
    assert_json_error(send(api, "delete", f"{ORG}/members/{mid(stakeholder)}"), 403)
    assert_json_error(send(api, "delete", f"{ORG}/invitations/{invitation.pk}"), 403)
    assert_json_error(send(api, "patch", ORG, {"name": "Renamed", "version": 1}), 403)
    assert state(org_a) == before
    assert mail.outbox == []


def test_a_member_cannot_manage_members_on_the_web(
    org_a: Organisation, member: Persona, stakeholder: Persona, invitation: Invitation
) -> None:
    before = state(org_a)
    c = member.client
    c.post(reverse("orgs:members", args=["alpha"]), {"email": "x@a.example", "role": "stakeholder"})
    c.post(reverse("orgs:change_role", args=["alpha", mid(stakeholder)]), {"role": "member"})
    c.post(reverse("orgs:change_role", args=["alpha", mid(member)]), {"role": "owner"})
    c.post(reverse("orgs:remove_member", args=["alpha", mid(stakeholder)]))
    c.post(reverse("orgs:revoke_invitation", args=["alpha", invitation.pk]))
    c.post(reverse("orgs:settings", args=["alpha"]), {"name": "Renamed", "slug": "renamed", "version": "1"})
    assert state(org_a) == before
    assert mail.outbox == []


def test_a_member_can_leave_the_organisation(org_a: Organisation, member: Persona) -> None:
    assert send(member.api(), "delete", f"{ORG}/members/{mid(member)}").status_code == 204
    assert not Membership.objects.filter(organisation=org_a, user=member.user).exists()


# --- admins manage members and stakeholders, not owners and admins ----------------------------


@pytest.mark.parametrize("role", ["member", "stakeholder"])
def test_an_admin_can_invite_members_and_stakeholders(org_a: Organisation, admin: Persona, role: str) -> None:
    response = send(admin.api(), "post", f"{ORG}/invitations", {"email": "new@a.example", "role": role})
    assert response.status_code == 201, response.content
    assert response.json()["link"].startswith("http")
    assert Invitation.objects.filter(organisation=org_a, email="new@a.example", role=role).exists()
    assert [m.to for m in mail.outbox] == [["new@a.example"]]


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_admin_cannot_invite_an_admin_or_an_owner(org_a: Organisation, admin: Persona, role: str) -> None:
    before = state(org_a)
    response = send(admin.api(), "post", f"{ORG}/invitations", {"email": "new@a.example", "role": role})
    assert "owner" in assert_json_error(response, 403)["detail"]
    web = admin.client.post(reverse("orgs:members", args=["alpha"]), {"email": "new@a.example", "role": role})
    assert "Only an owner" in web.content.decode()
    assert state(org_a) == before
    assert mail.outbox == []


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_admin_cannot_grant_the_admin_or_owner_role(
    org_a: Organisation, admin: Persona, member: Persona, role: str
) -> None:
    before = state(org_a)
    assert_json_error(send(admin.api(), "patch", f"{ORG}/members/{mid(member)}", {"role": role}), 403)
    admin.client.post(reverse("orgs:change_role", args=["alpha", mid(member)]), {"role": role})
    assert state(org_a) == before


def test_an_admin_cannot_make_themselves_owner(org_a: Organisation, admin: Persona) -> None:
    before = state(org_a)
    assert_json_error(send(admin.api(), "patch", f"{ORG}/members/{mid(admin)}", {"role": "owner"}), 403)
    assert state(org_a) == before


def test_an_admin_cannot_demote_or_remove_an_owner_or_another_admin(
    org_a: Organisation, admin: Persona, owner: Persona
) -> None:
    other_admin = Membership.objects.create(
        organisation=org_a,
        user=User.objects.create_user(email="admin2@a.example", password="x" * 12),
        role=Role.ADMIN,
    )
    before = state(org_a)
    api = admin.api()
    for target in (mid(owner), other_admin.pk):
        assert_json_error(send(api, "patch", f"{ORG}/members/{target}", {"role": "member"}), 403)
        assert_json_error(send(api, "delete", f"{ORG}/members/{target}"), 403)
    assert state(org_a) == before


def test_an_admin_can_change_a_members_role_and_remove_them(
    org_a: Organisation, admin: Persona, member: Persona, stakeholder: Persona
) -> None:
    response = send(admin.api(), "patch", f"{ORG}/members/{mid(member)}", {"role": "stakeholder"})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "stakeholder"
    assert role_of(member) == Role.STAKEHOLDER
    assert send(admin.api(), "delete", f"{ORG}/members/{mid(stakeholder)}").status_code == 204
    assert not Membership.objects.filter(organisation=org_a, user=stakeholder.user).exists()


def test_an_admin_can_rename_the_organisation_and_revoke_invitations(
    org_a: Organisation, admin: Persona, invitation: Invitation
) -> None:
    response = send(admin.api(), "patch", ORG, {"name": "Alpha Renamed", "version": 1})
    assert response.status_code == 200, response.content
    assert Organisation.objects.get(pk=org_a.pk).name == "Alpha Renamed"
    assert send(admin.api(), "delete", f"{ORG}/invitations/{invitation.pk}").status_code == 204
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


# --- owners may do everything -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_owner_can_invite_admins_and_owners(org_a: Organisation, owner: Persona, role: str) -> None:
    response = send(owner.api(), "post", f"{ORG}/invitations", {"email": "new@a.example", "role": role})
    assert response.status_code == 201, response.content
    assert Invitation.objects.filter(organisation=org_a, email="new@a.example", role=role).exists()


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_owner_can_grant_the_admin_and_owner_roles(owner: Persona, member: Persona, role: str) -> None:
    response = send(owner.api(), "patch", f"{ORG}/members/{mid(member)}", {"role": role})
    assert response.status_code == 200, response.content
    assert role_of(member) == role


def test_an_owner_can_grant_roles_on_the_web(owner: Persona, member: Persona) -> None:
    response = owner.client.post(reverse("orgs:change_role", args=["alpha", mid(member)]), {"role": "admin"})
    assert response.status_code == 302
    assert role_of(member) == Role.ADMIN


def test_an_owner_can_demote_and_remove_an_admin(org_a: Organisation, owner: Persona, admin: Persona) -> None:
    assert send(owner.api(), "patch", f"{ORG}/members/{mid(admin)}", {"role": "member"}).status_code == 200
    assert role_of(admin) == Role.MEMBER
    assert send(owner.api(), "delete", f"{ORG}/members/{mid(admin)}").status_code == 204
    assert not Membership.objects.filter(organisation=org_a, user=admin.user).exists()


# --- the last owner ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "member", "stakeholder"])
def test_the_last_owner_cannot_be_demoted(
    org_a: Organisation, owner_is_the_only_owner: Persona, role: str
) -> None:
    owner = owner_is_the_only_owner
    before = state(org_a)
    response = send(owner.api(), "patch", f"{ORG}/members/{mid(owner)}", {"role": role})
    data = assert_json_error(response, 409)
    assert "owner" in data["detail"]
    assert state(org_a) == before


def test_the_last_owner_cannot_be_demoted_on_the_web(
    org_a: Organisation, owner_is_the_only_owner: Persona
) -> None:
    owner = owner_is_the_only_owner
    before = state(org_a)
    url = reverse("orgs:change_role", args=["alpha", mid(owner)])
    response = owner.client.post(url, {"role": "admin"}, follow=True)
    assert "at least one owner" in response.content.decode()
    assert state(org_a) == before


def test_the_last_owner_cannot_be_removed(org_a: Organisation, owner_is_the_only_owner: Persona) -> None:
    owner = owner_is_the_only_owner
    before = state(org_a)
    assert_json_error(send(owner.api(), "delete", f"{ORG}/members/{mid(owner)}"), 409)
    response = owner.client.post(reverse("orgs:remove_member", args=["alpha", mid(owner)]), follow=True)
    assert "last owner" in response.content.decode()
    assert state(org_a) == before


def test_an_owner_can_step_down_while_another_owner_remains(org_a: Organisation, owner: Persona) -> None:
    assert Membership.objects.filter(organisation=org_a, role=Role.OWNER).count() == 2
    assert send(owner.api(), "patch", f"{ORG}/members/{mid(owner)}", {"role": "admin"}).status_code == 200
    founder = Membership.objects.get(organisation=org_a, role=Role.OWNER)
    # ... and now the founder is the last owner and cannot step down.
    founder_token = Client(HTTP_AUTHORIZATION=f"Bearer {_token_for(founder)}")
    assert_json_error(send(founder_token, "patch", f"{ORG}/members/{founder.pk}", {"role": "admin"}), 409)
    assert_json_error(send(founder_token, "delete", f"{ORG}/members/{founder.pk}"), 409)


def _token_for(membership: Membership) -> str:
    return create_token(membership.user, "test", "read-write")[1]


# --- read-only tokens -------------------------------------------------------------------------


def _writes(
    member_id: int, invitation_id: int, token_id: int
) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("patch", ORG, {"name": "Renamed"}),
        ("post", "/api/v1/orgs", {"name": "Another"}),
        ("post", f"{ORG}/invitations", {"email": "new@a.example", "role": "member"}),
        ("delete", f"{ORG}/invitations/{invitation_id}", None),
        ("patch", f"{ORG}/members/{member_id}", {"role": "stakeholder"}),
        ("delete", f"{ORG}/members/{member_id}", None),
        ("post", "/api/v1/tokens", {"name": "escalate", "scope": "read-write"}),
        ("delete", f"/api/v1/tokens/{token_id}", None),
    ]


def test_a_read_only_token_cannot_post_patch_or_delete(
    org_a: Organisation, owner: Persona, member: Persona, invitation: Invitation
) -> None:
    tokens_before = sorted(APIToken.objects.values_list("id", "revoked_at"))
    before = state(org_a)
    token_id = APIToken.objects.get(user=owner.user, scope="read-write").pk
    for method, url, body in _writes(mid(member), invitation.pk, token_id):
        response = send(owner.api_read(), method, url, body)
        data = assert_json_error(response, 403)
        assert "read-only" in data["detail"], (method, url, data)
    assert state(org_a) == before
    assert sorted(APIToken.objects.values_list("id", "revoked_at")) == tokens_before
    assert Organisation.objects.count() == 1
    assert mail.outbox == []


def test_a_read_only_token_can_read(owner: Persona, invitation: Invitation) -> None:
    for url in (
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/orgs",
        ORG,
        f"{ORG}/members",
        f"{ORG}/invitations",
        f"{ORG}/history",
    ):
        response = owner.api_read().get(url)
        assert response.status_code == 200, (url, response.content)


def test_a_read_write_token_may_do_what_its_owner_may_do(owner: Persona, member: Persona) -> None:
    # The counterpart of the read-only refusals above, so they cannot pass because writes are broken.
    response = send(owner.api(), "patch", f"{ORG}/members/{mid(member)}", {"role": "stakeholder"})
    assert response.status_code == 200, response.content
