"""Sessions and their person read with plain statements (accounts/sessions.py, accounts/backends.py):
the same rules as Django's database sessions and ModelBackend."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import PASSWORD
from truenorth.accounts.backends import SESSION_BACKEND
from truenorth.accounts.models import User
from truenorth.accounts.sessions import SessionStore

DASHBOARD = "/o/alpha/"


def _client_for(user: User, backend: str) -> Client:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    client = Client()
    client.cookies["sessionid"] = session.session_key or ""
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("backend", [SESSION_BACKEND, "django.contrib.auth.backends.ModelBackend"])
def test_sessions_of_either_backend_sign_in(owner, backend: str) -> None:
    assert _client_for(owner.user, backend).get(DASHBOARD).status_code == 200


@pytest.mark.django_db
def test_an_expired_session_is_signed_out(owner) -> None:
    client = _client_for(owner.user, SESSION_BACKEND)
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


@pytest.mark.django_db
def test_an_unknown_session_key_is_signed_out(owner) -> None:
    client = Client()
    client.cookies["sessionid"] = "x" * 32
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_a_deactivated_person_is_signed_out(owner) -> None:
    client = _client_for(owner.user, SESSION_BACKEND)
    assert client.get(DASHBOARD).status_code == 200
    User.objects.filter(pk=owner.user.pk).update(is_active=False)
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_a_password_change_elsewhere_signs_the_session_out(owner) -> None:
    client = _client_for(owner.user, SESSION_BACKEND)
    user = User.objects.get(pk=owner.user.pk)
    user.set_password("another long password")
    user.save()
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_signing_in_records_the_session_backend_and_a_wrong_password_fails(owner) -> None:
    client = Client()
    wrong = client.post(reverse("accounts:login"), {"email": owner.user.email, "password": "not it at all"})
    assert wrong.status_code == 200 and SESSION_KEY not in client.session
    client.post(reverse("accounts:login"), {"email": owner.user.email, "password": PASSWORD})
    assert client.session[BACKEND_SESSION_KEY] == SESSION_BACKEND
    assert client.get(DASHBOARD).status_code == 200
