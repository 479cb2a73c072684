"""Who single sign-on lets in (join by verified domain, by invitation only, linking existing users), password
sign-in switched off, the settings' checks and `truenorth check`'s single sign-on lines."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from conftest import PASSWORD
from tests.oidc_provider import OIDCProvider
from truenorth.accounts import sso
from truenorth.accounts.models import SSOIdentity, User
from truenorth.accounts.tests.sso_fixtures import (
    sign_in_through,
)
from truenorth.conf.sso import check_sso
from truenorth.env import ConfigError
from truenorth.orgs.models import Invitation, Membership
from truenorth.orgs.services import invite


def signed_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    user = User.objects.filter(pk=user_id).first() if user_id else None
    return user.email if user else None


def test_the_default_role_applies_to_people_joining_by_domain(
    provider: OIDCProvider, settings, org_a
) -> None:
    settings.TRUENORTH_OIDC_DEFAULT_ROLE = "stakeholder"
    client = Client()
    assert sign_in_through(client).status_code == 302
    assert Membership.objects.get(organisation=org_a, user__email="ada@example.org").role == "stakeholder"


def test_a_verified_address_of_another_domain_is_refused_when_not_invited(
    provider: OIDCProvider, failures
) -> None:
    provider.user.email = "mallory@elsewhere.example"
    client = Client()
    response = sign_in_through(client)
    assert response.status_code == 403
    assert "ask an admin of your organisation for an invitation" in response.content.decode()
    assert signed_in_as(client) is None and failures == ["oidc"]
    assert not User.objects.filter(email="mallory@elsewhere.example").exists()
    assert not SSOIdentity.objects.exists()


def test_an_unverified_address_neither_joins_nor_links(provider: OIDCProvider, member, failures) -> None:
    provider.user.email_verified = False
    client = Client()
    response = sign_in_through(client)
    assert response.status_code == 403 and "did not confirm your e-mail address" in response.content.decode()
    assert not User.objects.filter(email="ada@example.org").exists()
    # Not even to take over an existing account with that address.
    provider.user.email = member.user.email
    assert sign_in_through(client).status_code == 403
    assert signed_in_as(client) is None and not SSOIdentity.objects.exists()
    assert failures == ["oidc", "oidc"]


def test_invitation_only_refuses_strangers_and_admits_the_invited(
    provider: OIDCProvider, settings, admin, org_a
) -> None:
    settings.TRUENORTH_OIDC_JOIN_DOMAINS = []
    stranger = Client()
    response = sign_in_through(stranger)
    assert response.status_code == 403 and "joining is by invitation only" in response.content.decode()
    assert not User.objects.filter(email="ada@example.org").exists()

    invitation, _ = invite(admin.membership, admin.user, "Ada@Example.org", "stakeholder")
    invited = Client()
    assert sign_in_through(invited).status_code == 302
    assert signed_in_as(invited) == "ada@example.org"
    membership = Membership.objects.get(organisation=org_a, user__email="ada@example.org")
    assert membership.role == "stakeholder"
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None and invitation.accepted_by == membership.user
    assert org_a.history.filter(object_type="orgs.membership", object_id=str(membership.pk)).count() == 1


def test_a_revoked_or_expired_invitation_admits_nobody(provider: OIDCProvider, settings, admin) -> None:
    settings.TRUENORTH_OIDC_JOIN_DOMAINS = []
    invitation, _ = invite(admin.membership, admin.user, "ada@example.org", "member")
    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=invitation.created_at)
    assert sign_in_through(Client()).status_code == 403


def test_an_existing_user_with_the_verified_address_is_linked(provider: OIDCProvider, member, org_a) -> None:
    provider.user.email = member.user.email.upper()
    client = Client()
    assert sign_in_through(client).status_code == 302
    assert signed_in_as(client) == member.user.email
    identity = SSOIdentity.objects.get()
    assert identity.user == member.user and identity.subject == "ada-0001"
    member.user.refresh_from_db()
    assert member.user.check_password(PASSWORD)  # the password is kept
    assert User.objects.count() == 2  # the founder of A and the member: nobody new
    # Later sign-ins go by the identity, even once the provider's address has changed.
    provider.user.email = "ada.renamed@example.org"
    again = Client()
    assert sign_in_through(again).status_code == 302
    assert signed_in_as(again) == member.user.email
    assert SSOIdentity.objects.get().email == "ada.renamed@example.org"
    assert Membership.objects.filter(user=member.user).count() == 1  # no second membership


def test_a_user_linked_to_another_subject_is_not_linked_again(
    provider: OIDCProvider, member, failures
) -> None:
    SSOIdentity.objects.create(user=member.user, issuer=provider.issuer, subject="someone-else")
    provider.user.email = member.user.email
    client = Client()
    response = sign_in_through(client)
    assert response.status_code == 403 and "linked to another account" in response.content.decode()
    assert signed_in_as(client) is None and SSOIdentity.objects.count() == 1


def test_an_existing_user_of_a_join_domain_joins_the_organisation(provider: OIDCProvider, org_a) -> None:
    user = User.objects.create_user(email="ada@example.org", password=PASSWORD)
    assert sign_in_through(Client()).status_code == 302
    assert Membership.objects.get(organisation=org_a, user=user).role == "member"


def test_a_deactivated_user_is_refused(provider: OIDCProvider, member) -> None:
    member.user.is_active = False
    member.user.save()
    provider.user.email = member.user.email
    client = Client()
    assert sign_in_through(client).status_code == 403 and signed_in_as(client) is None


def test_a_missing_join_organisation_is_a_clear_page(provider: OIDCProvider, settings) -> None:
    settings.TRUENORTH_OIDC_ORGANISATION = "no-such-org"
    response = sign_in_through(Client())
    assert response.status_code == 503 and "misconfigured" in response.content.decode()


# --- password sign-in switched off ------------------------------------------------------------


def test_password_sign_in_off_refuses_passwords_but_not_tokens(
    provider: OIDCProvider, settings, member
) -> None:
    settings.TRUENORTH_PASSWORD_SIGN_IN = False
    client = Client()
    login_page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Example SSO" in login_page and 'name="password"' not in login_page
    response = client.post("/accounts/login/", {"email": member.user.email, "password": PASSWORD})
    assert response.status_code == 403 and signed_in_as(client) is None
    assert client.get("/accounts/signup/").status_code == 403
    signup = {"email": "new@a.example", "password": PASSWORD, "name": "New", "organisation": "New Org"}
    assert client.post("/accounts/signup/", signup).status_code == 403
    assert not User.objects.filter(email="new@a.example").exists()
    assert client.get("/accounts/password-reset/").status_code == 403
    assert client.post("/accounts/password-reset/", {"email": member.user.email}).status_code == 403
    assert mail.outbox == []
    assert client.get("/accounts/password-reset/MQ/set-password/").status_code == 403
    # API tokens keep working, and single sign-on signs people in.
    assert member.api().get("/api/v1/me").status_code == 200
    assert sign_in_through(client).status_code == 302 and signed_in_as(client) == "ada@example.org"


def test_password_sign_in_on_keeps_sign_up_and_reset(provider: OIDCProvider) -> None:
    assert Client().get("/accounts/signup/").status_code == 200
    assert Client().get("/accounts/password-reset/").status_code == 200


# --- settings and `truenorth check` -----------------------------------------------------------

GOOD = {
    "issuer": "https://idp.example.com/realms/acme",
    "client_id": "truenorth",
    "client_secret": "secret",
    "scopes": ["openid", "email"],
    "organisation": "acme",
    "join_domains": ["acme.example"],
    "default_role": "member",
    "password_sign_in": True,
}


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"issuer": "http://idp.example.com"}, "TRUENORTH_OIDC_ISSUER: must use https://"),
        ({"issuer": "idp.example.com"}, "TRUENORTH_OIDC_ISSUER: expected an https:// URL"),
        ({"issuer": "https://idp.example.com/?x=1"}, "TRUENORTH_OIDC_ISSUER: no query"),
        ({"client_id": ""}, "TRUENORTH_OIDC_CLIENT_ID: required"),
        ({"client_secret": ""}, "TRUENORTH_OIDC_CLIENT_SECRET: required"),
        ({"scopes": ["email"]}, "TRUENORTH_OIDC_SCOPES: must include 'openid'"),
        ({"organisation": ""}, "TRUENORTH_OIDC_ORGANISATION: required with TRUENORTH_OIDC_JOIN_DOMAINS"),
        ({"organisation": "Not A Slug"}, "TRUENORTH_OIDC_ORGANISATION: expected"),
        ({"join_domains": ["not a domain"]}, "TRUENORTH_OIDC_JOIN_DOMAINS: 'not a domain'"),
        ({"default_role": "owner"}, "TRUENORTH_OIDC_DEFAULT_ROLE: expected member or stakeholder"),
        ({"issuer": "", "password_sign_in": False}, "TRUENORTH_PASSWORD_SIGN_IN: password sign-in can only"),
    ],
)
def test_wrong_settings_are_refused_naming_the_variable(change: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}"):
        check_sso(**{**GOOD, **change})  # type: ignore[arg-type]


def test_good_settings_pass() -> None:
    check_sso(**GOOD)  # type: ignore[arg-type]
    check_sso(**{**GOOD, "issuer": "http://localhost:8080/realms/dev", "join_domains": []})  # type: ignore[arg-type]
    check_sso(**{**GOOD, "issuer": "", "client_id": ""})  # type: ignore[arg-type]


def test_sso_check_reports_reachable_provider_and_policy(provider: OIDCProvider, settings) -> None:
    results = {r.name: r for r in sso.sso_check()}
    assert results["single sign-on"].status == "ok"
    assert provider.issuer in results["single sign-on"].detail
    assert "http://testserver/accounts/sso/callback/" in results["single sign-on"].detail
    assert results["single sign-on policy"].detail == (
        "verified example.org addresses join alpha as member; password sign-in on"
    )


def test_sso_check_reports_problems(provider: OIDCProvider, settings, db) -> None:
    provider.behaviour.discovery_issuer = "https://evil.example"
    settings.TRUENORTH_OIDC_ORGANISATION = "gone"
    statuses = [(r.status, r.detail) for r in sso.sso_check()]
    assert statuses[0][0] == "error" and "names issuer 'https://evil.example'" in statuses[0][1]
    assert statuses[1] == ("error", "TRUENORTH_OIDC_ORGANISATION='gone': no such organisation")
    settings.TRUENORTH_OIDC_DEFAULT_ROLE = "owner"
    assert [r.status for r in sso.sso_check()] == ["error"]
    settings.TRUENORTH_OIDC_ISSUER = ""
    assert [(r.status, r.detail) for r in sso.sso_check()] == [("ok", "off (password sign-in only)")]
