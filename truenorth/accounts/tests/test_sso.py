"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider.py, authlib's server over
HTTP): discovery, the authorisation code flow with PKCE, state and nonce, and the ID token checks."""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests
from django.test import Client

from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider
from truenorth.accounts import sso
from truenorth.accounts.models import SSOIdentity, User
from truenorth.accounts.tests.sso_fixtures import (
    CALLBACK,
    at_provider,
    callback,
    query_of,
    sign_in_through,
    start,
)
from truenorth.orgs.models import Membership


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.filter(pk=user_id).first() if user_id else None


def test_discovery_reads_the_providers_endpoints_and_keys(provider: OIDCProvider) -> None:
    cfg = sso.config()
    assert cfg is not None
    found = sso.provider(cfg)
    assert found.issuer == provider.issuer
    assert found.authorization_endpoint == provider.issuer + "/authorize"
    assert found.token_endpoint == provider.issuer + "/token"
    assert found.algorithms == ("RS256",)
    assert [key.kid for key in found.keys.keys] == ["test-key-1"]


def test_discovery_naming_another_issuer_is_never_followed(provider: OIDCProvider, failures) -> None:
    provider.behaviour.discovery_issuer = "https://evil.example/realms/truenorth"
    response = Client().get("/accounts/sso/login/")
    assert response.status_code == 502
    assert "could not be reached" in response.content.decode()


def test_the_authorisation_request_has_state_nonce_and_an_s256_challenge(provider: OIDCProvider) -> None:
    url = start(Client())
    assert url.startswith(provider.issuer + "/authorize?")
    params = query_of(url)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == CALLBACK
    assert set(params["scope"].split()) == {"openid", "email", "profile"}
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32 and len(params["code_challenge"]) == 43


def test_a_new_person_from_a_join_domain_signs_in_and_joins_as_member(
    provider: OIDCProvider, org_a, failures
) -> None:
    client = Client()
    response = sign_in_through(client)
    assert response.status_code == 302 and response["Location"] == "/"
    user = signed_in_user(client)
    assert user is not None and user.email == "ada@example.org" and user.name == "Ada Lovelace"
    assert not user.has_usable_password()
    assert client.session[sso.SIGN_IN_METHOD_KEY] == "oidc"
    identity = SSOIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "ada-0001")
    membership = Membership.objects.get(organisation=org_a, user=user)
    assert membership.role == "member"
    entry = org_a.history.get(object_type="orgs.membership", object_id=str(membership.pk))
    assert entry.action == "created" and entry.changes == {"role": {"old": None, "new": "member"}}
    assert client.get("/", follow=True).redirect_chain[-1][0] == f"/o/{org_a.slug}/"
    assert failures == []


def test_the_provider_checks_the_pkce_verifier_it_receives(provider: OIDCProvider) -> None:
    client = Client()
    url = start(client)
    challenge = query_of(url)["code_challenge"]
    callback(client, at_provider(url))
    assert signed_in_user(client) is not None
    (sent,) = provider.token_requests
    digest = hashlib.sha256(sent["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    # The provider refuses a code presented with another verifier.
    code = query_of(at_provider(start(Client())))["code"]
    answer = requests.post(
        provider.issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": "x" * 50,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_a_callback_whose_verifier_does_not_match_signs_nobody_in(provider: OIDCProvider, failures) -> None:
    client = Client()
    url = start(client)
    session = client.session
    flows = session[sso.FLOWS_KEY]
    flows[query_of(url)["state"]]["verifier"] = "a-verifier-of-someone-else-" + "y" * 30
    session[sso.FLOWS_KEY] = flows
    session.save()
    response = callback(client, at_provider(url))
    assert response.status_code == 403
    assert signed_in_user(client) is None and failures == ["oidc"]


def test_the_provider_refuses_a_request_without_pkce(provider: OIDCProvider) -> None:
    params = query_of(start(Client()))
    del params["code_challenge"], params["code_challenge_method"]
    answer = requests.get(provider.issuer + "/authorize", params=params, allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and "error=invalid_request" in answer.headers["Location"]


@pytest.mark.parametrize(
    ("behaviour", "value"),
    [
        ("audience", "another-client"),
        ("expired", True),
        ("wrong_key", True),
        ("issuer", "https://idp.example/realms/other"),
    ],
    ids=["wrong audience", "expired", "bad signature", "wrong issuer"],
)
def test_an_id_token_that_fails_a_check_is_refused(
    provider: OIDCProvider, failures, behaviour: str, value: object
) -> None:
    setattr(provider.behaviour, behaviour, value)
    client = Client()
    response = sign_in_through(client)
    assert response.status_code == 403
    assert "could not be verified" in response.content.decode()
    assert signed_in_user(client) is None
    assert not User.objects.filter(email="ada@example.org").exists()
    assert failures == ["oidc"]


def test_a_token_the_provider_signed_right_is_accepted_after_those(provider: OIDCProvider) -> None:
    provider.behaviour.expired = True
    assert sign_in_through(Client()).status_code == 403
    provider.behaviour.expired = False
    client = Client()
    assert sign_in_through(client).status_code == 302 and signed_in_user(client) is not None


def test_a_callback_with_another_state_is_refused(provider: OIDCProvider, failures) -> None:
    client = Client()
    location = at_provider(start(client))
    state = query_of(location)["state"]
    response = callback(client, location.replace(f"state={state}", "state=forged-state"))
    assert response.status_code == 400 and signed_in_user(client) is None
    # Nor does the right callback work in another browser (the state lives in the session).
    other = Client()
    assert callback(other, location).status_code == 400 and signed_in_user(other) is None
    assert failures == ["oidc", "oidc"]
    # A state is good once.
    assert callback(client, location).status_code == 302
    assert callback(client, location).status_code == 400


def test_the_providers_error_answer_is_shown(provider: OIDCProvider, failures) -> None:
    client = Client()
    state = query_of(start(client))["state"]
    response = client.get(
        "/accounts/sso/callback/",
        {"state": state, "error": "access_denied", "error_description": "Not allowed"},
    )
    assert response.status_code == 403
    assert "did not sign you in: Not allowed" in response.content.decode()
    assert failures == ["oidc"]


def test_an_unreachable_provider_is_a_clear_page_not_an_error(provider: OIDCProvider, settings) -> None:
    settings.TRUENORTH_OIDC_ISSUER = "http://127.0.0.1:9/realms/none"  # the discard port: nobody listens
    response = Client().get("/accounts/sso/login/")
    assert response.status_code == 502
    assert "could not be reached" in response.content.decode()


def test_next_is_followed_on_this_site_only(provider: OIDCProvider, org_a) -> None:
    client = Client()
    target = f"/o/{org_a.slug}/"
    assert sign_in_through(client, target)["Location"] == target
    other = Client()
    assert sign_in_through(other, "https://evil.example/")["Location"] == "/"


def test_the_login_page_shows_the_button_only_when_configured(provider: OIDCProvider, settings) -> None:
    page = Client().get("/accounts/login/?next=/o/alpha/").content.decode()
    assert 'href="/accounts/sso/login/?next=%2Fo%2Falpha%2F"' in page
    assert "Sign in with Example SSO" in page
    settings.TRUENORTH_OIDC_ISSUER = ""
    assert "sso/login" not in Client().get("/accounts/login/").content.decode()
    assert Client().get("/accounts/sso/login/").status_code == 404


def test_a_single_sign_on_session_is_not_held_by_the_two_factor_policy(
    provider: OIDCProvider, org_a, member
) -> None:
    org_a.require_two_factor = True
    org_a.save(update_fields=["require_two_factor"])
    client = Client()
    assert sign_in_through(client).status_code == 302
    page = client.get(f"/o/{org_a.slug}/")
    assert page.status_code == 200  # the identity provider does the second factor
    assert (
        member.client.get(f"/o/{org_a.slug}/").status_code == 302
    )  # a password session is sent to set it up
