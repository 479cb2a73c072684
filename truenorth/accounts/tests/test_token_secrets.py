"""A new API token's secret is shown once and stored nowhere but as a hash (not in the session), and a
password reset or change revokes every API token of the account, saying so."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD
from truenorth.accounts.models import APIToken

if TYPE_CHECKING:
    from conftest import Persona

TOKENS = reverse("accounts:tokens")
NEW_PASSWORD = "fresh-Compass-bearing-42"
TOKEN_RE = re.compile(r'data-testid="new-token">(tn_[^<]+)<')


def _all_session_data() -> str:
    """Every stored session, decoded (what an attacker reading django_session would see)."""
    return "\n".join(repr(session.get_decoded()) for session in Session.objects.all())


def _post_token_form(persona: Persona, name: str) -> tuple[Any, str]:
    """Fill in and send the tokens page's form, as a browser would; returns the answer and the nonce."""
    page = persona.client.get(TOKENS).content.decode()
    found = re.search(r'name="nonce" value="([^"]+)"', page)
    nonce = found.group(1) if found else ""
    return persona.client.post(TOKENS, {"name": name, "scope": "read", "nonce": nonce}), nonce


def _create_on_the_web(persona: Persona, name: str) -> tuple[str, str]:
    """Create a token through the tokens page; returns its secret as shown and the form's nonce."""
    response, nonce = _post_token_form(persona, name)
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    shown = TOKEN_RE.search(response.content.decode())
    assert shown, response.content
    return shown.group(1), nonce


def test_a_new_tokens_secret_is_shown_in_the_answer_and_never_stored_in_the_session(owner: Persona) -> None:
    before = APIToken.objects.count()
    response, _ = _post_token_form(owner, "laptop")
    assert APIToken.objects.count() == before + 1
    # Right after the POST, no stored session holds a raw token (they all start with "tn_").
    assert "tn_" not in _all_session_data()
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    shown = TOKEN_RE.search(response.content.decode())
    assert shown, response.content
    raw = shown.group(1)
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/me").json()["email"] == owner.user.email
    # The next view of the page does not show it again.
    assert raw not in owner.client.get(TOKENS).content.decode()
    assert raw not in _all_session_data()


def test_reposting_the_same_token_form_creates_no_second_token(owner: Persona) -> None:
    _, nonce = _create_on_the_web(owner, "once")
    again = owner.client.post(TOKENS, {"name": "once", "scope": "read", "nonce": nonce})
    assert again.status_code == 302
    assert APIToken.objects.filter(user=owner.user, name="once").count() == 1
    page = owner.client.get(again["Location"]).content.decode()
    assert "no new token was created" in page
    assert 'data-testid="new-token"' not in page


def test_a_token_form_without_a_nonce_creates_nothing(owner: Persona) -> None:
    response = owner.client.post(TOKENS, {"name": "forged", "scope": "read"})
    assert response.status_code == 302
    assert not APIToken.objects.filter(name="forged").exists()


def _reset_password(email: str) -> Client:
    client = Client()
    client.post(reverse("accounts:password_reset"), {"email": email})
    link = re.search(r"https?://testserver(/accounts/password-reset/\S+/\S+/)", str(mail.outbox[-1].body))
    assert link
    form_url = client.get(link.group(1))["Location"]
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    return client


def test_a_password_reset_revokes_every_api_token(owner: Persona, member: Persona) -> None:
    assert owner.api().get("/api/v1/me").status_code == 200
    client = _reset_password(owner.user.email)

    assert owner.api().get("/api/v1/me").status_code == 401
    assert owner.api_read().get("/api/v1/me").status_code == 401
    assert not APIToken.objects.filter(user=owner.user, revoked_at__isnull=True).exists()
    complete = client.get(reverse("accounts:password_reset_complete")).content.decode()
    assert "2 API tokens were revoked" in complete
    # Someone else's tokens are untouched.
    assert member.api().get("/api/v1/me").status_code == 200


def test_a_password_change_revokes_every_api_token_and_says_so(owner: Persona, member: Persona) -> None:
    response = owner.client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == TOKENS
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("2 API tokens were revoked" in m for m in shown), shown
    assert owner.api().get("/api/v1/me").status_code == 401
    assert owner.api_read().get("/api/v1/me").status_code == 401
    # The session that changed it stays signed in; other users' tokens still work.
    assert owner.client.get(TOKENS).status_code == 200
    assert member.api().get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_a_wrong_current_password_changes_nothing_and_revokes_nothing(owner: Persona) -> None:
    response = owner.client.post(
        reverse("accounts:password_change"),
        {"old_password": "not-my-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["old_password"]
    assert owner.api().get("/api/v1/me").status_code == 200
