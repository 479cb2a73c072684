"""API behaviour of organisations, members and invitations, plus accepting an invitation on the web."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Invitation, Membership, Organisation, Role
from truenorth.orgs.services import SLUG_RE

if TYPE_CHECKING:
    from conftest import Persona

PASSWORD = "correct-horse-battery-staple"
ORGS = "/api/v1/orgs"


def _post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def _patch(client: Client, path: str, data: Any) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json")


def _fields(response: Any) -> set[str]:
    """The field names of a JSON error response, after checking its shape."""
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    return {e["field"] for e in body["errors"]}


# --- list and create --------------------------------------------------------------------------


def test_list_shows_only_my_organisations_with_my_role(owner, member, outsider):
    mine = owner.api().get(ORGS)
    assert mine.status_code == 200
    assert mine.json() == [
        {
            "slug": "alpha",
            "name": "Alpha Org",
            "created_at": mine.json()[0]["created_at"],
            "version": 1,
            "require_two_factor": False,
            "role": "owner",
        }
    ]
    assert [(o["slug"], o["role"]) for o in member.api().get(ORGS).json()] == [("alpha", "member")]
    assert [(o["slug"], o["role"]) for o in outsider.api().get(ORGS).json()] == [("bravo-secret", "owner")]
    # A read token may list too.
    assert member.api_read().get(ORGS).status_code == 200


def test_list_spans_every_organisation_i_belong_to(owner, org_b):
    Membership.objects.create(organisation=org_b, user=owner.user, role=Role.STAKEHOLDER)
    listed = {o["slug"]: o["role"] for o in owner.api().get(ORGS).json()}
    assert listed == {"alpha": "owner", "bravo-secret": "stakeholder"}


def test_create_organisation_derives_slug_makes_me_owner_and_records_history(member):
    response = _post(member.api(), ORGS, {"name": "Rocket Science Ltd"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "rocket-science-ltd"
    assert body["name"] == "Rocket Science Ltd"
    assert body["role"] == "owner"
    assert body["version"] == 1

    org = Organisation.objects.get(slug="rocket-science-ltd")
    assert Membership.objects.get(organisation=org, user=member.user).role == Role.OWNER
    entries = HistoryEntry.objects.filter(organisation=org)
    created_org = entries.get(object_type="orgs.organisation", object_id=str(org.pk))
    assert created_org.action == HistoryEntry.Action.CREATED
    assert created_org.actor_name == member.user.email
    assert created_org.changes == {
        "name": {"old": None, "new": "Rocket Science Ltd"},
        "slug": {"old": None, "new": "rocket-science-ltd"},
    }
    assert entries.filter(object_type="orgs.membership", action=HistoryEntry.Action.CREATED).count() == 1
    # The new organisation is now in my list.
    assert "rocket-science-ltd" in {o["slug"] for o in member.api().get(ORGS).json()}


def test_create_with_explicit_slug_and_derived_slug_avoids_taken_and_reserved(owner):
    explicit = _post(owner.api(), ORGS, {"name": "Second", "slug": "second-home"})
    assert explicit.status_code == 201
    assert explicit.json()["slug"] == "second-home"
    # The name "Alpha" derives "alpha", which is taken: a free variant is chosen.
    derived = _post(owner.api(), ORGS, {"name": "Alpha"})
    assert derived.status_code == 201
    assert derived.json()["slug"] == "alpha-2"
    # A name deriving a reserved address gets a non-reserved one.
    reserved = _post(owner.api(), ORGS, {"name": "API"})
    assert reserved.status_code == 201
    assert reserved.json()["slug"] == "api-org"


def test_derived_slug_follows_the_same_rule_as_an_explicit_one(owner):
    """A derived address must pass the validation an explicit one does (no underscores)."""
    response = _post(owner.api(), ORGS, {"name": "Team_Rocket"})
    assert response.status_code == 201
    slug = response.json()["slug"]
    assert SLUG_RE.match(slug), f"derived slug {slug!r} would be refused if sent explicitly"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({}, "name"),
        ({"name": "Fine", "slug": "Bad Slug!"}, "slug"),
        ({"name": "Fine", "slug": "-starts-with-hyphen"}, "slug"),
        ({"name": "Fine", "slug": "x" * 61}, "slug"),
        ({"name": "Fine", "colour": "red"}, "colour"),
        ({"name": 123}, "name"),
        ({"name": None}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "Fine", "slug": 42}, "slug"),
    ],
)
def test_create_invalid_input_is_422_naming_the_field(owner, payload, field):
    before = Organisation.objects.count()
    response = _post(owner.api(), ORGS, payload)
    assert response.status_code == 422, response.content
    assert field in _fields(response)
    assert Organisation.objects.count() == before


@pytest.mark.parametrize("slug", ["api", "admin", "new", "invite", "accounts", "static", "switch"])
def test_create_with_reserved_slug_is_refused_naming_slug(owner, slug):
    response = _post(owner.api(), ORGS, {"name": "Reserved", "slug": slug})
    assert response.status_code in (409, 422)
    assert "slug" in _fields(response)
    assert not Organisation.objects.filter(slug=slug).exists()


def test_create_with_taken_slug_is_409_naming_slug(owner, org_b):
    response = _post(owner.api(), ORGS, {"name": "Copycat", "slug": "bravo-secret"})
    assert response.status_code == 409
    assert "slug" in _fields(response)
    assert Organisation.objects.get(slug="bravo-secret").name == "Bravo Secret Org"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"name": "x",}', "application/json"),
        ("", "application/json"),
        ('["a list"]', "application/json"),
        ('"a string"', "application/json"),
        ("name=x", "application/x-www-form-urlencoded"),
        ("\xff\xfe garbage", "application/json"),
    ],
)
def test_malformed_body_is_a_json_4xx(owner, body, content_type):
    response = owner.api().post(ORGS, body, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json")
    assert b"<html" not in response.content.lower()
    assert set(response.json()) == {"detail", "errors"}


def test_creating_needs_a_read_write_token(owner):
    response = _post(owner.api_read(), ORGS, {"name": "Nope"})
    assert response.status_code == 403
    assert not Organisation.objects.filter(name="Nope").exists()


def test_no_token_is_401(db):
    response = _post(Client(), ORGS, {"name": "Anonymous"})
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "errors"}


# --- read and rename --------------------------------------------------------------------------


def test_get_organisation_and_isolation(owner, stakeholder, outsider):
    response = stakeholder.api().get(f"{ORGS}/alpha")
    assert response.status_code == 200
    assert response.json()["role"] == "stakeholder"
    # Another organisation answers 404, exactly like one that does not exist.
    hidden = outsider.api().get(f"{ORGS}/alpha")
    absent = outsider.api().get(f"{ORGS}/no-such-org")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()
    assert b"Alpha" not in hidden.content


def test_patch_with_stale_version_is_409_and_changes_nothing(owner, org_a):
    response = _patch(owner.api(), f"{ORGS}/alpha", {"name": "Too Late", "version": org_a.version + 5})
    assert response.status_code == 409
    assert "version" in _fields(response)
    org_a.refresh_from_db()
    assert org_a.name == "Alpha Org"
    assert org_a.version == 1
    assert not HistoryEntry.objects.filter(
        organisation=org_a, object_type="orgs.organisation", action=HistoryEntry.Action.UPDATED
    ).exists()


def test_patch_with_current_version_renames_and_bumps_version(owner, org_a):
    current = owner.api().get(f"{ORGS}/alpha").json()["version"]
    response = _patch(owner.api(), f"{ORGS}/alpha", {"name": "Alpha Renamed", "version": current})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Alpha Renamed"
    assert response.json()["version"] == current + 1
    org_a.refresh_from_db()
    assert (org_a.name, org_a.version) == ("Alpha Renamed", current + 1)
    entry = HistoryEntry.objects.filter(organisation=org_a, action=HistoryEntry.Action.UPDATED).get()
    assert entry.changes == {"name": {"old": "Alpha Org", "new": "Alpha Renamed"}}
    # The version just used is now stale.
    again = _patch(owner.api(), f"{ORGS}/alpha", {"name": "Third", "version": current})
    assert again.status_code == 409


def test_patch_slug_moves_the_organisation(admin, org_a):
    response = _patch(admin.api(), f"{ORGS}/alpha", {"slug": "alpha-two", "version": 1})
    assert response.status_code == 200
    assert response.json()["slug"] == "alpha-two"
    assert admin.api().get(f"{ORGS}/alpha").status_code == 404
    assert admin.api().get(f"{ORGS}/alpha-two").status_code == 200


def test_patch_to_a_taken_or_invalid_slug_is_refused(owner, org_b):
    taken = _patch(owner.api(), f"{ORGS}/alpha", {"slug": "bravo-secret", "version": 1})
    assert taken.status_code == 409
    assert "slug" in _fields(taken)
    invalid = _patch(owner.api(), f"{ORGS}/alpha", {"slug": "Bad Slug!", "version": 1})
    assert invalid.status_code == 422
    assert "slug" in _fields(invalid)
    wrong_type = _patch(owner.api(), f"{ORGS}/alpha", {"version": "one"})
    assert wrong_type.status_code == 422
    assert "version" in _fields(wrong_type)
    assert Organisation.objects.filter(slug="alpha").exists()


def test_patch_without_change_keeps_version(owner, org_a):
    response = _patch(owner.api(), f"{ORGS}/alpha", {"name": "Alpha Org", "version": 1})
    assert response.status_code == 200
    assert response.json()["version"] == 1


@pytest.mark.parametrize("persona", ["member", "stakeholder"])
def test_patch_needs_admin(request, persona, org_a):
    who: Persona = request.getfixturevalue(persona)
    response = _patch(who.api(), f"{ORGS}/alpha", {"name": "Mine Now", "version": 1})
    assert response.status_code == 403
    org_a.refresh_from_db()
    assert org_a.name == "Alpha Org"


def test_outsider_cannot_patch(outsider, org_a):
    response = _patch(outsider.api(), f"{ORGS}/alpha", {"name": "Taken Over", "version": 1})
    assert response.status_code == 404
    org_a.refresh_from_db()
    assert org_a.name == "Alpha Org"


# --- members ----------------------------------------------------------------------------------


def test_members_list(owner, admin, member, stakeholder, outsider):
    response = stakeholder.api().get(f"{ORGS}/alpha/members")
    assert response.status_code == 200
    rows = response.json()
    assert [r["email"] for r in rows] == sorted(
        [
            "founder@a.example",
            "owner@a.example",
            "admin@a.example",
            "member@a.example",
            "stakeholder@a.example",
        ]
    )
    by_email = {r["email"]: r for r in rows}
    assert by_email["member@a.example"]["role"] == "member"
    assert by_email["member@a.example"]["id"] == member.membership.pk
    assert by_email["admin@a.example"]["name"] == "Admin A"
    assert set(rows[0]) == {"id", "email", "name", "role", "joined_at"}
    assert "outsider@b.example" not in by_email
    assert outsider.api().get(f"{ORGS}/alpha/members").status_code == 404


def test_change_role(owner, member, org_a):
    path = f"{ORGS}/alpha/members/{member.membership.pk}"
    response = _patch(owner.api(), path, {"role": "admin"})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "admin"
    member.membership.refresh_from_db()
    assert member.membership.role == Role.ADMIN
    entry = HistoryEntry.objects.get(
        organisation=org_a,
        object_type="orgs.membership",
        object_id=str(member.membership.pk),
        action=HistoryEntry.Action.UPDATED,
    )
    assert entry.changes == {"role": {"old": "member", "new": "admin"}}


def test_change_role_rules(owner, admin, member, stakeholder, outsider):
    path = f"{ORGS}/alpha/members/{member.membership.pk}"
    # Admins manage members and stakeholders...
    assert _patch(admin.api(), path, {"role": "stakeholder"}).status_code == 200
    # ...but only owners grant admin.
    assert _patch(admin.api(), path, {"role": "admin"}).status_code == 403
    # Members and stakeholders cannot change roles.
    assert _patch(stakeholder.api(), path, {"role": "member"}).status_code == 403
    # Unknown roles and unknown fields are 422 naming the field.
    bad_role = _patch(owner.api(), path, {"role": "emperor"})
    assert bad_role.status_code == 422
    assert "role" in _fields(bad_role)
    extra = _patch(owner.api(), path, {"role": "member", "is_boss": True})
    assert extra.status_code == 422
    assert "is_boss" in _fields(extra)
    # Another organisation's member, or someone else changing ours: 404.
    assert _patch(outsider.api(), path, {"role": "owner"}).status_code == 404
    other = Membership.objects.get(user=outsider.user)
    assert _patch(owner.api(), f"{ORGS}/alpha/members/{other.pk}", {"role": "member"}).status_code == 404
    member.membership.refresh_from_db()
    assert member.membership.role == Role.STAKEHOLDER


def test_last_owner_cannot_be_demoted(org_a):
    founder = User.objects.get(email="founder@a.example")
    membership = Membership.objects.get(user=founder, organisation=org_a)
    client = _token_client(founder)
    response = _patch(client, f"{ORGS}/alpha/members/{membership.pk}", {"role": "admin"})
    assert response.status_code == 409
    assert "role" in _fields(response)
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def _token_client(user: User) -> Client:
    from truenorth.accounts.services import create_token

    _, raw = create_token(user, "t", "read-write")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


# --- invitations ------------------------------------------------------------------------------


def _invite(persona: Persona, email: str = "new.person@example.com", role: str = "member") -> Any:
    return _post(persona.api(), f"{ORGS}/alpha/invitations", {"email": email, "role": role})


def test_invite_returns_link_and_emails_it(admin):
    mail.outbox.clear()
    response = _invite(admin, "New.Person@Example.com", "stakeholder")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "stakeholder"
    link = body["link"]
    assert link.startswith(f"{settings.SITE_URL}/invite/")
    assert set(body) == {"id", "email", "role", "created_at", "expires_at", "link"}
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    expected = timezone.now() + dt.timedelta(days=settings.INVITATION_VALID_DAYS)
    assert abs((expires - expected).total_seconds()) < 60

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert link in message.body
    assert "Alpha Org" in message.subject

    # Only a hash of the link's token is stored.
    raw = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(pk=body["id"])
    assert invitation.token_hash != raw
    assert raw not in invitation.token_hash


def test_invitation_list_and_revoke(admin, member):
    first = _invite(admin, "one@example.com").json()
    second = _invite(admin, "two@example.com", "stakeholder").json()
    listed = admin.api().get(f"{ORGS}/alpha/invitations")
    assert listed.status_code == 200
    assert {(i["email"], i["role"]) for i in listed.json()} == {
        ("one@example.com", "member"),
        ("two@example.com", "stakeholder"),
    }
    assert all("link" not in i for i in listed.json())

    revoked = admin.api().delete(f"{ORGS}/alpha/invitations/{first['id']}")
    assert revoked.status_code == 204
    assert revoked.content == b""
    assert [i["id"] for i in admin.api().get(f"{ORGS}/alpha/invitations").json()] == [second["id"]]
    assert Invitation.objects.get(pk=first["id"]).revoked_at is not None
    # Revoking again is harmless.
    assert admin.api().delete(f"{ORGS}/alpha/invitations/{first['id']}").status_code == 204

    # Members may neither list, invite nor revoke.
    assert member.api().get(f"{ORGS}/alpha/invitations").status_code == 403
    assert _invite(member, "three@example.com").status_code == 403
    assert member.api().delete(f"{ORGS}/alpha/invitations/{second['id']}").status_code == 403
    assert Invitation.objects.get(pk=second["id"]).revoked_at is None


def test_invitation_validation(owner, admin, member):
    bad_email = _invite(admin, "not-an-email")
    assert bad_email.status_code == 422
    assert "email" in _fields(bad_email)
    bad_role = _invite(admin, "x@example.com", "emperor")
    assert bad_role.status_code == 422
    assert "role" in _fields(bad_role)
    already = _invite(admin, member.user.email)
    assert already.status_code == 409
    assert "email" in _fields(already)
    # Only owners may invite admins or owners.
    assert _invite(admin, "boss@example.com", "admin").status_code == 403
    assert _invite(owner, "boss@example.com", "admin").status_code == 201


def test_outsider_cannot_see_or_revoke_invitations(admin, outsider):
    invitation = _invite(admin).json()
    assert outsider.api().get(f"{ORGS}/alpha/invitations").status_code == 404
    assert outsider.api().delete(f"{ORGS}/alpha/invitations/{invitation['id']}").status_code == 404
    # Nor through their own organisation's address.
    assert outsider.api().delete(f"{ORGS}/bravo-secret/invitations/{invitation['id']}").status_code == 404
    assert Invitation.objects.get(pk=invitation["id"]).revoked_at is None


def _invite_path(link: str) -> str:
    path = link.removeprefix(settings.SITE_URL)
    assert re.fullmatch(r"/invite/[A-Za-z0-9_-]+/", path), path
    return path


def test_new_user_signs_up_and_accepts_invitation(admin, org_a):
    path = _invite_path(_invite(admin, "newbie@example.com", "stakeholder").json()["link"])
    browser = Client()
    landing = browser.get(path)
    assert landing.status_code == 200
    assert b"Alpha Org" in landing.content
    # Posting without being signed in joins nothing.
    browser.post(path)
    assert not Membership.objects.filter(user__email="newbie@example.com").exists()

    signed_up = browser.post(
        f"/accounts/signup/?next={path}",
        {
            "name": "Newbie",
            "email": "newbie@example.com",
            "password": PASSWORD,
            "organisation": "",
            "next": path,
        },
    )
    assert signed_up.status_code == 302, signed_up.content
    assert signed_up["Location"] == path

    accepted = browser.post(path)
    assert accepted.status_code == 302
    assert accepted["Location"] == "/o/alpha/"
    user = User.objects.get(email="newbie@example.com")
    membership = Membership.objects.get(organisation=org_a, user=user)
    assert membership.role == Role.STAKEHOLDER
    assert HistoryEntry.objects.filter(
        organisation=org_a, object_type="orgs.membership", object_id=str(membership.pk)
    ).exists()
    assert browser.get("/o/alpha/").status_code == 200
    # The link is used up.
    again = Client().get(path)
    assert again.status_code == 404
    assert b"not valid" in again.content


def test_existing_user_signs_in_and_accepts_invitation(admin, outsider, org_a):
    path = _invite_path(_invite(admin, outsider.user.email, "member").json()["link"])
    browser = Client()
    signed_in = browser.post(
        f"/accounts/login/?next={path}", {"email": outsider.user.email, "password": PASSWORD, "next": path}
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == path
    assert browser.post(path).status_code == 302
    assert Membership.objects.get(organisation=org_a, user=outsider.user).role == Role.MEMBER
    assert {o["slug"] for o in outsider.api().get(ORGS).json()} == {"alpha", "bravo-secret"}


def test_expired_invitation_is_not_valid(admin, member):
    body = _invite(admin, "late@example.com").json()
    Invitation.objects.filter(pk=body["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    path = _invite_path(body["link"])
    for client in (Client(), member.client):
        page = client.get(path)
        assert page.status_code == 404
        assert b"not valid" in page.content
    assert member.client.post(path).status_code == 404
    assert Membership.objects.filter(user=member.user).count() == 1
    # Expired invitations are no longer listed as pending.
    assert admin.api().get(f"{ORGS}/alpha/invitations").json() == []


def test_revoked_invitation_is_not_valid(admin, outsider, org_a):
    body = _invite(admin, outsider.user.email).json()
    assert admin.api().delete(f"{ORGS}/alpha/invitations/{body['id']}").status_code == 204
    path = _invite_path(body["link"])
    page = outsider.client.get(path)
    assert page.status_code == 404
    assert b"not valid" in page.content
    assert outsider.client.post(path).status_code == 404
    assert not Membership.objects.filter(organisation=org_a, user=outsider.user).exists()


def test_unknown_invitation_token_is_not_valid(db):
    page = Client().get("/invite/not-a-real-token/")
    assert page.status_code == 404
    assert b"not valid" in page.content


@pytest.mark.django_db
def test_text_with_a_nul_character_is_a_422_naming_the_field(owner):
    # PostgreSQL cannot store NUL in text: it must be refused as bad input, never reach the database.
    response = owner.api().post("/api/v1/orgs", {"name": "Bad\x00name"}, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    assert "NUL" in response.json()["errors"][0]["message"]
