"""Password reset by e-mailed link, through the web UI."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD
from truenorth.accounts.models import User

RESET = reverse("accounts:password_reset")
RESET_DONE = reverse("accounts:password_reset_done")
RESET_COMPLETE = reverse("accounts:password_reset_complete")
LOGIN = reverse("accounts:login")
NEW_PASSWORD = "fresh-Compass-bearing-42"
LINK_RE = re.compile(r"https?://testserver(/accounts/password-reset/[^/\s]+/[^/\s]+/)")


def _request_reset(client: Client, email: str) -> str:
    """Ask for a reset e-mail; returns the path of the link in it."""
    response = client.post(RESET, {"email": email})
    assert response.status_code == 302
    assert response["Location"] == RESET_DONE
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [email]
    assert "Reset your TrueNorth password" in message.subject
    match = LINK_RE.search(str(message.body))
    assert match, message.body
    return match.group(1)


def _set_new_password(client: Client, link: str, password: str = NEW_PASSWORD) -> None:
    """Follow the link (which moves the token into the session) and choose a new password."""
    response = client.get(link)
    assert response.status_code == 302  # to .../set-password/, keeping the token out of the URL
    form_url = response["Location"]
    assert form_url.endswith("/set-password/")
    page = client.get(form_url)
    assert page.status_code == 200
    assert page.context["validlink"] is True
    assert b"Choose a new password" in page.content
    response = client.post(form_url, {"new_password1": password, "new_password2": password})
    assert response.status_code == 302
    assert response["Location"] == RESET_COMPLETE


def _sign_in(email: str, password: str) -> tuple[int, Client]:
    client = Client()
    response = client.post(LOGIN, {"email": email, "password": password})
    return response.status_code, client


@pytest.mark.django_db
def test_reset_page_renders():
    response = Client().get(RESET)
    assert response.status_code == 200
    assert b"Reset your password" in response.content


@pytest.mark.django_db
def test_reset_by_email_link_then_sign_in_with_new_password(member):
    client = Client()
    link = _request_reset(client, member.user.email)
    assert client.get(RESET_DONE).status_code == 200

    _set_new_password(client, link)
    complete = client.get(RESET_COMPLETE)
    assert complete.status_code == 200
    assert b"Password changed" in complete.content

    user = User.objects.get(pk=member.user.pk)
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)
    assert user.password.startswith("argon2")

    status, signed_in = _sign_in(member.user.email, NEW_PASSWORD)
    assert status == 302
    assert signed_in.session.get(SESSION_KEY) == str(member.user.pk)
    old_status, _ = _sign_in(member.user.email, PASSWORD)
    assert old_status == 200  # the old password no longer works


@pytest.mark.django_db
def test_reset_for_upper_case_email_reaches_the_account(member):
    response = Client().post(RESET, {"email": member.user.email.upper()})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [member.user.email]


@pytest.mark.django_db
def test_reset_for_unknown_email_shows_same_page_and_sends_nothing(member):
    client = Client()
    response = client.post(RESET, {"email": "nobody@example.com"}, follow=True)
    assert response.redirect_chain == [(RESET_DONE, 302)]
    assert response.status_code == 200
    assert b"Check your e-mail" in response.content
    assert mail.outbox == []


@pytest.mark.django_db
def test_new_password_must_be_strong(member):
    client = Client()
    link = _request_reset(client, member.user.email)
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"new_password1": "short", "new_password2": "short"})
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    assert User.objects.get(pk=member.user.pk).check_password(PASSWORD)


@pytest.mark.django_db
def test_used_link_is_no_longer_valid(member):
    client = Client()
    link = _request_reset(client, member.user.email)
    _set_new_password(client, link)

    for attacker in (client, Client()):
        response = attacker.get(link, follow=True)
        assert response.status_code == 200
        assert response.context["validlink"] is False
        assert b"Link no longer valid" in response.content
        # Posting a password through the old link changes nothing.
        attacker.post(link, {"new_password1": "an0ther-Strong-pass", "new_password2": "an0ther-Strong-pass"})
    assert User.objects.get(pk=member.user.pk).check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_tampered_link_is_not_valid(member):
    client = Client()
    link = _request_reset(client, member.user.email)
    tampered = link.rstrip("/") + "x/"
    response = client.get(tampered, follow=True)
    assert response.context["validlink"] is False
    assert b"Link no longer valid" in response.content


@pytest.mark.django_db
def test_reset_lifts_a_sign_in_lockout(member, settings):
    """The lockout message says "Wait a few minutes, or reset your password": a reset must let them in."""
    settings.LOGIN_MAX_FAILURES_PER_EMAIL = 2
    for _ in range(2):
        assert _sign_in(member.user.email, "wrong-password-x")[0] == 200
    assert _sign_in(member.user.email, PASSWORD)[0] == 429
    assert len(mail.outbox) == 1  # the sign-in link (test_sign_in_throttling.py); a reset works too
    mail.outbox.clear()

    client = Client()
    _set_new_password(client, _request_reset(client, member.user.email))

    status, _ = _sign_in(member.user.email, NEW_PASSWORD)
    assert status == 302
