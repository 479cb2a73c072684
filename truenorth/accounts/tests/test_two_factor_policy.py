"""An organisation that requires two-factor sign-in: only admins switch it on (page, API, history), its
members without an authenticator are sent to set it up, their API tokens are refused on its endpoints,
and the two-factor API."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD, Persona
from truenorth.accounts import twofactor
from truenorth.accounts.models import TOTPDevice, User
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Organisation
from truenorth.orgs.services import update_organisation

SETUP = reverse("accounts:two_factor")


def _code(secret: str, offset: int = 0) -> str:
    return twofactor.code_at(secret, time.time() + offset)


def _enrol(user: User) -> tuple[str, list[str]]:
    secret = twofactor.new_secret()
    return secret, twofactor.confirm(user, secret, _code(secret))


def _require(admin: Persona, on: bool = True) -> Organisation:
    assert admin.membership is not None
    org = Organisation.objects.get(pk=admin.membership.organisation_id)
    return update_organisation(admin.membership, admin.user, require_two_factor=on, version=org.version)


# --- the policy -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_requires_it_on_the_settings_page_and_history_records_it(admin: Persona):
    url = reverse("orgs:settings", args=["alpha"])
    page = admin.client.get(url)
    assert 'name="require_two_factor"' in page.content.decode()
    org = Organisation.objects.get(slug="alpha")
    data = {"name": org.name, "slug": org.slug, "require_two_factor": "on", "version": org.version}
    assert admin.client.post(url, data).status_code == 302
    org.refresh_from_db()
    assert org.require_two_factor and org.version == 2
    entry = HistoryEntry.objects.filter(object_type="orgs.organisation", object_id=org.pk).latest("id")
    assert entry.changes == {"require_two_factor": {"old": False, "new": True}}


@pytest.mark.django_db
def test_a_member_cannot_change_the_policy(member: Persona):
    org = Organisation.objects.get(slug="alpha")
    url = reverse("orgs:settings", args=["alpha"])
    data = {"name": org.name, "slug": org.slug, "require_two_factor": "on", "version": org.version}
    assert member.client.post(url, data).status_code == 403
    patch = member.api().patch(
        "/api/v1/orgs/alpha",
        json.dumps({"require_two_factor": True, "version": org.version}),
        content_type="application/json",
    )
    assert patch.status_code == 403
    org.refresh_from_db()
    assert not org.require_two_factor


@pytest.mark.django_db
def test_an_admin_requires_it_through_the_api_with_the_version(admin: Persona):
    _enrol(admin.user)  # so the admin's own token keeps working here afterwards
    org = Organisation.objects.get(slug="alpha")
    stale = admin.api().patch(
        "/api/v1/orgs/alpha",
        json.dumps({"require_two_factor": True, "version": org.version - 1}),
        content_type="application/json",
    )
    assert stale.status_code == 409
    done = admin.api().patch(
        "/api/v1/orgs/alpha",
        json.dumps({"require_two_factor": True, "version": org.version}),
        content_type="application/json",
    )
    assert done.status_code == 200 and done.json()["require_two_factor"] is True
    assert admin.api().get("/api/v1/orgs/alpha").json()["require_two_factor"] is True


# --- pages ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_member_without_two_factor_is_sent_to_set_it_up(admin: Persona, member: Persona):
    dashboard = reverse("home:dashboard", args=["alpha"])
    assert member.client.get(dashboard).status_code == 200
    _require(admin)
    response = member.client.get(dashboard)
    assert response.status_code == 302 and response["Location"] == f"{SETUP}?org=alpha"
    # Deeper pages and writes too; htmx requests are redirected by header.
    assert member.client.get(reverse("orgs:members", args=["alpha"])).status_code == 302
    htmx = member.client.get(dashboard, HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"] == f"{SETUP}?org=alpha"
    # The set-up page, the account's pages and signing out stay open.
    setup = member.client.get(f"{SETUP}?org=alpha")
    assert setup.status_code == 200 and "Required by" in setup.content.decode()
    assert member.client.get(reverse("accounts:tokens")).status_code == 200
    assert member.client.get(reverse("accounts:password_change")).status_code == 200

    secret = setup.context["secret"].replace(" ", "")
    assert member.client.post(SETUP, {"code": _code(secret)}).status_code == 200
    assert member.client.get(dashboard).status_code == 200
    signed_out = member.client.post(reverse("accounts:logout"))
    assert signed_out.status_code == 302 and signed_out["Location"] == reverse("accounts:login")


@pytest.mark.django_db
def test_another_organisations_policy_does_not_apply_nor_leak(admin: Persona, outsider: Persona):
    _require(admin)
    assert outsider.client.get(reverse("home:dashboard", args=["bravo-secret"])).status_code == 200
    # A non-member asking for the requiring organisation gets the same 404 as before.
    assert outsider.client.get(reverse("home:dashboard", args=["alpha"])).status_code == 404


@pytest.mark.django_db
def test_a_single_sign_on_session_counts_as_satisfied(admin: Persona, member: Persona):
    _require(admin)
    session = member.client.session
    session[twofactor.SIGN_IN_METHOD_KEY] = "oidc"
    session.save()
    assert member.client.get(reverse("home:dashboard", args=["alpha"])).status_code == 200


@pytest.mark.django_db
def test_a_password_sign_in_replaces_an_earlier_single_sign_on_mark(admin: Persona, member: Persona):
    _require(admin)
    client = Client()
    session = client.session
    session[twofactor.SIGN_IN_METHOD_KEY] = "oidc"
    session.save()
    client.post(reverse("accounts:login"), {"email": member.user.email, "password": PASSWORD})
    assert client.session[twofactor.SIGN_IN_METHOD_KEY] == "password"
    assert client.get(reverse("home:dashboard", args=["alpha"])).status_code == 302


# --- API tokens -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_tokens_of_members_without_two_factor_are_refused_on_that_organisations_endpoints(
    admin: Persona, member: Persona, outsider: Persona
):
    _require(admin)
    refused = member.api_read().get("/api/v1/orgs/alpha/members")
    assert refused.status_code == 403
    assert "/accounts/two-factor/?org=alpha" in refused.json()["detail"]
    assert member.api().get("/api/v1/orgs/alpha").status_code == 403
    # Not an organisation's endpoint: still open, so the member can set it up through the API.
    assert member.api().get("/api/v1/me").status_code == 200
    assert member.api().get("/api/v1/account/two-factor").json()["required_by"] == ["alpha"]
    # A bad token is still a 401; an outsider still a 404.
    assert Client(HTTP_AUTHORIZATION="Bearer tn_nope").get("/api/v1/orgs/alpha").status_code == 401
    assert outsider.api().get("/api/v1/orgs/alpha").status_code == 404
    _enrol(member.user)
    assert member.api_read().get("/api/v1/orgs/alpha/members").status_code == 200


# --- the two-factor API -----------------------------------------------------------------------------


def _post(persona: Persona, path: str, body: dict[str, object]):
    return persona.api().post(path, json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_the_api_sets_it_up_replaces_recovery_codes_and_turns_it_off(member: Persona, outsider: Persona):
    base = "/api/v1/account/two-factor"
    assert member.api().get(base).json() == {
        "enabled": False,
        "confirmed_at": None,
        "recovery_codes_left": 0,
        "required_by": [],
    }
    start = _post(member, f"{base}/start", {})
    assert start.status_code == 200
    body = start.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/") and f"secret={secret}" in body["otpauth_uri"]

    # Someone else's set-up token is refused, naming the field.
    theirs = _post(outsider, f"{base}/confirm", {"setup_token": body["setup_token"], "code": _code(secret)})
    assert theirs.status_code == 409 and theirs.json()["errors"][0]["field"] == "setup_token"
    bogus = _post(member, f"{base}/confirm", {"setup_token": "bogus", "code": _code(secret)})
    assert bogus.status_code == 409 and bogus.json()["errors"][0]["field"] == "setup_token"
    wrong = _post(member, f"{base}/confirm", {"setup_token": body["setup_token"], "code": "12"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"
    unknown = _post(member, f"{base}/confirm", {"setup_token": body["setup_token"], "code": "1", "x": 1})
    assert unknown.status_code == 422

    confirmed = _post(member, f"{base}/confirm", {"setup_token": body["setup_token"], "code": _code(secret)})
    assert confirmed.status_code == 201
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    assert member.api().get(base).json()["recovery_codes_left"] == 10
    again = _post(member, f"{base}/start", {})
    assert again.status_code == 409

    replaced = _post(member, f"{base}/recovery-codes", {"code": _code(secret, 30)})
    assert replaced.status_code == 200 and not set(replaced.json()["recovery_codes"]) & set(codes)

    wrong_password = member.api().delete(
        base, json.dumps({"password": "nope", "code": codes[0]}), content_type="application/json"
    )
    assert wrong_password.status_code == 422 and wrong_password.json()["errors"][0]["field"] == "password"
    off = member.api().delete(
        base,
        json.dumps({"password": PASSWORD, "code": replaced.json()["recovery_codes"][0]}),
        content_type="application/json",
    )
    assert off.status_code == 204
    assert not TOTPDevice.objects.filter(user=member.user).exists()


@pytest.mark.django_db
def test_read_tokens_cannot_change_two_factor(member: Persona):
    assert member.api_read().post("/api/v1/account/two-factor/start").status_code == 403


# --- truenorth check --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_check_reports_the_policy_and_unreadable_secrets(admin: Persona, member: Persona, settings):
    _enrol(admin.user)
    _require(admin)
    [ok] = twofactor.two_factor_check()
    assert ok.status == "ok"
    # The founder and the member have not.
    assert "1 organisation(s) require it; 2 of their members have not set it up" in ok.detail
    settings.TRUENORTH_ENCRYPTION_KEYS = ["another key"]
    [warning] = twofactor.two_factor_check()
    assert warning.status == "warning" and "1 of the 1 most recent" in warning.detail
    settings.TRUENORTH_ENCRYPTION_KEYS = []
    assert twofactor.two_factor_check()[0].status == "error"
